"""What a translator publishes about its device: State, Measurement and the link's health.

The device's status values (the profile's [status] names) become the object's
State (status from running/fault, and the State fields the drive reports:
direction, at_speed, fault_code, the set-point read-backs) and Measurement.
What the device does not report is NaN ("unknown", "not measured"), never 0,
and enums it does not report stay at their first member (unknown).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a board over Zenoh has no cyclonedds: its topics and writers are BoardTopic, BoardWriter
    from ..model import TopicType
    from ..writer import Writer

TEXT_BOUND = 128  # bytes of Link_State's string<128> fields


def clip_utf8(text: str, bound: int = TEXT_BOUND, *, keep_end: bool = False) -> str:
    """``text`` in at most ``bound`` UTF-8 bytes, cut between characters (an ellipsis marks a
    cut; ``keep_end`` keeps the tail, as for a long port path)."""
    data = text.encode()
    if len(data) <= bound:
        return text
    if keep_end:
        return data[-bound:].decode(errors="ignore")
    return data[: bound - 3].decode(errors="ignore") + "\u2026"


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal field by field, NaN equal to NaN (an unknown read-back is not a change)."""
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
        if x != y and not both_nan:
            return False
    return True


def state_fields(topic: TopicType, status: dict[str, float], state: str) -> dict[str, Any]:
    """The State sample's fields: ``state`` (OFF, RUNNING, FAULT...) and what the device reports."""
    fields: dict[str, Any] = {}
    if "status" in topic.fields:
        fields["status"] = state
    for name, info in topic.fields.items():
        if name in ("id", "status"):
            continue
        value = status.get(name)
        if info.kind == "float":
            fields[name] = value if value is not None else math.nan
        elif value is None or not math.isfinite(value):
            continue
        elif info.kind == "bool":
            fields[name] = bool(value)
        elif info.kind == "int":
            fields[name] = max(0, int(value))
        elif info.kind == "enum" and info.enum is not None:
            members = list(info.enum)
            fields[name] = members[int(value)].name if 0 <= int(value) < len(members) else members[0].name
    return fields


def publish_measurement(writer: Writer, status: dict[str, float]) -> None:
    topic = writer.topic
    provided = {k: v for k, v in status.items() if k in topic.fields and math.isfinite(v)}
    if provided:
        # what the device does not measure is NaN ("not measured"), never 0 (a dead machine)
        absent = {n: math.nan for n, info in topic.fields.items() if info.kind == "float"}
        writer.write(**(absent | provided))
