"""The wire layout of a topic type, read from its idlc-generated Python class.

A *plan* is a small tree saying, member by member, what XCDR1 puts on the
wire: a primitive of some size, an enum (uint32), a bounded string, a
sequence or array (of primitives, or of anything else), a nested struct.
:mod:`gridbus.codec.generate` turns a plan into Python source for an encoder
and a decoder.  Anything the plan does not cover (unions, optional members,
@appendable/@mutable types, maps, bitmasks, ``char``) raises
:class:`Unsupported` with the reason, and the type keeps the binding's
serializer.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import typing
from dataclasses import dataclass

from cyclonedds.idl import IdlEnum, IdlStruct
from cyclonedds.idl import types as idl_types

from .. import _cyclone

__all__ = [
    "Array",
    "EnumOf",
    "Node",
    "Prim",
    "PrimArray",
    "PrimSeq",
    "Seq",
    "Struct",
    "Text",
    "Unsupported",
    "min_size",
    "plan_for",
]


class Unsupported(Exception):
    """A type (or one of its members) the generated codec does not cover; the message says why."""


@dataclass(frozen=True)
class Prim:
    """A primitive: ``code`` is its struct format letter, aligned to its size."""

    code: str
    size: int


@dataclass(frozen=True)
class EnumOf:
    """An enum: a uint32 on the wire, one of ``cls``'s values."""

    cls: type[enum.Enum]


@dataclass(frozen=True)
class Text:
    """A string: uint32 length (with the NUL), UTF-8 bytes, NUL; ``bound`` in bytes, None if unbounded."""

    bound: int | None


@dataclass(frozen=True)
class PrimSeq:
    """A sequence of primitives: uint32 count, then (if any) the items aligned to their size.

    An octet sequence (code ``B``) decodes as ``bytes``; other primitives as a list.
    """

    code: str
    size: int
    bound: int | None

    @property
    def octets(self) -> bool:
        return self.code == "B"


@dataclass(frozen=True)
class PrimArray:
    """A fixed array of primitives (an octet array is ``bytes``, as the binding gives it)."""

    code: str
    size: int
    length: int

    @property
    def octets(self) -> bool:
        return self.code == "B"


@dataclass(frozen=True)
class Seq:
    """A sequence of anything else (strings, enums, structs, arrays): uint32 count, items."""

    element: Node
    bound: int | None


@dataclass(frozen=True)
class Array:
    """A fixed array of anything else: the items, no count."""

    element: Node
    length: int


@dataclass(frozen=True)
class Struct:
    """A struct, its members in declaration order."""

    cls: type[IdlStruct]
    members: tuple[tuple[str, Node], ...]

    @property
    def name(self) -> str:
        return str(self.cls.__idl_typename__).replace(".", "::")

    @property
    def plain_init(self) -> bool:
        """Whether an instance can be made without calling ``__init__`` (a plain dataclass).

        The decoder then stores each member as a plain attribute, so the class
        must not intercept stores (a frozen dataclass, a ``__setattr__``) nor
        have a data descriptor (a property) of a member's name.
        """
        cls = self.cls
        return (
            dataclasses.is_dataclass(cls)
            and not hasattr(cls, "__post_init__")
            and "__slots__" not in vars(cls)
            and cls.__setattr__ is object.__setattr__
            and [f.name for f in dataclasses.fields(cls)] == [name for name, _ in self.members]
            and not any(hasattr(inspect.getattr_static(cls, name, None), "__set__") for name, _ in self.members)
        )


Node = Prim | EnumOf | Text | PrimSeq | PrimArray | Seq | Array | Struct


def plan_for(cls: type[IdlStruct]) -> Struct:
    """The layout of topic type ``cls``; raises :class:`Unsupported` if the codec cannot cover it."""
    if _cyclone.wire_version(cls) != 1:
        raise Unsupported("the binding writes it as XCDR2 (an @appendable/@mutable or optional member)")
    return _struct(cls, ())


def _struct(cls: type[IdlStruct], outer: tuple[type, ...]) -> Struct:
    name = str(cls.__idl_typename__).replace(".", "::")
    if cls in outer:
        raise Unsupported(f"{name} contains itself")
    extensibility = cls.__idl_annotations__.get("extensibility", "final")
    if extensibility != "final":
        raise Unsupported(f"{name} is @{extensibility}")
    members = []
    for member, hint in _cyclone.type_hints(cls).items():
        try:
            members.append((member, _node(hint, (*outer, cls))))
        except Unsupported as exc:
            raise Unsupported(f"{name}.{member}: {exc}") from None
    return Struct(cls, tuple(members))


def _node(hint: typing.Any, outer: tuple[type, ...]) -> Node:
    """The plan of one member from its type as the binding sees it."""
    while isinstance(hint, idl_types.typedef):
        hint = hint.subtype
    primitive = _cyclone.PRIMITIVES.get(hint) if _hashable(hint) else None
    if primitive is not None:
        return Prim(*primitive)
    if hint is str:
        return Text(None)
    if isinstance(hint, idl_types.bounded_str):
        return Text(hint.max_length)
    if inspect.isclass(hint) and issubclass(hint, IdlEnum):
        if not all(isinstance(m.value, int) and 0 <= m.value < 2**32 for m in hint):
            raise Unsupported(f"enum {hint.__name__} has values that are not uint32")
        return EnumOf(hint)
    if inspect.isclass(hint) and issubclass(hint, IdlStruct):
        return _struct(hint, outer)
    if isinstance(hint, idl_types.sequence):
        element = _node(hint.subtype, outer)
        if isinstance(element, Prim):
            return PrimSeq(element.code, element.size, hint.max_length)
        return Seq(element, hint.max_length)
    if isinstance(hint, idl_types.array):
        element = _node(hint.subtype, outer)
        if isinstance(element, Prim):
            return PrimArray(element.code, element.size, hint.length)
        return Array(element, hint.length)
    raise Unsupported(f"{_describe(hint)} is not covered by the generated codec")


def _hashable(hint: typing.Any) -> bool:
    try:
        hash(hint)
    except TypeError:
        return False
    return True


def _describe(hint: typing.Any) -> str:
    if hint == idl_types.char:
        return "char"
    return getattr(hint, "__name__", None) or type(hint).__name__


def min_size(node: Node) -> int:
    """The fewest bytes ``node`` can take on the wire (padding aside): bounds the counts a decoder believes."""
    if isinstance(node, Prim):
        return node.size
    if isinstance(node, (EnumOf, PrimSeq, Seq)):
        return 4
    if isinstance(node, Text):
        return 5
    if isinstance(node, PrimArray):
        return node.size * node.length
    if isinstance(node, Array):
        return min_size(node.element) * node.length
    return sum(min_size(member) for _, member in node.members)
