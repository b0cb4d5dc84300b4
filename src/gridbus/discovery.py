"""Who is on the domain: participants and their topics, as they join and leave.

Reads DDS's built-in discovery topics (DCPSParticipant, DCPSPublication,
DCPSSubscription); nothing central is asked, each participant announces itself.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, cast

from cyclonedds.builtin import (
    BuiltinDataReader,
    BuiltinTopicDcpsParticipant,
    BuiltinTopicDcpsPublication,
    BuiltinTopicDcpsSubscription,
)
from cyclonedds.builtin_types import DcpsEndpoint, DcpsParticipant
from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet

from ._cyclone import InvalidSample

if TYPE_CHECKING:
    from .bus import Bus

ANY = SampleState.Any | ViewState.Any | InstanceState.Any


def _events(reader: BuiltinDataReader, kind: str, own: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sample in reader.take(N=256):
        alive = not isinstance(sample, InvalidSample) and sample.sample_info.instance_state == InstanceState.Alive
        # the binding declares key_sample as object; on these readers it is the topic's data type
        data = cast(
            "DcpsParticipant | DcpsEndpoint", sample.key_sample if isinstance(sample, InvalidSample) else sample
        )
        key = str(data.key)
        if key in own or str(getattr(data, "participant_key", "")) in own:
            continue  # this watcher itself
        event = {"event": "join" if alive else "leave", "kind": kind, "key": key}
        if kind != "participant" and alive:
            event.update(
                topic=sample.topic_name,
                type=sample.type_name.replace(".", "::"),
                participant=str(sample.participant_key),
            )
        out.append(event)
    return out


def watch(bus: Bus, duration: float = 3.0, as_json: bool = False) -> int:
    """Print discovery events for ``duration`` s (0 = until interrupted)."""
    with bus:
        own = {str(bus.participant.guid)}
        readers = {
            "participant": BuiltinDataReader(bus.participant, BuiltinTopicDcpsParticipant),
            "writer": BuiltinDataReader(bus.participant, BuiltinTopicDcpsPublication),
            "reader": BuiltinDataReader(bus.participant, BuiltinTopicDcpsSubscription),
        }
        waitset = WaitSet(bus.participant)
        for reader in readers.values():
            waitset.attach(ReadCondition(reader, ANY))
        end = time.monotonic() + duration if duration > 0 else None
        while end is None or time.monotonic() < end:
            remaining = 0.5 if end is None else max(0.0, min(0.5, end - time.monotonic()))
            waitset.wait(int(remaining * 1e9))
            for kind, reader in readers.items():
                for event in _events(reader, kind, own):
                    _print(event, as_json)
    return 0


def _print(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(event), flush=True)
        return
    sign = "+" if event["event"] == "join" else "-"
    if event["kind"] == "participant":
        print(f"{sign} participant {event['key']}", flush=True)
    elif "topic" in event:
        print(
            f"{sign} {event['kind']:<6} {event['topic']:<28} {event['type']:<32} participant {event['participant']}",
            flush=True,
        )
    else:
        print(f"{sign} {event['kind']:<6} {event['key']}", flush=True)
