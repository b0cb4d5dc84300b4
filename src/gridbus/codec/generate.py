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

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .plan import Array, EnumOf, Node, Prim, PrimArray, PrimSeq, Seq, Struct, Text, min_size
from .support import HELPERS

__all__ = ["Generated", "generate_decoder", "generate_encoder"]

_HEADER_LE = b"\x00\x01\x00\x00"  # CDR_LE: XCDR1, little endian (what the binding writes on x86/arm)


@dataclass
class Generated:
    """One generated function (an encoder or a decoder), its source and the namespace it runs in."""

    function: Callable[..., Any]
    source: str
    namespace: dict[str, Any]


@dataclass
class _Slot:
    """One fixed-size item of a run: struct format ``code``, aligned to ``align``."""

    code: str
    size: int
    align: int
    value: str | None = None  # encoder: the expression packed (None: a zero byte)
    target: str | None = None  # decoder: the local it is unpacked into (None: nothing)
    after: list[str] = field(default_factory=list)  # decoder: lines run once it is unpacked


def _member(label: str, member: str) -> str:
    """Where a member is, for error messages: ``Ia``, ``origin.x``, ``channels[].name``."""
    return f"{label}.{member}" if label else member


def _run_format(endian: str, slots: list[_Slot], phase: int) -> str:
    """The struct format of ``slots`` packed from payload position ``phase`` (mod 8), padding included."""
    fmt, at = [endian], phase
    for slot in slots:
        pad = -at & (slot.align - 1)
        if pad:
            fmt.append(f"{pad}x")
        fmt.append(slot.code)
        at += pad + slot.size
    return "".join(fmt)


class _Module:
    """The source being generated, with the constants (structs, classes, enums) it refers to."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.names: dict[str, Any] = dict(HELPERS)
        self.functions: list[list[str]] = []
        self._count = 0
        self._helpers: dict[tuple[str, int, str], str] = {}

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

    def element_function(self, kind: str, node: Node, endian: str, label: str) -> str:
        """The name of a generated function coding one element of a sequence or array."""
        key = (kind, id(node), endian)
        if key not in self._helpers:
            name = self._helpers[key] = self.fresh(f"_{kind}_")
            if kind == "enc":
                _Encoder(self, name, ("v", "parts", "pos"), label).element(node)
            else:
                _Decoder(self, name, endian, label).element(node)
        return self._helpers[key]

    def source(self) -> str:
        return "\n\n".join("\n".join(lines) for lines in self.functions) + "\n"


class _Function:
    """One generated function: its lines and the fixed-size run being gathered."""

    def __init__(self, module: _Module, signature: str) -> None:
        self.module = module
        self.lines = [signature]
        self.indent = "    "
        self.slots: list[_Slot] = []
        self.known: int | None = None  # payload position when known while generating

    def emit(self, line: str) -> None:
        self.lines.append(self.indent + line)

    def local(self, prefix: str = "v") -> str:
        return self.module.fresh(prefix)

    def run_structs(self, endian: str, bias: int) -> tuple[str, int | None]:
        """The constant holding this run's Struct (known position) or its 8 variants, indexed by ``bias + at``."""
        if self.known is not None:
            packer = struct.Struct(_run_format(endian, self.slots, self.known & 7))
            return self.module.const(packer, "S"), packer.size
        variants = [struct.Struct(_run_format(endian, self.slots, (i - bias) & 7)) for i in range(8)]
        return self.module.const(tuple(variants), "R"), None

    def check_count(self, count: str, bound: int | None, label: str) -> None:
        if bound:
            where = f"{self.module.type_name!r}, {label!r}"
            self.emit(f"if {count} > {bound}: raise _over_bound({where}, {count}, {bound})")


# ------------------------------------------------------------------------------- encoder
class _Encoder(_Function):
    """Emits code appending a sample's bytes to ``parts`` and advancing ``pos`` (payload position)."""

    def __init__(self, module: _Module, name: str, args: tuple[str, ...], label: str) -> None:
        super().__init__(module, f"def {name}({', '.join(args)}):")
        self.label = label
        module.functions.append(self.lines)

    def top(self, plan: Struct) -> None:
        """The whole sample: header, members, optional padding to 4 bytes."""
        header = self.module.const(_HEADER_LE, "HEADER")
        self.emit("try:")
        self.indent = "        "
        self.emit(f"parts = [{header}]")
        self.emit("pos = 0")
        self.known = 0
        self.node(plan, "s", "")
        self.flush()
        self.emit("if pad and pos & 3:")
        self.emit("    parts.append(_ZEROS[-pos & 3])")
        self.emit('return b"".join(parts)')
        self.indent = "    "
        self.emit("except CodecError:")
        self.emit("    raise")
        self.emit("except Exception as exc:")
        self.emit("    raise _encode_failed(s, exc) from None")

    def element(self, node: Node) -> None:
        self.node(node, "v", self.label)
        self.flush()
        self.emit("return pos")

    def fixed(self, code: str, size: int, align: int, value: str | None) -> None:
        self.slots.append(_Slot(code, size, align, value=value))

    def flush(self) -> None:
        if not self.slots:
            return
        values = ", ".join(s.value for s in self.slots if s.value is not None)
        name, size = self.run_structs("<", 0)
        if size is not None:
            self.emit(f"parts.append({name}.pack({values}))")
            self.emit(f"pos += {size}")
            assert self.known is not None
            self.known += size
        else:
            self.emit(f"r = {name}[pos & 7]")
            self.emit(f"parts.append(r.pack({values}))")
            self.emit("pos += r.size")
        self.slots = []

    def variable(self) -> None:
        """After a variable-length part: positions are known only at run time."""
        self.known = None

    def node(self, node: Node, expr: str, label: str) -> None:
        if isinstance(node, Prim):
            self.fixed(node.code, node.size, node.size, expr)
        elif isinstance(node, EnumOf):
            self.fixed("I", 4, 4, f"_enum_value({expr})")
        elif isinstance(node, PrimArray):
            if node.octets:
                self.fixed(f"{node.length}s", node.length, 1, f"_octet_array({expr}, {node.length}, {label!r})")
            else:
                self.fixed(f"{node.length}{node.code}", node.length * node.size, node.size, f"*{expr}")
        elif isinstance(node, Text):
            self.text(node, expr, label)
        elif isinstance(node, PrimSeq):
            self.prim_seq(node, expr, label)
        elif isinstance(node, (Seq, Array)):
            self.repeated(node, expr, label)
        else:
            value = self.local("o")
            self.emit(f"{value} = {expr}")
            for member, inner in node.members:
                self.node(inner, f"{value}.{member}", _member(label, member))

    def text(self, node: Text, expr: str, label: str) -> None:
        data, size = self.local("b"), self.local("n")
        self.emit(f"{data} = {expr}.encode()")
        self.emit(f"{size} = len({data})")
        self.check_count(size, node.bound, label)
        self.fixed("I", 4, 4, f"{size} + 1")
        self.flush()
        self.emit(f"parts.append({data})")
        self.emit(f"pos += {size}")
        self.variable()
        self.fixed("x", 1, 1, None)  # the NUL, packed with whatever follows

    def prim_seq(self, node: PrimSeq, expr: str, label: str) -> None:
        value, count = self.local("q"), self.local("n")
        self.emit(f"{value} = {expr}")
        self.emit(f"{count} = len({value})")
        self.check_count(count, node.bound, label)
        self.fixed("I", 4, 4, count)
        self.flush()
        self.emit(f"if {count}:")
        if node.size > 1:
            self.emit(f"    gap = -pos & {node.size - 1}")
            self.emit("    parts.append(_ZEROS[gap])")
            self.emit("    pos += gap")
        packed = f"_octets({value})" if node.octets else f"_pack_items({value}, {node.code!r}, {count})"
        self.emit(f"    parts.append({packed})")
        self.emit(f"    pos += {count}" + (f" * {node.size}" if node.size > 1 else ""))
        self.variable()

    def repeated(self, node: Seq | Array, expr: str, label: str) -> None:
        value = self.local("q")
        self.emit(f"{value} = {expr}")
        if isinstance(node, Seq):
            count = self.local("n")
            self.emit(f"{count} = len({value})")
            self.check_count(count, node.bound, label)
            self.fixed("I", 4, 4, count)
        else:
            self.emit(
                f"if len({value}) != {node.length}: "
                f"raise _wrong_length({self.module.type_name!r}, {label!r}, len({value}), {node.length})"
            )
        self.flush()
        function = self.module.element_function("enc", node.element, "<", f"{label}[]")
        item = self.local("e")
        self.emit(f"for {item} in {value}:")
        self.emit(f"    pos = {function}({item}, parts, pos)")
        self.variable()


# ------------------------------------------------------------------------------- decoder
class _Decoder(_Function):
    """Emits code reading a sample from ``buf`` at offset ``p`` (payload starts at 4), up to ``end``."""

    def __init__(self, module: _Module, name: str, endian: str, label: str, args: str = "buf, p, end") -> None:
        super().__init__(module, f"def {name}({args}):")
        self.endian = endian
        self.label = label
        self.deferred: list[str] = []  # struct constructions, once every member is unpacked
        module.functions.append(self.lines)

    def top(self, plan: Struct, header_check: bool) -> None:
        """The whole sample; with ``header_check`` the function also reads the header and dispatches."""
        if header_check:
            type_name = self.module.type_name
            self.emit("end = len(buf)")
            self.emit(f"if end < 4: raise _truncated({type_name!r}, 'the encapsulation header', 0, end)")
            self.emit("kind = buf[1]")
            self.emit("if kind != 1:")
            self.emit("    return _decode_be(buf, 4, end) if kind == 0 else _other_encoding(buf, kind)")
            self.emit("p = 4")
        self.known = 0
        result = self.node(plan, "")
        self.finish(result)

    def element(self, node: Node) -> None:
        result = self.node(node, self.label)
        self.finish(result, "return {}, p")

    def finish(self, result: str, template: str = "return {}") -> None:
        self.flush()
        for line in self.deferred:
            self.emit(line)
        self.emit(template.format(result))

    def fixed(self, code: str, size: int, align: int, label: str, prefix: str = "v") -> _Slot:
        slot = _Slot(code, size, align, target=self.local(prefix), value=label)
        self.slots.append(slot)
        return slot

    def flush(self) -> None:
        if not self.slots:
            return
        name, size = self.run_structs(self.endian, 4)
        first = self.slots[0].value
        type_name = self.module.type_name
        targets = [s.target for s in self.slots if s.target is not None]
        unpacked = ", ".join(targets) + ("," if len(targets) == 1 else "")
        if size is not None:
            self.emit(f"if p + {size} > end: raise _truncated({type_name!r}, {first!r}, p, end)")
            self.emit(f"{unpacked} = {name}.unpack_from(buf, p)")
            self.emit(f"p += {size}")
            assert self.known is not None
            self.known += size
        else:
            self.emit(f"r = {name}[p & 7]")
            self.emit(f"if p + r.size > end: raise _truncated({type_name!r}, {first!r}, p, end)")
            self.emit(f"{unpacked} = r.unpack_from(buf, p)")
            self.emit("p += r.size")
        for slot in self.slots:
            for line in slot.after:
                self.emit(line)
        self.slots = []

    def node(self, node: Node, label: str) -> str:
        """Emit the reading of ``node``; return the expression (a local) holding its value once done."""
        if isinstance(node, Prim):
            return self.fixed(node.code, node.size, node.size, label).target or ""
        if isinstance(node, EnumOf):
            return self.enum(node, label)
        if isinstance(node, PrimArray):
            if node.octets:
                return self.fixed(f"{node.length}s", node.length, 1, label).target or ""
            return self.prim_array(node, label)
        if isinstance(node, Text):
            return self.text(node, label)
        if isinstance(node, PrimSeq):
            return self.prim_seq(node, label)
        if isinstance(node, (Seq, Array)):
            return self.repeated(node, label)
        return self.struct(node, label)

    def enum(self, node: EnumOf, label: str) -> str:
        slot = self.fixed("I", 4, 4, label, "raw")
        values = self.module.const({m.value: m for m in node.cls}, f"ENUM_{node.cls.__name__}_")
        value = self.local()
        slot.after += [
            f"{value} = {values}.get({slot.target})",
            f"if {value} is None: raise _bad_enum({self.module.type_name!r}, {label!r}, {slot.target}, "
            f"{self.module.const(node.cls, 'E')})",
        ]
        return value

    def prim_array(self, node: PrimArray, label: str) -> str:
        # one slot per item would make long unpack targets; the array is unpacked as one tuple instead
        packer = struct.Struct(f"{self.endian}{node.length}{node.code}")
        slot = self.fixed(f"{node.length * node.size}s", node.length * node.size, node.size, label, "raw")
        value = self.local()
        slot.after.append(f"{value} = list({self.module.const(packer, 'A')}.unpack({slot.target}))")
        return value

    def text(self, node: Text, label: str) -> str:
        size = self.fixed("I", 4, 4, label, "n").target
        self.flush()
        value, stop = self.local(), self.local("q")
        type_name = self.module.type_name
        bound = node.bound + 1 if node.bound else 2**32
        self.emit(f"{stop} = p + {size}")
        self.emit(f"if not 0 < {size} <= {bound} or {stop} > end:")
        self.emit(f"    raise _bad_text_length({type_name!r}, {label!r}, {size}, {node.bound}, p, end)")
        self.emit(f"if buf[{stop} - 1]: raise _unterminated({type_name!r}, {label!r})")
        self.emit("try:")
        self.emit(f"    {value} = str(buf[p:{stop} - 1], 'utf-8')")
        self.emit("except UnicodeDecodeError:")
        self.emit(f"    raise _not_utf8({type_name!r}, {label!r}) from None")
        self.emit(f"p = {stop}")
        self.known = None
        return value

    def prim_seq(self, node: PrimSeq, label: str) -> str:
        count = self.fixed("I", 4, 4, label, "n").target or ""
        self.flush()
        self.check_count(count, node.bound, label)
        value, stop = self.local(), self.local("q")
        type_name = self.module.type_name
        self.emit(f"if {count}:")
        if node.size > 1:
            self.emit(f"    p += (4 - p) & {node.size - 1}")
        self.emit(f"    {stop} = p + {count}" + (f" * {node.size}" if node.size > 1 else ""))
        self.emit(f"    if {stop} > end: raise _truncated({type_name!r}, {label!r}, p, end)")
        if node.octets:
            self.emit(f"    {value} = bytes(buf[p:{stop}])")
        else:
            self.emit(f"    {value} = _unpack_items(buf, p, {count}, {(self.endian + node.code)!r})")
        self.emit(f"    p = {stop}")
        self.emit("else:")
        empty = 'b""' if node.octets else "[]"
        self.emit(f"    {value} = {empty}")
        self.known = None
        return value

    def repeated(self, node: Seq | Array, label: str) -> str:
        type_name = self.module.type_name
        if isinstance(node, Seq):
            count = self.fixed("I", 4, 4, label, "n").target or ""
            self.flush()
            self.check_count(count, node.bound, label)
        else:
            self.flush()
            count = str(node.length)
        least = max(1, min_size(node.element))
        self.emit(f"if {count} * {least} > end - p: raise _truncated({type_name!r}, {label!r}, p, end)")
        function = self.module.element_function("dec", node.element, self.endian, f"{label}[]")
        value, item = self.local(), self.local("e")
        self.emit(f"{value} = []")
        self.emit(f"for _ in range({count}):")
        self.emit(f"    {item}, p = {function}(buf, p, end)")
        self.emit(f"    {value}.append({item})")
        self.known = None
        return value

    def struct(self, node: Struct, label: str) -> str:
        values = [(member, self.node(inner, _member(label, member))) for member, inner in node.members]
        cls, value = self.module.const(node.cls, "C"), self.local("o")
        if node.plain_init:
            fields = ", ".join(f"{member!r}: {local}" for member, local in values)
            self.deferred += [f"{value} = _new({cls})", f"{value}.__dict__ = {{{fields}}}"]
        else:
            self.deferred.append(f"{value} = {cls}({', '.join(f'{m}={local}' for m, local in values)})")
        return value


def generate_encoder(plan: Struct) -> Generated:
    """Generate and compile the encoder of ``plan``'s type: ``encode(sample, pad=False)``."""
    module = _Module(plan.name)
    _Encoder(module, "encode", ("s", "pad=False"), "").top(plan)
    return _compile(module, plan, "encode")


def generate_decoder(plan: Struct) -> Generated:
    """Generate and compile the decoder of ``plan``'s type: ``decode(data)``, either byte order.

    The big-endian half is generated when the first big-endian sample comes
    (rarely: from another vendor's node on a big-endian machine).
    """
    module = _Module(plan.name)
    _Decoder(module, "decode", "<", "", args="buf").top(plan, header_check=True)
    made = _compile(module, plan, "decode")
    namespace = made.namespace

    def decode_be_first(buf: Any, p: int, end: int) -> Any:
        big = _Module(plan.name)
        _Decoder(big, "_decode_be", ">", "").top(plan, header_check=False)
        namespace["_decode_be"] = function = _compile(big, plan, "_decode_be").function
        return function(buf, p, end)

    namespace["_decode_be"] = decode_be_first
    return made


def _compile(module: _Module, plan: Struct, name: str) -> Generated:
    source = module.source()
    namespace = dict(module.names)
    namespace["_other_encoding"] = _other_encoding(plan)
    namespace["_encode_failed"] = _encode_failed(plan)
    exec(compile(source, f"<gridbus codec {plan.name}>", "exec"), namespace)  # noqa: S102 - our own source
    return Generated(namespace[name], source, namespace)


def _other_encoding(plan: Struct) -> Callable[[Any, int], Any]:
    """Data in an encoding the generated decoder does not read (XCDR2, PL_CDR): the binding decodes it."""
    from .support import binding_decoder

    return binding_decoder(plan.cls, plan.name)


def _encode_failed(plan: Struct) -> Callable[[Any, Exception], Exception]:
    from .support import encode_failure

    def failed(sample: Any, exc: Exception) -> Exception:
        return encode_failure(plan.cls, plan.name, sample, exc)

    return failed
