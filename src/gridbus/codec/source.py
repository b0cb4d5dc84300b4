"""The pieces generated code is made of: a module of functions and the constants they use.

A :class:`Module` is the source being generated for one type, with the
objects its code refers to by name (precompiled structs, classes, enum
tables, helpers).  A :class:`Function` is one function of it, gathering the
fixed-size run of members it is in the middle of (see :func:`run_format`);
:mod:`.encoder` and :mod:`.decoder` build on it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .support import HELPERS

__all__ = ["Function", "Generated", "Module", "Slot", "member_label", "run_format"]


@dataclass
class Generated:
    """One generated function (an encoder or a decoder), its source and the namespace it runs in."""

    function: Callable[..., Any]
    source: str
    namespace: dict[str, Any]


@dataclass
class Slot:
    """One fixed-size item of a run: struct format ``code``, aligned to ``align``."""

    code: str
    size: int
    align: int
    value: str | None = None  # encoder: the expression packed (None: a zero byte)
    target: str | None = None  # decoder: the local it is unpacked into (None: nothing)
    after: list[str] = field(default_factory=list)  # decoder: lines run once it is unpacked


def member_label(label: str, member: str) -> str:
    """Where a member is, for error messages: ``Ia``, ``origin.x``, ``channels[].name``."""
    return f"{label}.{member}" if label else member


def run_format(endian: str, slots: list[Slot], phase: int) -> str:
    """The struct format of ``slots`` packed from payload position ``phase`` (mod 8), padding included."""
    fmt, at = [endian], phase
    for slot in slots:
        pad = -at & (slot.align - 1)
        if pad:
            fmt.append(f"{pad}x")
        fmt.append(slot.code)
        at += pad + slot.size
    return "".join(fmt)


class Module:
    """The source being generated, with the constants (structs, classes, enums) it refers to."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.names: dict[str, Any] = dict(HELPERS)
        self.functions: list[list[str]] = []
        self._count = 0
        self.helpers: dict[tuple[str, int, str], str] = {}  # element functions made so far

    def const(self, value: Any, prefix: str) -> str:
        for name, known in self.names.items():
            if known is value:
                return name
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def source(self) -> str:
        return "\n\n".join("\n".join(lines) for lines in self.functions) + "\n"


class Function:
    """One generated function: its lines and the fixed-size run being gathered."""

    def __init__(self, module: Module, signature: str) -> None:
        self.module = module
        self.lines = [signature]
        self.indent = "    "
        self.slots: list[Slot] = []
        self.known: int | None = None  # payload position when known while generating

    def emit(self, line: str) -> None:
        self.lines.append(self.indent + line)

    def local(self, prefix: str = "v") -> str:
        return self.module.fresh(prefix)

    def run_structs(self, endian: str, bias: int) -> tuple[str, int | None]:
        """The constant holding this run's Struct (known position) or its 8 variants, indexed by ``bias + at``."""
        if self.known is not None:
            packer = struct.Struct(run_format(endian, self.slots, self.known & 7))
            return self.module.const(packer, "S"), packer.size
        variants = [struct.Struct(run_format(endian, self.slots, (i - bias) & 7)) for i in range(8)]
        return self.module.const(tuple(variants), "R"), None

    def check_count(self, count: str, bound: int | None, label: str) -> None:
        if bound:
            where = f"{self.module.type_name!r}, {label!r}"
            self.emit(f"if {count} > {bound}: raise _over_bound({where}, {count}, {bound})")
