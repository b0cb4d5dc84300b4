"""What generated encoders and decoders call: value conversions and the errors they raise.

Kept out of the generated source so that the source stays short and the
error messages are written once.  Every error is a :class:`CodecError`
naming the type and the field.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..errors import CodecError

__all__ = ["HELPERS", "binding_decoder", "encode_failure"]

_NUMPY_FROM = 256  # items from which numpy unpacks a primitive sequence faster than struct
_NUMPY_TYPES = {
    "d": "f8",
    "f": "f4",
    "q": "i8",
    "Q": "u8",
    "i": "i4",
    "I": "u4",
    "h": "i2",
    "H": "u2",
    "b": "i1",
    "B": "u1",
}


def _enum_value(value: Any) -> int:
    """An enum member's value; a plain int passes as the binding lets it."""
    return value if type(value) is int else int(value.value)


def _octets(value: Any) -> bytes:
    """An octet sequence's bytes, from bytes, a bytearray, a list of ints or a numpy array."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    dtype = getattr(value, "dtype", None)  # a numpy array (numpy is imported only where needed)
    if dtype is not None and dtype.str not in ("|u1", "|i1"):
        value = value.tolist()
    return bytes(value)


def _octet_array(value: Any, length: int, label: str) -> bytes:
    data = _octets(value)
    if len(data) != length:
        raise CodecError(f"{label}: expected {length} octets, got {len(data)}")
    return data


def _pack_items(values: Any, code: str, count: int) -> bytes:
    """Primitive items, little endian: a numpy array of the wire's dtype is copied as is."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None:  # a numpy array: copied as is when it holds the wire's type
        wire = "<" + _NUMPY_TYPES.get(code, "b1")
        if dtype.kind == wire[1] and dtype.itemsize == int(wire[2:]):
            return bytes(values.astype(wire, copy=False).tobytes())
        values = values.tolist()
    return struct.pack(f"<{count}{code}", *values)


def _unpack_items(buf: Any, at: int, count: int, fmt: str) -> list[Any]:
    """``count`` primitive items of format ``fmt`` (endian + code) at ``at`` as a list; numpy for long ones."""
    code = fmt[1]
    if count >= _NUMPY_FROM and code in _NUMPY_TYPES:
        import numpy as np  # only here: a program that never decodes long sequences does not load it

        items: list[Any] = np.frombuffer(buf, fmt[0] + _NUMPY_TYPES[code], count, at).tolist()
        return items
    return list(struct.unpack_from(f"{fmt[0]}{count}{code}", buf, at))


# ------------------------------------------------------------------------------- errors
def _truncated(type_name: str, label: str, at: int, end: int) -> CodecError:
    return CodecError(f"{type_name}: truncated at {label} (byte {at} of {end})")


def _over_bound(type_name: str, label: str, count: int, bound: int) -> CodecError:
    return CodecError(f"{type_name}: {label} has {count} items or bytes, over its bound of {bound}")


def _wrong_length(type_name: str, label: str, count: int, length: int) -> CodecError:
    return CodecError(f"{type_name}: {label} has {count} items, the array has {length}")


def _bad_enum(type_name: str, label: str, value: int, cls: type) -> CodecError:
    names = ", ".join(f"{m.name}={m.value}" for m in cls)  # type: ignore[attr-defined]
    return CodecError(f"{type_name}: {label} = {value} is not a value of {cls.__name__} ({names})")


def _bad_text_length(type_name: str, label: str, size: int, bound: int | None, at: int, end: int) -> CodecError:
    if size == 0:
        return CodecError(f"{type_name}: {label} has length 0 (a string holds at least its NUL)")
    if bound is not None and size > bound + 1:
        return CodecError(f"{type_name}: {label} has {size - 1} bytes, over its bound of {bound}")
    return CodecError(f"{type_name}: {label} has length {size}, past the end (byte {at} of {end})")


def _unterminated(type_name: str, label: str) -> CodecError:
    return CodecError(f"{type_name}: {label} is not NUL-terminated")


def _not_utf8(type_name: str, label: str) -> CodecError:
    return CodecError(f"{type_name}: {label} is not valid UTF-8")


HELPERS: dict[str, Any] = {
    "CodecError": CodecError,
    "_ZEROS": tuple(bytes(n) for n in range(8)),
    "_new": object.__new__,
    "_struct_error": struct.error,
    "_enum_value": _enum_value,
    "_octets": _octets,
    "_octet_array": _octet_array,
    "_pack_items": _pack_items,
    "_unpack_items": _unpack_items,
    "_truncated": _truncated,
    "_over_bound": _over_bound,
    "_wrong_length": _wrong_length,
    "_bad_enum": _bad_enum,
    "_bad_text_length": _bad_text_length,
    "_unterminated": _unterminated,
    "_not_utf8": _not_utf8,
}


# ------------------------------------------------------------------- the binding's way
def binding_decoder(cls: Any, type_name: str) -> Callable[..., Any]:
    """Decode with the binding's deserializer; anything it raises becomes a CodecError."""
    deserialize = cls.deserialize

    def decode(data: Any, kind: int | None = None) -> Any:
        try:
            return deserialize(bytes(data))
        except CodecError:
            raise
        except Exception as exc:
            how = "" if kind is None else f" (encapsulation {kind:#04x})"
            raise CodecError(f"{type_name}: malformed sample{how}: {_describe(exc)}") from None

    return decode


def encode_failure(cls: Any, type_name: str, sample: Any, exc: Exception) -> CodecError:
    """The error for a sample that cannot be encoded, naming the member (as the binding finds it)."""
    if not isinstance(sample, cls):
        return CodecError(f"{type_name}: cannot encode a {type(sample).__name__}")
    try:
        sample.serialize()
    except Exception as binding_exc:  # "Failed to encode member f, value is ..." and the cause
        return CodecError(f"{type_name}: cannot encode: {_describe(binding_exc)}")
    return CodecError(f"{type_name}: cannot encode: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    parts = [str(exc) or type(exc).__name__]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause) or type(cause).__name__)
        cause = cause.__cause__
    return ": ".join(parts)
