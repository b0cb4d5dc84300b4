"""The fast path: an XCDR1 encoder and decoder generated per topic type.

cyclonedds-python serializes with an interpreter of its own, member by
member: about 45 µs to serialize and 54 µs to deserialize one
``Generator_Measurement``, the dominant per-sample cost of every gridbus
program.  :func:`codec_for` reads a type's layout once (:mod:`.plan`) and
generates Python source for it (:mod:`.generate`) in which runs of
fixed-size members are one precompiled ``struct.Struct``: the same bytes as
the binding's, a few µs each way.  Writers hand the bytes to the binding's
raw write path and readers decode what ``take`` returns.

A type the generator does not cover (unions, optional members,
@appendable/@mutable types...) keeps the binding's serializer: its
:class:`Codec` says ``path == "binding"`` and why in ``reason``.  Setting the
environment variable ``GRIDBUS_CODEC=binding`` puts every type on the
binding's path (an escape hatch, read when a codec is asked for);
``GRIDBUS_CODEC=fast`` (or unset) is the default; any other value is a
:class:`~gridbus.errors.ConfigError` (a typo must not silently keep a path).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from cyclonedds.idl import IdlStruct

from ..errors import ConfigError
from .generate import generate_decoder, generate_encoder
from .plan import Struct, Unsupported, plan_for
from .support import binding_decoder

__all__ = ["ENV", "MODES", "Codec", "codec_for"]

log = logging.getLogger(__name__)

ENV = "GRIDBUS_CODEC"  # "binding": every type uses the binding's serializer
MODES = ("fast", "binding")  # "fast" (the default): generated codecs where the type allows


class Codec:
    """Encoder and decoder of one topic type.

    ``encode(sample)`` gives exactly ``sample.serialize()``'s bytes (XCDR1,
    little endian); ``encode(sample, True)`` pads them to a multiple of 4 as
    the wire wants.  ``decode(data)`` reads either byte order and raises
    :class:`~gridbus.errors.CodecError` on malformed bytes.  ``path`` is
    ``"fast"`` (generated) or ``"binding"``; ``reason`` says why the binding.
    Each direction is generated when first used: a writer never pays for a
    decoder, nor a reader for an encoder.
    """

    __slots__ = ("_plan", "_sources", "cls", "decode", "encode", "path", "reason")

    encode: Callable[..., bytes]  # encode(sample, pad=False)
    decode: Callable[[Any], Any]  # decode(bytes or memoryview) -> sample

    def __init__(self, cls: type[IdlStruct], path: str, reason: str = "", plan: Struct | None = None) -> None:
        self.cls = cls
        self.path = path
        self.reason = reason
        self._plan = plan
        self._sources: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:  # only for a direction not generated yet
        plan = self._plan
        if plan is None or name not in ("encode", "decode"):
            raise AttributeError(name)
        made = generate_encoder(plan) if name == "encode" else generate_decoder(plan)
        setattr(self, name, made.function)
        self._sources[name] = made.source
        return made.function

    @property
    def source(self) -> str:
        """The generated Python source (fast path; both directions), for reading when in doubt."""
        if self._plan is None:
            return ""
        self.encode, self.decode  # noqa: B018 - generate both
        return self._sources["encode"] + "\n" + self._sources["decode"]

    def __repr__(self) -> str:
        why = f", {self.reason}" if self.reason else ""
        return f"Codec({self.cls.__idl_typename__}, {self.path}{why})"


_lock = threading.Lock()
_codecs: dict[tuple[type, bool], Codec] = {}


def codec_for(cls: type[IdlStruct]) -> Codec:
    """The codec of topic type ``cls``, generated on first use and cached."""
    forced = _forced()
    key = (cls, forced)
    codec = _codecs.get(key)
    if codec is None:
        with _lock:
            codec = _codecs.get(key)
            if codec is None:
                codec = _codecs[key] = _make(cls, forced)
    return codec


def _forced() -> bool:
    """Whether ``GRIDBUS_CODEC`` puts every type on the binding's path (checked: no silent typo)."""
    mode = os.environ.get(ENV, "").strip().lower() or "fast"
    if mode not in MODES:
        raise ConfigError(f"{ENV}={os.environ[ENV]!r}: give one of {', '.join(MODES)} (default fast)")
    return mode == "binding"


def _make(cls: type[IdlStruct], forced: bool) -> Codec:
    if forced:
        return binding_codec(cls, f"{ENV}=binding")
    try:
        plan = plan_for(cls)
    except Unsupported as exc:
        log.debug("%s uses the binding's serializer: %s", cls.__name__, exc)
        return binding_codec(cls, str(exc))
    return Codec(cls, "fast", plan=plan)


def binding_codec(cls: type[IdlStruct], reason: str) -> Codec:
    """A codec that uses the binding's own serializer for ``cls``."""
    type_name = str(cls.__idl_typename__).replace(".", "::")

    def encode(sample: Any, pad: bool = False) -> bytes:
        data: bytes = sample.serialize()
        return data.ljust((len(data) + 3) & ~3, b"\0") if pad else data

    codec = Codec(cls, "binding", reason)
    codec.encode = encode
    codec.decode = binding_decoder(cls, type_name)
    return codec
