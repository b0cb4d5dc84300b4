"""The data model at run time: object types, their topics and fields.

An *object type* is an IDL module holding a ``PREFIX`` constant and structs
named by topic role (``Measurement``, ``State``, ``Command``, ``Protection``,
any other name works too).  An *object id* is ``PREFIX_index`` (``G_1``,
``PV_EM_2``, ``TL_1-2``).  Types come from the idlc-generated classes; units
and ranges from the metadata idlc's Python backend drops (see :mod:`gridbus.idl`).

Samples are built here and checked field by field (the per-field conversion
and range checks are in :mod:`gridbus.fields`).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import json
import pkgutil
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cyclonedds.idl import IdlStruct

from .errors import FieldError, IdlError, UnknownObjectError
from .fields import FLOAT32_MAX, FieldInfo, _field_info, _plain
from .idl import METADATA_FILE, PACKAGE_ROOT, Metadata, load_user_idl

# FieldInfo (and the sample-to-plain-data helper) live in gridbus.fields; re-exported here for old imports
__all__ = ["FLOAT32_MAX", "ROLES_IN_ORDER", "FieldInfo", "ObjectType", "Registry", "TopicType", "_plain"]

ROLES_IN_ORDER = ("Measurement", "State", "Command", "Protection")
_INDEX = r"[A-Za-z0-9][A-Za-z0-9.\-]*"


@dataclass
class TopicType:
    """One topic: an object type's struct for one role (``Generator`` × ``Measurement``)."""

    object_type: ObjectType
    role: str
    cls: type[IdlStruct]
    fields: dict[str, FieldInfo]

    @property
    def name(self) -> str:
        """The DDS topic name, ``<Module>_<Role>`` (``Generator_Measurement``)."""
        return f"{self.object_type.name}_{self.role}"

    @property
    def type_name(self) -> str:
        """The IDL scoped type name on the wire (``grid::Generator::Measurement``)."""
        return self.cls.__idl_typename__.replace(".", "::")

    def build(self, object_id: str, values: dict[str, Any] | None = None, **kw: Any) -> IdlStruct:
        """Build a checked sample for ``object_id``; fields left out get defaults.

        Defaults: 0 for measurements, NaN ("unchanged") for command set-points,
        the first enumerator (NONE, OPEN, OFF…) for enums.
        """
        given = dict(values or {}, **kw)
        given.pop("id", None)
        args: dict[str, Any] = {"id": object_id}
        for name, info in self.fields.items():
            if name == "id":
                continue
            if name not in given:
                args[name] = info.default()
                continue
            value = given.pop(name)
            # an in-range float (most of what programs publish) is taken as is: the full check
            # costs more than encoding the sample
            args[name] = value if info.accepts(value) else info.coerce(value, f"{object_id}.{name} ({self.name})")
        if given:
            unknown = ", ".join(sorted(given))
            raise FieldError(
                f"{object_id}: unknown field(s) {unknown} for topic {self.name}; "
                f"fields are {', '.join(n for n in self.fields if n != 'id')}"
            )
        return self.cls(**args)

    def check(self, sample: IdlStruct) -> None:
        """Check a *received* sample against the IDL's types and ranges.

        Any process on the domain can write, bypassing the sender's checks, so a
        service checks what it is about to obey.  Raises FieldError naming the
        object, field and topic of the first bad value (±inf is outside every
        range; NaN stays allowed: in commands it means "unchanged").
        """
        object_id = getattr(sample, "id", "?")
        for name, info in self.fields.items():
            if name != "id" and not info.accepts(value := getattr(sample, name)):
                info.coerce(value, f"{object_id}.{name} ({self.name})")

    def update(self, sample: IdlStruct, **values: Any) -> IdlStruct:
        """Return a copy of ``sample`` with ``values`` checked and applied."""
        current = {n: getattr(sample, n) for n in self.fields}
        current.update(values)
        return self.build(current.pop("id"), current)

    def to_dict(self, sample: IdlStruct) -> dict[str, Any]:
        """Plain JSON-able fields of a sample (enums by name)."""
        return {name: _plain(getattr(sample, name)) for name in self.fields}

    def describe(self) -> dict[str, Any]:
        return {
            "topic": self.name,
            "type": self.type_name,
            "role": self.role,
            "fields": [f.describe() for f in self.fields.values()],
        }


@dataclass
class ObjectType:
    """A kind of testbed object (``Generator``, prefix ``G``) and its topics."""

    name: str
    prefix: str
    title: str
    module: str  # IDL scoped module name, grid::Generator
    topics: dict[str, TopicType] = field(default_factory=dict)

    def topic(self, role: str) -> TopicType:
        try:
            return self.topics[role]
        except KeyError:
            raise UnknownObjectError(
                f"object type {self.name} ({self.prefix}) has no {role} topic; it has {', '.join(self.topics)}"
            ) from None

    def topic_of_fields(self, names: Iterable[str]) -> TopicType:
        """The single topic that has every field in ``names`` (commands win)."""
        names = set(names) - {"id"}
        ordered = sorted(self.topics.values(), key=lambda t: (t.role != "Command", t.role != "State"))
        for topic in ordered:
            if names <= set(topic.fields):
                return topic
        known = sorted({n for t in self.topics.values() for n in t.fields if n != "id"})
        unknown = sorted(n for n in names if n not in known)
        if unknown:
            raise FieldError(
                f"{self.name} ({self.prefix}_x) has no field {', '.join(unknown)}; known fields: {', '.join(known)}"
            )
        raise FieldError(f"fields {', '.join(sorted(names))} of {self.name} are not all on one topic")


class Registry:
    """All object types gridbus knows: the built-in ``grid`` model plus user IDL."""

    def __init__(self) -> None:
        self.object_types: dict[str, ObjectType] = {}  # by prefix
        self._metadata: Metadata = {}

    @classmethod
    def default(cls) -> Registry:
        registry = cls()
        registry.add_package(f"{PACKAGE_ROOT}.grid", json.loads(METADATA_FILE.read_text()))
        return registry

    # -- loading -------------------------------------------------------------------
    def load_idl(self, idl_file: str | Path) -> list[ObjectType]:
        """Compile a user's IDL file and add its object types (the paper's expandability)."""
        tops, metadata = load_user_idl(Path(idl_file))
        added: list[ObjectType] = []
        for top in tops:
            added += self.add_package(f"{PACKAGE_ROOT}.{top}", metadata, source=str(idl_file))
        if not added:
            raise IdlError(
                f"{idl_file}: no object type found: declare a module with "
                '`const string PREFIX = "XX";` and a struct per topic role'
            )
        return added

    def add_package(self, package: str, metadata: Metadata, source: str = "") -> list[ObjectType]:
        self._metadata.update(metadata)
        root = importlib.import_module(package)
        added = []
        for module in _walk(root):
            prefix = getattr(module, "PREFIX", None)
            if isinstance(prefix, str):
                added.append(self._add_object_type(module, prefix, source))
        return added

    def _add_object_type(self, module: ModuleType, prefix: str, source: str) -> ObjectType:
        where = source or module.__name__
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", prefix) or prefix.endswith("_"):
            raise IdlError(f"{where}: PREFIX {prefix!r} must be letters, digits and inner underscores")
        if prefix in self.object_types:
            other = self.object_types[prefix]
            raise IdlError(f"{where}: PREFIX {prefix!r} is already used by {other.module}")
        scoped = module.__name__[len(PACKAGE_ROOT) + 1 :].replace(".", "::")
        obj = ObjectType(
            name=module.__name__.rsplit(".", 1)[-1], prefix=prefix, title=getattr(module, "TITLE", ""), module=scoped
        )
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and issubclass(cls, IdlStruct) and cls.__module__.startswith(module.__name__):
                obj.topics[name] = self._topic_type(obj, name, cls, where)
        if not obj.topics:
            raise IdlError(f"{where}: module {scoped} declares PREFIX but no struct")
        self.object_types[prefix] = obj
        return obj

    def _topic_type(self, obj: ObjectType, role: str, cls: type[IdlStruct], where: str) -> TopicType:
        scoped = cls.__idl_typename__.replace(".", "::")
        hints = typing.get_type_hints(cls, include_extras=True)
        keys = [n for n, a in cls.__idl_field_annotations__.items() if a.get("key")]
        if next(iter(hints), None) != "id" or keys != ["id"]:
            raise IdlError(
                f"{where}: struct {scoped} must start with `@key string<N> id;` (the object id) and have no other key"
            )
        if cls.__idl_annotations__.get("extensibility", "final") != "final":
            raise IdlError(
                f"{where}: struct {scoped} must be @final (XCDR1, readable by other vendors' default readers)"
            )
        meta = self._metadata.get(scoped, {})
        command_like = role == "Command"
        fields = {n: _field_info(n, h, meta.get(n, {}), command_like) for n, h in hints.items()}
        if fields["id"].kind != "str":
            raise IdlError(f"{where}: {scoped}.id must be a string")
        return TopicType(obj, role, cls, fields)

    # -- lookup --------------------------------------------------------------------
    def parse_id(self, object_id: str) -> ObjectType:
        """The object type of ``object_id`` (``G_1`` → Generator), or a clear error."""
        if not isinstance(object_id, str):
            raise UnknownObjectError(f"object id must be a string like G_1, got {object_id!r}")
        for prefix in sorted(self.object_types, key=len, reverse=True):
            if object_id.startswith(prefix + "_") and re.fullmatch(_INDEX, object_id[len(prefix) + 1 :]):
                obj = self.object_types[prefix]
                bound = obj.topics[next(iter(obj.topics))].fields["id"].length
                if bound is not None and len(object_id.encode()) > bound:
                    raise UnknownObjectError(f"object id {object_id!r} is longer than {bound} bytes")
                return obj
        raise UnknownObjectError(
            f"unknown object id {object_id!r}: an id is PREFIX_index with PREFIX one of {', '.join(self.prefixes())}"
        )

    def by_prefix(self, prefix: str) -> ObjectType:
        try:
            return self.object_types[prefix]
        except KeyError:
            raise UnknownObjectError(
                f"unknown object type prefix {prefix!r}; known: {', '.join(self.prefixes())}"
            ) from None

    def by_name(self, name: str) -> ObjectType:
        for obj in self.object_types.values():
            if obj.name == name or obj.prefix == name:
                return obj
        raise UnknownObjectError(f"unknown object type {name!r}; known: {', '.join(self.prefixes())}")

    def select(self, pattern: str) -> tuple[list[ObjectType], str | None]:
        """Resolve ``G_1``, ``G``, ``G_*`` or ``*`` to object types and an optional exact id."""
        if pattern in ("*", "all"):
            return list(self.object_types.values()), None
        if pattern in self.object_types:
            return [self.object_types[pattern]], None
        if any(ch in pattern for ch in "*?["):
            # a pattern matches a type when it matches that type's ids (G_* ~ G_1)
            matching = [o for o in self.object_types.values() if fnmatch.fnmatchcase(f"{o.prefix}_1", pattern)]
            if not matching:
                raise UnknownObjectError(
                    f"pattern {pattern!r} matches no object type; known prefixes: {', '.join(self.prefixes())}"
                )
            return matching, None
        return [self.parse_id(pattern)], pattern

    def prefixes(self) -> list[str]:
        return list(self.object_types)

    def topics(self) -> list[TopicType]:
        return [t for o in self.object_types.values() for t in o.topics.values()]


def _walk(root: ModuleType) -> Iterable[ModuleType]:
    yield root
    for info in pkgutil.walk_packages(root.__path__, root.__name__ + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            yield importlib.import_module(info.name)
