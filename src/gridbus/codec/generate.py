"""Python source for one type's XCDR1 encoder and decoders, generated from its plan.

What makes the generated code fast is that consecutive fixed-size members
(primitives, enums, primitive arrays, a string's length, nested structs'
fixed members) become one precompiled ``struct.Struct``: one ``pack`` or
``unpack_from`` call for the run instead of one per member.  XCDR1 aligns each
primitive to its size (at most 8) counted from the start of the payload, after
the 4-byte encapsulation header; where a run starts after a string or a
sequence its position modulo 8 is only known at run time, so such a run has
eight precompiled variants, one per position, and the code picks one.

Decoders never read past the end: every run, string and sequence is checked
against the length first, and a count is believed only if the bytes left can
hold that many items.  Sequences and arrays of anything but primitives go
through a small generated function per element type.  The source is kept
(``Codec.source``) so that it can be read when in doubt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .decoder import Decoder
from .encoder import Encoder
from .plan import Struct
from .source import Generated, Module
from .support import binding_decoder, encode_failure

__all__ = ["Generated", "checked_decoder", "generate_decoder", "generate_encoder"]


def generate_encoder(plan: Struct) -> Generated:
    """Generate and compile the encoder of ``plan``'s type: ``encode(sample, pad=False)``."""
    module = Module(plan.name)
    Encoder(module, "encode", ("s", "pad=False"), "").top(plan)
    return _compile(module, plan, "encode")


def generate_decoder(plan: Struct) -> Generated:
    """Generate and compile the decoder of ``plan``'s type: ``decode(data)``, either byte order.

    ``decode`` is the optimistic build (see :mod:`.decoder`): little-endian
    XCDR1 with no bound test per fixed run.  Anything else goes to the
    checked build, generated when first needed (malformed or big-endian data:
    rare), and its big-endian half likewise.
    """
    module = Module(plan.name)
    Decoder(module, "decode", "<", "", args="buf", checked=False).top(plan, header_check=True)
    made = _compile(module, plan, "decode")

    def decode_checked_first(buf: Any) -> Any:
        made.namespace["_decode_checked"] = function = checked_decoder(plan)
        return function(buf)

    made.namespace["_decode_checked"] = decode_checked_first
    return made


def checked_decoder(plan: Struct) -> Callable[[Any], Any]:
    """``_decode_checked(data)``: every length tested before it is believed, the member named when short."""
    module = Module(plan.name)
    Decoder(module, "_decode_checked", "<", "", args="buf").top(plan, header_check=True)
    namespace = _compile(module, plan, "_decode_checked").namespace

    def decode_be_first(buf: Any, p: int, end: int) -> Any:
        big = Module(plan.name)
        Decoder(big, "_decode_be", ">", "").top(plan, header_check=False)
        namespace["_decode_be"] = function = _compile(big, plan, "_decode_be").function
        return function(buf, p, end)

    namespace["_decode_be"] = decode_be_first
    function: Callable[[Any], Any] = namespace["_decode_checked"]
    return function


def _compile(module: Module, plan: Struct, name: str) -> Generated:
    source = module.source()
    namespace = dict(module.names)
    namespace["_other_encoding"] = _other_encoding(plan)
    namespace["_encode_failed"] = _encode_failed(plan)
    exec(compile(source, f"<gridbus codec {plan.name}>", "exec"), namespace)  # noqa: S102 - our own source
    return Generated(namespace[name], source, namespace)


def _other_encoding(plan: Struct) -> Callable[[Any, int], Any]:
    """Data in an encoding the generated decoder does not read (XCDR2, PL_CDR): the binding decodes it."""
    return binding_decoder(plan.cls, plan.name)


def _encode_failed(plan: Struct) -> Callable[[Any, Exception], Exception]:
    def failed(sample: Any, exc: Exception) -> Exception:
        return encode_failure(plan.cls, plan.name, sample, exc)

    return failed
