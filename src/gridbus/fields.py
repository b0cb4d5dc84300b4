"""Fields of a topic: what each one is, and how a value is converted and checked.

A :class:`FieldInfo` is built from an idlc-generated dataclass field (its type
hint) and its IDL metadata (unit, range, doc).  Values are coerced and
range-checked here, because cyclonedds only notices a bad value when it
serializes, with a bare message; :class:`gridbus.model.TopicType` uses this for
every sample it builds or checks.
"""

from __future__ import annotations

import enum
import inspect
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypedDict

from cyclonedds.idl import IdlEnum, IdlStruct
from cyclonedds.idl import types as idl_types

from .errors import FieldError
from .idl import FieldMeta

FLOAT32_MAX = 3.4028234663852886e38
_INT_BOUNDS = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "byte": (0, 2**8 - 1),
    "octet": (0, 2**8 - 1),
}


class _Described(TypedDict):
    """The :class:`FieldInfo` arguments that come from :class:`FieldMeta`, unset ones None."""

    unit: str | None
    min: float | None
    max: float | None
    doc: str | None


@dataclass(frozen=True)
class FieldInfo:
    """One field of a topic type, with what the IDL says about it."""

    name: str
    kind: str  # float, int, bool, str, enum, array, sequence, struct
    type_name: str  # IDL-ish name shown to users (float64, string<32>, Status…)
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    doc: str | None = None
    enum: type[IdlEnum] | None = None
    length: int | None = None  # bound of a string, length of an array
    element: FieldInfo | None = None
    nan_default: bool = False  # command set-points: NaN means "leave unchanged"
    # a float inside [accept_low, accept_high] needs no checking (see accepts); empty for other kinds
    accept_low: float = field(default=math.inf, init=False, repr=False, compare=False)
    accept_high: float = field(default=-math.inf, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "float":
            high = math.inf if self.max is None else self.max
            if self.type_name == "float32":
                high = min(high, FLOAT32_MAX)
            object.__setattr__(self, "accept_low", -math.inf if self.min is None else self.min)
            object.__setattr__(self, "accept_high", high)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is already this field's value as is: an in-range float of a float field.

        The cheap test done for every field of every sample built; anything
        else (ints, strings, NaN, out of range) goes through :meth:`coerce`.
        """
        return type(value) is float and self.accept_low <= value <= self.accept_high

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type_name}
        for key in ("unit", "min", "max", "doc"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.enum is not None:
            out["values"] = [m.name for m in self.enum]
        return out

    # -- conversion and checking -------------------------------------------------
    def coerce(self, value: Any, where: str) -> Any:
        """Return ``value`` as this field's Python type, or raise FieldError."""
        try:
            return self._coerce(value, where)
        except FieldError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise FieldError(f"{where}: {exc}") from None

    def _coerce(self, value: Any, where: str) -> Any:
        if self.kind == "float":
            if isinstance(value, str):
                value = _parse_float(value, where, self.type_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FieldError(f"{where}: expected a number ({self.type_name}), got {value!r}")
            value = float(value)
            if self.type_name == "float32" and math.isfinite(value) and abs(value) > FLOAT32_MAX:
                raise FieldError(f"{where}: {value} does not fit a float32 (at most {FLOAT32_MAX:.7g})")
            self._check_range(value, where)
            return value
        if self.kind == "int":
            if isinstance(value, str):
                try:
                    value = int(value, 0)
                except ValueError:
                    raise FieldError(f"{where}: expected an integer ({self.type_name}), got {value!r}") from None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise FieldError(f"{where}: expected an integer ({self.type_name}), got {value!r}")
            self._check_range(value, where)
            return value
        if self.kind == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
            raise FieldError(f"{where}: expected a boolean (true/false), got {value!r}")
        if self.kind == "str":
            if not isinstance(value, str):
                raise FieldError(f"{where}: expected a string, got {value!r}")
            try:
                encoded = value.encode()
            except UnicodeEncodeError:
                raise FieldError(f"{where}: the string is not valid UTF-8 text") from None
            if self.length is not None and len(encoded) > self.length:
                raise FieldError(f"{where}: string longer than its bound of {self.length} bytes")
            return value
        if self.kind == "enum":
            return self._coerce_enum(value, where)
        if self.kind in ("array", "sequence"):
            if isinstance(value, (bytes, bytearray, memoryview)) and self._octets:
                return self._coerce_octets(bytes(value), where)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) and not hasattr(value, "tolist"):
                raise FieldError(f"{where}: expected a list, got {value!r}")
            items = list(value.tolist() if hasattr(value, "tolist") else value)
            if self.kind == "array" and len(items) != self.length:
                raise FieldError(f"{where}: expected {self.length} elements, got {len(items)}")
            if self.kind == "sequence" and self.length and len(items) > self.length:
                raise FieldError(f"{where}: at most {self.length} elements, got {len(items)}")
            assert self.element is not None
            return [self.element.coerce(v, f"{where}[{i}]") for i, v in enumerate(items)]
        return value  # nested struct: cyclonedds checks it

    @property
    def _octets(self) -> bool:
        """An octet sequence or array: bytes pass as they are (a waveform need not become a list)."""
        return self.element is not None and self.element.type_name in ("uint8", "byte", "octet")

    def _coerce_octets(self, data: bytes, where: str) -> bytes:
        if self.kind == "array" and len(data) != self.length:
            raise FieldError(f"{where}: expected {self.length} octets, got {len(data)}")
        if self.kind == "sequence" and self.length and len(data) > self.length:
            raise FieldError(f"{where}: at most {self.length} octets, got {len(data)}")
        return data

    def _coerce_enum(self, value: Any, where: str) -> Any:
        assert self.enum is not None
        if isinstance(value, self.enum):
            return value
        names = [m.name for m in self.enum]
        if isinstance(value, str):
            key = value.strip().upper()
            if key in names:
                return self.enum[key]
            if key.isdigit():
                value = int(key)
        if isinstance(value, int) and not isinstance(value, bool):
            for member in self.enum:
                if member.value == value:
                    return member
        raise FieldError(f"{where}: {value!r} is not one of {', '.join(names)}")

    def _check_range(self, value: float, where: str) -> None:
        if isinstance(value, float) and math.isnan(value):
            return  # NaN = "unset" in commands
        low, high = self.min, self.max
        bounds = _INT_BOUNDS.get(self.type_name) if self.kind == "int" else None
        if bounds is not None:
            low = bounds[0] if low is None else max(low, bounds[0])
            high = bounds[1] if high is None else min(high, bounds[1])
        if low is not None and value < low:
            raise FieldError(f"{where}: {value} is below the minimum {low:g}{_unit(self.unit)}")
        if high is not None and value > high:
            raise FieldError(f"{where}: {value} is above the maximum {high:g}{_unit(self.unit)}")

    def default(self) -> Any:
        """The value a field takes when the user leaves it out."""
        if self.kind == "float":
            return math.nan if self.nan_default else 0.0
        if self.kind == "int":
            return 0
        if self.kind == "bool":
            return False
        if self.kind == "str":
            return ""
        if self.kind == "enum":
            assert self.enum is not None
            return next(iter(self.enum))
        if self.kind == "array":
            assert self.element is not None and self.length is not None
            return [self.element.default() for _ in range(self.length)]
        if self.kind == "sequence":
            return []
        return None


def _unit(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def _parse_float(text: str, where: str, type_name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FieldError(f"{where}: expected a number ({type_name}), got {text!r}") from None


def _field_info(name: str, hint: Any, meta: FieldMeta, command_like: bool) -> FieldInfo:
    """Describe one generated dataclass field from its type hint and IDL metadata."""
    common = _Described(unit=meta.get("unit"), min=meta.get("min"), max=meta.get("max"), doc=meta.get("doc"))
    if inspect.isclass(hint) and issubclass(hint, IdlEnum):
        return FieldInfo(name, "enum", hint.__name__, enum=hint, **common)
    if inspect.isclass(hint) and issubclass(hint, IdlStruct):
        return FieldInfo(name, "struct", hint.__name__, **common)
    if typing.get_origin(hint) is typing.Annotated:
        base, *extra = typing.get_args(hint)
        tag = extra[0] if extra else None
        if isinstance(tag, str):
            kind = {float: "float", int: "int", bool: "bool", str: "str"}.get(base, "other")
            return FieldInfo(name, kind, tag, nan_default=command_like and kind == "float", **common)
        if isinstance(tag, idl_types.bounded_str):
            return FieldInfo(name, "str", f"string<{tag.max_length}>", length=tag.max_length, **common)
        if isinstance(tag, (idl_types.array, idl_types.sequence)):
            tag_name = type(tag).__name__
            # the binding declares ``subtype: type``, but a primitive element comes as its IDL name ("float64")
            subtype = typing.cast("type | str", tag.subtype)
            inner = _field_info(
                name,
                subtype if not isinstance(subtype, str) else typing.Annotated[_PRIMITIVE.get(subtype, float), subtype],
                meta,
                command_like,
            )
            length = getattr(tag, "length", None) or getattr(tag, "max_length", None)
            return FieldInfo(name, tag_name, f"{tag_name}<{inner.type_name}>", length=length, element=inner, **common)
    if hint in (float, int, bool, str):
        kind = hint.__name__
        idl_type = {"float": "float64", "int": "int64", "bool": "boolean", "str": "string"}[kind]
        return FieldInfo(name, "float" if kind == "float" else kind, idl_type, **common)
    return FieldInfo(name, "other", str(hint), **common)


_PRIMITIVE = {n: int for n in _INT_BOUNDS} | {"float32": float, "float64": float, "bool": bool}


def _plain(value: Any) -> Any:
    """A sample value as plain JSON-able data: enums by name, structs as dicts."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):  # an octet sequence, decoded as bytes: JSON has no bytes
        return list(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, IdlStruct):
        return {k: _plain(v) for k, v in vars(value).items() if k != "sample_info"}
    return value
