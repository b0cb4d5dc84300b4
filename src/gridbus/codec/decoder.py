"""Generated decoders: a sample read from bytes, every length checked before it is believed.

Each fixed-size run is checked against the end and unpacked by one
precompiled ``struct.Struct``; strings are checked for their bound, their NUL
and UTF-8; a count is believed only if the bytes left can hold that many
items.  Struct values are built once all their members are read, without
calling ``__init__`` where the class is a plain dataclass: ``object.__new__``
and one attribute store per member (the cheapest way CPython 3.11 has to fill
an instance: its values live inline, no ``__dict__`` is built).

The top-level decoder comes in two builds.  The *checked* one tests every
run against the end before unpacking it, to name the member where the data
stops.  The *optimistic* one (``checked=False``) leaves those tests to
``unpack_from`` itself, which never reads past the buffer and raises
``struct.error``; the whole body is in a ``try`` whose handler hands the
bytes to the checked build, so malformed data gets the same CodecError
either way, and well-formed data pays for no comparison that cannot fail.
Strings, counts and enum values are checked in both builds.
"""

from __future__ import annotations

import struct

from .plan import Array, EnumOf, Node, Prim, PrimArray, PrimSeq, Seq, Struct, Text, min_size
from .source import Function, Module, Slot, member_label

__all__ = ["Decoder"]


class Decoder(Function):
    """Emits code reading a sample from ``buf`` at offset ``p`` (payload starts at 4), up to ``end``."""

    def __init__(
        self, module: Module, name: str, endian: str, label: str, args: str = "buf, p, end", checked: bool = True
    ) -> None:
        super().__init__(module, f"def {name}({args}):")
        self.endian = endian
        self.label = label
        self.checked = checked  # False: fixed runs are left to unpack_from's own bound check (see top)
        # where the next member starts: "p", or a literal / local the generator knows it equals
        # (a run at a known offset reads ``unpack_from(buf, 12)``; no ``p += 8`` is executed)
        self.at = "p"
        self.deferred: list[str] = []  # struct constructions, once every member is unpacked
        module.functions.append(self.lines)

    def top(self, plan: Struct, header_check: bool) -> None:
        """The whole sample; with ``header_check`` the function also reads the header and dispatches.

        Unchecked (optimistic), the function is ``decode(buf)``: anything but
        little-endian XCDR1, and any ``struct.error`` or ``IndexError`` on the
        way (data shorter than a run or than the header), goes to
        ``_decode_checked(buf)``, which raises the precise CodecError.
        """
        if not self.checked:
            self.emit("try:")
            self.indent += "    "
            self.emit("end = len(buf)")
            self.emit("if buf[1] != 1: return _decode_checked(buf)")
            self.at, self.known = "4", 0
            self.finish(self.node(plan, ""))
            self.indent = self.indent[:-4]
            self.emit("except (_struct_error, IndexError):")
            self.emit("    return _decode_checked(buf)")
            return
        if header_check:
            type_name = self.module.type_name
            self.emit("end = len(buf)")
            self.emit(f"if end < 4: raise _truncated({type_name!r}, 'the encapsulation header', 0, end)")
            self.emit("kind = buf[1]")
            self.emit("if kind != 1:")
            self.emit("    return _decode_be(buf, 4, end) if kind == 0 else _other_encoding(buf, kind)")
            self.at = "4"
        self.known = 0
        result = self.node(plan, "")
        self.finish(result)

    def element(self, node: Node) -> None:
        result = self.node(node, self.label)
        self.finish(result, with_position=True)

    def finish(self, result: str, with_position: bool = False) -> None:
        self.flush()
        for line in self.deferred:
            self.emit(line)
        if with_position:  # an element: the caller goes on from where it ends
            self.materialize()
            self.emit(f"return {result}, p")
        else:
            self.emit(f"return {result}")

    def element_function(self, node: Node, label: str) -> str:
        """The name of a generated function decoding one element of a sequence or array."""
        key = ("dec", id(node), self.endian)
        name = self.module.helpers.get(key)
        if name is None:
            name = self.module.helpers[key] = self.module.fresh("_dec_")
            Decoder(self.module, name, self.endian, label).element(node)
        return name

    def fixed(self, code: str, size: int, align: int, label: str, prefix: str = "v") -> Slot:
        slot = Slot(code, size, align, target=self.local(prefix), value=label)
        self.slots.append(slot)
        return slot

    def materialize(self) -> None:
        """Make the local ``p`` hold the position (before code that reads or advances ``p`` itself)."""
        if self.at != "p":
            self.emit(f"p = {self.at}")
            self.at = "p"

    def flush(self) -> None:
        if not self.slots:
            return
        at = self.at
        name, size = self.run_structs(self.endian, 4)
        first = self.slots[0].value
        type_name = self.module.type_name
        targets = [s.target for s in self.slots if s.target is not None]
        unpacked = ", ".join(targets) + ("," if len(targets) == 1 else "")
        if size is not None:
            if self.checked:
                self.emit(f"if {at} + {size} > end: raise _truncated({type_name!r}, {first!r}, {at}, end)")
            self.emit(f"{unpacked} = {name}.unpack_from(buf, {at})")
            if at.isdigit():
                self.at = str(int(at) + size)
            else:
                self.emit(f"p = {at} + {size}" if at != "p" else f"p += {size}")
                self.at = "p"
            assert self.known is not None
            self.known += size
        else:
            self.emit(f"r = {name}[{at} & 7]")
            if self.checked:
                self.emit(f"if {at} + r.size > end: raise _truncated({type_name!r}, {first!r}, {at}, end)")
            self.emit(f"{unpacked} = r.unpack_from(buf, {at})")
            self.emit(f"p = {at} + r.size" if at != "p" else "p += r.size")
            self.at = "p"
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
        at = self.at
        self.emit(f"{stop} = {at} + {size}")
        self.emit(f"if not 0 < {size} <= {bound} or {stop} > end:")
        self.emit(f"    raise _bad_text_length({type_name!r}, {label!r}, {size}, {node.bound}, {at}, end)")
        self.emit(f"if buf[{stop} - 1]: raise _unterminated({type_name!r}, {label!r})")
        self.emit("try:")
        self.emit(f"    {value} = str(buf[{at}:{stop} - 1], 'utf-8')")
        self.emit("except UnicodeDecodeError:")
        self.emit(f"    raise _not_utf8({type_name!r}, {label!r}) from None")
        self.at = stop  # the next member starts where the string ends
        self.known = None
        return value

    def prim_seq(self, node: PrimSeq, label: str) -> str:
        count = self.fixed("I", 4, 4, label, "n").target or ""
        self.flush()
        self.materialize()
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
        self.materialize()
        least = max(1, min_size(node.element))
        self.emit(f"if {count} * {least} > end - p: raise _truncated({type_name!r}, {label!r}, p, end)")
        function = self.element_function(node.element, f"{label}[]")
        value, item = self.local(), self.local("e")
        self.emit(f"{value} = []")
        self.emit(f"for _ in range({count}):")
        self.emit(f"    {item}, p = {function}(buf, p, end)")
        self.emit(f"    {value}.append({item})")
        self.known = None
        return value

    def struct(self, node: Struct, label: str) -> str:
        values = [(member, self.node(inner, member_label(label, member))) for member, inner in node.members]
        cls, value = self.module.const(node.cls, "C"), self.local("o")
        if node.plain_init:
            self.deferred.append(f"{value} = _new({cls})")
            self.deferred += [f"{value}.{member} = {local}" for member, local in values]
        else:
            self.deferred.append(f"{value} = {cls}({', '.join(f'{m}={local}' for m, local in values)})")
        return value
