"""Generated encoders: a sample's members appended to a list of byte strings.

The encoder tracks the payload position (known while generating until the
first string or sequence, then at run time) so that each fixed-size run is
packed by the precompiled ``struct.Struct`` of its position modulo 8.
"""

from __future__ import annotations

from .plan import Array, EnumOf, Node, Prim, PrimArray, PrimSeq, Seq, Struct, Text
from .source import Function, Module, Slot, member_label

__all__ = ["Encoder"]

_HEADER_LE = b"\x00\x01\x00\x00"  # CDR_LE: XCDR1, little endian (what the binding writes on x86/arm)


class Encoder(Function):
    """Emits code appending a sample's bytes to ``parts`` and advancing ``pos`` (payload position)."""

    def __init__(self, module: Module, name: str, args: tuple[str, ...], label: str) -> None:
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

    def element_function(self, node: Node, label: str) -> str:
        """The name of a generated function encoding one element of a sequence or array."""
        key = ("enc", id(node), "<")
        name = self.module.helpers.get(key)
        if name is None:
            name = self.module.helpers[key] = self.module.fresh("_enc_")
            Encoder(self.module, name, ("v", "parts", "pos"), label).element(node)
        return name

    def fixed(self, code: str, size: int, align: int, value: str | None) -> None:
        self.slots.append(Slot(code, size, align, value=value))

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
                self.node(inner, f"{value}.{member}", member_label(label, member))

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
        function = self.element_function(node.element, f"{label}[]")
        item = self.local("e")
        self.emit(f"for {item} in {value}:")
        self.emit(f"    pos = {function}({item}, parts, pos)")
        self.variable()
