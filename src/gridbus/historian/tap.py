"""The recorder's DDS readers: nothing overwritten silently, and DDS's own losses counted.

A gridbus :class:`~gridbus.bus.Reader` keeps the last N samples per object
(KEEP_LAST): a reader that falls behind loses the oldest samples without any
status saying so.  The recorder's readers keep *all* samples up to a bound
(``queue`` per topic, KEEP_ALL with resource limits) so that DDS itself
counts what it could not keep:

* ``sample_rejected`` — a best-effort sample arrived while the recorder's
  queue was full (the recorder fell behind).  A reliable sample is not lost
  that way: Cyclone retries it every millisecond, slowing its writer down
  (back-pressure), and counts every attempt, so a reliable reader's count
  is not a count of losses and is left out;
* ``sample_lost`` — a sample DDS dropped before it reached the queue (with
  by-source-timestamp ordering: one older than the newest of its object; the
  recorder asks for by-reception ordering, so it keeps those).

Both are read from the DataReader statuses through Cyclone's C API
(:func:`gridbus._cyclone.sample_losses`).  What no DDS reader can see are
best-effort samples lost on the wire: Cyclone's API has no per-writer
sequence numbers, so such gaps are not counted (README says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cyclonedds.core import ReadCondition, WaitSet
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader

from .. import _cyclone
from ..bus import Bus
from ..codec import codec_for
from ..errors import CodecError, GridbusError, UnknownObjectError
from ..model import Registry, TopicType
from ..qos import seconds_to_ns
from ..source import KeyMatch
from .journal import RawRow
from .rowjson import FLOAT, INT, OTHER, json_writer
from .sinks import Row

ROLES = ("Measurement", "State", "Command", "Protection", "Config")  # Config: a stream's labels (PMU_Config)
TAKE_BATCH = 1000


@dataclass
class _Source:
    topic: TopicType
    dds: DataReader[Any]
    ids: list[KeyMatch] | None  # the selected objects, by key bytes; None: every object
    best_effort: bool  # a rejected sample is gone (not retried)
    condition: ReadCondition  # kept alive: the wait set wakes on it


class Tap:
    """One KEEP_ALL DataReader per selected topic, taking raw samples in batches."""

    def __init__(self, bus: Bus, patterns: list[str], roles: list[str] | None, queue: int) -> None:
        if queue < 1:
            raise GridbusError("the DDS queue of the recorder must hold at least 1 sample")
        wanted: dict[str, tuple[TopicType, set[str] | None]] = {}
        for pattern in patterns:
            object_types, object_id = bus.registry.select(pattern)
            chosen = [o.topics[r] for o in object_types for r in (roles or ROLES) if r in o.topics]
            if not chosen and roles:
                raise UnknownObjectError(f"no object type matching {pattern!r} has a {' or '.join(roles)} topic")
            for topic in chosen:
                _, ids = wanted.get(topic.name, (topic, set()))
                if ids is not None:
                    ids = None if object_id is None else ids | {object_id}
                wanted[topic.name] = (topic, ids)
        if not wanted:
            raise GridbusError(f"nothing to record for {' '.join(patterns)}")
        self.waitset = WaitSet(bus.participant)
        self.sources: list[_Source] = []
        for topic, ids in wanted.values():
            qos = self._qos(bus, topic, queue)
            dds = DataReader(bus.subscriber, bus._topic(topic), qos=qos)
            condition = ReadCondition(dds, _cyclone.ANY_STATE)
            self.waitset.attach(condition)
            best_effort = Policy.Reliability in qos and qos[Policy.Reliability] == Policy.Reliability.BestEffort
            self.sources.append(
                _Source(topic, dds, None if ids is None else [KeyMatch(i) for i in sorted(ids)], best_effort, condition)
            )

    @staticmethod
    def _qos(bus: Bus, topic: TopicType, queue: int) -> Qos:
        """The topic's reader QoS, but keep everything (up to ``queue``) in arrival order.

        By-reception ordering matches every writer (by-source writers too) and
        keeps a sample that arrives older than its object's newest (a writer
        with a slow clock, a replay), which by-source ordering would drop.  No
        deadline is requested: a writer offering a longer period than the
        profile's would not match, and the recorder has no use for it.
        """
        kept = [
            p
            for p in bus.qos.reader_qos(topic.name)
            if not str(p).startswith(
                ("Policy.History", "Policy.ResourceLimits", "Policy.DestinationOrder", "Policy.Deadline")
            )
        ]
        return Qos(
            *kept,
            Policy.History.KeepAll,
            Policy.ResourceLimits(max_samples=queue),
            Policy.DestinationOrder.ByReceptionTimestamp,
        )

    @property
    def topics(self) -> list[str]:
        return [s.topic.name for s in self.sources]

    def wait(self, timeout: float) -> None:
        self.waitset.wait(seconds_to_ns(timeout))

    def take(self, limit: int = TAKE_BATCH) -> list[RawRow]:
        """The samples available now (up to ``limit`` per topic), still serialized: cheap to journal."""
        rows: list[RawRow] = []
        for source in self.sources:
            got = _cyclone.take_serialized(source.dds, limit)
            if not got:
                continue
            now = time.time_ns() / 1e9
            name, ids = source.topic.name, source.ids
            rows += [
                (name, info.source_timestamp / 1e9, now, raw)
                for raw, info in got
                if info.valid_data and (ids is None or any(match(raw) for match in ids))
            ]
        return rows

    def losses(self) -> dict[str, int]:
        lost = rejected = 0
        for source in self.sources:
            a, b = _cyclone.sample_losses(source.dds)
            lost, rejected = lost + a, rejected + (b if source.best_effort else 0)
        return {"dds_lost": lost, "dds_rejected": rejected}


class Decoder:
    """Journal rows (serialized samples) to database rows, for every topic of the data model.

    Runs for every sample recorded, so each topic's decoder and the way each
    field becomes JSON are worked out once (:meth:`_layout`), not per sample:
    the text is ``json.dumps``'s (NaN and inf as null), written by code generated per topic
    (:mod:`.rowjson`).
    """

    def __init__(self, registry: Registry) -> None:
        self.topics = {t.name: t for t in registry.topics()}
        self._layouts: dict[str, _Layout] = {}

    def __call__(self, row: RawRow) -> Row:
        """Raises GridbusError for a topic this data model lacks or bytes that do not decode."""
        name, source, reception, raw = row
        layout = self._layouts.get(name) or self._layout(name)
        try:
            data = layout.decode(raw)
        except CodecError as exc:
            raise GridbusError(f"a journaled {name} sample does not decode: {exc}") from None
        values: dict[str, Any] = vars(data)  # every gridbus topic is keyed by id
        return values["id"], name, source, reception, layout.json(values)

    def _layout(self, name: str) -> _Layout:
        topic = self.topics.get(name)
        if topic is None:
            raise GridbusError(f"a journaled {name} sample: no such topic in this data model (give its --idl)")
        kinds = {"float": FLOAT, "int": INT}
        fields = [(n, kinds.get(info.kind, OTHER)) for n, info in topic.fields.items() if n != "id"]
        layout = self._layouts[name] = _Layout(codec_for(topic.cls).decode, json_writer(fields))
        return layout


@dataclass(frozen=True)
class _Layout:
    decode: Callable[[Any], Any]
    json: Callable[[dict[str, Any]], str]  # the fields (all but id) as JSON text
