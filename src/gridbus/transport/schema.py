"""What a board knows of the data model: the fields of its objects' topics, from the bridge.

The generated topic types import ``cyclonedds.idl``, so a board cannot load
them.  Instead the bridge answers a Zenoh query per object id with the
object type's topics and fields (name, kind, range, enum values, string
bound: :func:`describe_object`, run on the bridge), and the board builds,
checks and sends plain field values.  The description comes from the
bridge's own data model at run time, so board and bridge never disagree on
a field (a user IDL loaded by the bridge reaches the boards too).

Only scalar fields (numbers, booleans, strings, enums) travel this way:
that is every field of gridbus's measurement, state, command and log
topics.  Arrays and nested structs keep their defaults on the board path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import FieldError, UnknownObjectError

__all__ = ["BoardField", "BoardObject", "BoardSample", "BoardTopic", "describe_object"]

SCALARS = ("float", "int", "bool", "str", "enum")


@dataclass(frozen=True)
class _Member:
    name: str


@dataclass(frozen=True)
class BoardField:
    """One scalar field as the board checks it (the same rules as :class:`gridbus.FieldInfo`)."""

    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()
    length: int | None = None
    nan_default: bool = False

    @property
    def enum(self) -> tuple[_Member, ...] | None:
        """The enum's members (each with a ``name``), as :class:`gridbus.FieldInfo` has them; None if not an enum."""
        return tuple(_Member(v) for v in self.values) if self.kind == "enum" else None

    @property
    def default(self) -> Any:
        return {"float": math.nan if self.nan_default else 0.0, "int": 0, "bool": False, "str": ""}.get(
            self.kind, self.values[0] if self.values else ""
        )

    def coerce(self, value: Any, where: str) -> Any:
        """``value`` as this field's type, or FieldError (range, type, bound, enum name)."""
        if self.kind == "enum":
            name = getattr(value, "name", value)
            if name not in self.values:
                raise FieldError(f"{where}: {value!r} is not one of {', '.join(self.values)}")
            return name
        if self.kind == "str":
            if not isinstance(value, str) or (self.length is not None and len(value.encode()) > self.length):
                raise FieldError(f"{where}: expected a string of at most {self.length} bytes, got {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise FieldError(f"{where}: expected true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FieldError(f"{where}: expected a number, got {value!r}")
        if self.kind == "int" and not float(value).is_integer():
            raise FieldError(f"{where}: expected an integer, got {value!r}")
        number = int(value) if self.kind == "int" else float(value)
        if isinstance(number, float) and math.isnan(number):
            return number
        if not math.isfinite(number):
            raise FieldError(f"{where}: {value!r} is not finite")
        if self.min is not None and number < self.min or self.max is not None and number > self.max:
            raise FieldError(f"{where}: {value!r} is outside {self.min:g}..{self.max:g}")
        return number


class BoardSample:
    """A sample on the board: one attribute per field (what the agent's code sets and reads)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def fields(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class BoardTopic:
    """One topic of an object type (``Generator_Command``), by role."""

    name: str
    role: str
    fields: dict[str, BoardField]

    def build(self, object_id: str, values: dict[str, Any] | None = None) -> BoardSample:
        sample = {name: f.default for name, f in self.fields.items()}
        sample["id"] = object_id
        for name, value in (values or {}).items():
            if name not in self.fields:
                raise FieldError(f"{object_id}: {self.name} has no field {name!r}")
            sample[name] = self.fields[name].coerce(value, f"{object_id}.{name}")
        return BoardSample(sample)

    def to_dict(self, data: Any) -> dict[str, Any]:
        """The sample's field values by name (enums by name), as :meth:`gridbus.TopicType.to_dict`."""
        return {name: getattr(data, name, f.default) for name, f in self.fields.items()}

    def check(self, data: Any) -> None:
        for name, info in self.fields.items():
            if name != "id":
                info.coerce(getattr(data, name, info.default), f"{getattr(data, 'id', '?')}.{name}")


@dataclass
class BoardObject:
    """An object type (``Generator``, prefix ``G``) as the bridge described it."""

    name: str
    prefix: str
    topics: dict[str, BoardTopic] = field(default_factory=dict)

    def topic(self, role: str) -> BoardTopic:
        if role not in self.topics:
            raise UnknownObjectError(f"object type {self.name} has no {role} topic; it has {', '.join(self.topics)}")
        return self.topics[role]

    @classmethod
    def from_description(cls, doc: dict[str, Any]) -> BoardObject:
        obj = cls(doc["type"], doc["prefix"])
        for role, topic in doc["topics"].items():
            fields = {
                f["name"]: BoardField(
                    f["name"],
                    f["kind"],
                    f.get("min"),
                    f.get("max"),
                    tuple(f.get("values", ())),
                    f.get("length"),
                    bool(f.get("nan_default")),
                )
                for f in topic["fields"]
            }
            obj.topics[role] = BoardTopic(topic["name"], role, fields)
        return obj


def describe_object(obj: Any) -> dict[str, Any]:
    """The description of a :class:`gridbus.ObjectType` a board needs (run on the bridge)."""
    topics = {}
    for role, topic in obj.topics.items():
        fields = []
        for info in topic.fields.values():
            if info.kind not in SCALARS:
                continue
            entry: dict[str, Any] = {"name": info.name, "kind": info.kind}
            for key in ("min", "max", "length"):
                if getattr(info, key) is not None:
                    entry[key] = getattr(info, key)
            if info.enum is not None:
                entry["values"] = [m.name for m in info.enum]
            if info.nan_default:
                entry["nan_default"] = True
            fields.append(entry)
        topics[role] = {"name": topic.name, "fields": fields}
    return {"type": obj.name, "prefix": obj.prefix, "topics": topics}
