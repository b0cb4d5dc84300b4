"""The data model at run time: object types, their topics and fields.

An *object type* is an IDL module holding a ``PREFIX`` constant and structs
named by topic role (``Measurement``, ``State``, ``Command``, ``Protection``,
any other name works too).  An *object id* is ``PREFIX_index`` (``G_1``,
``PV_EM_2``, ``TL_1-2``).  Types come from the idlc-generated classes; units
and ranges from the metadata idlc's Python backend drops (see :mod:`gridbus.idl`).

Samples are built here and checked field by field, because cyclonedds only
notices a bad value when it serializes, with a bare message.
"""

from __future__ import annotations

import enum
import fnmatch
import importlib
import inspect
import json
import math
import pkgutil
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

from cyclonedds.idl import IdlEnum, IdlStruct
from cyclonedds.idl import types as idl_types

from .errors import FieldError, IdlError, UnknownObjectError
from .idl import METADATA_FILE, PACKAGE_ROOT, FieldMeta, Metadata, load_user_idl

ROLES_IN_ORDER = ("Measurement", "State", "Command", "Protection")
_INDEX = r"[A-Za-z0-9][A-Za-z0-9.\-]*"
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
            where = f"{object_id}.{name} ({self.name})"
            args[name] = info.coerce(given.pop(name), where) if name in given else info.default()
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
            if name != "id":
                info.coerce(getattr(sample, name), f"{object_id}.{name} ({self.name})")

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


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, IdlStruct):
        return {k: _plain(v) for k, v in vars(value).items() if k != "sample_info"}
    return value


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
