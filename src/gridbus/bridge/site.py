"""The bridge's side of its own site's DDS domain: raw readers and writers per topic.

The bridge never deserializes a sample: it takes the CDR bytes
(``_cyclone.take_serialized``) on one site and writes the same bytes
(``_cyclone.write_serialized``) with the original source time stamp on the
other.  Each topic's reader and writer use the topic's own QoS profile, so a
reliable topic stays reliable and a transient-local one keeps its last
values for late joiners at the far site (the bridge's writer *is* the
durable copy there).  Readers ignore the bridge's own writers
(``IgnoreLocal``), so what came in from the WAN never goes back out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cyclonedds.core import ReadCondition, WaitSet
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader

from .. import _cyclone
from ..bus import Bus
from ..model import TopicType

__all__ = ["SiteTopic", "lifespan_ns", "site_topics"]

log = logging.getLogger(__name__)

_INFINITE = 2**63 - 1


def lifespan_ns(qos: Qos) -> int | None:
    """The writer lifespan of a profile (ns), None if the profile keeps samples for ever."""
    span = next((p.lifespan for p in qos if isinstance(p, Policy.Lifespan)), None)
    return None if span is None or span >= _INFINITE else int(span)


@dataclass
class SiteTopic:
    """One topic as the bridge handles it on its own site."""

    topic: TopicType
    reliable: bool
    durable: bool  # transient-local: the far site's late joiners need the last values
    depth: int  # samples per object kept for late joiners
    lifespan: int | None  # ns, for commands
    reader: DataReader[Any] | None = None
    condition: ReadCondition | None = None
    writer: DataWriter[Any] | None = None

    @property
    def name(self) -> str:
        return self.topic.name

    @property
    def is_command(self) -> bool:
        return self.topic.role == "Command"

    def take(self, limit: int = 256) -> list[tuple[bytes, int]]:
        """New samples with data, as (CDR bytes, source time ns)."""
        if self.reader is None:
            return []
        return [
            (raw, int(info.source_timestamp))
            for raw, info in _cyclone.take_serialized(self.reader, limit)
            if info.valid_data
        ]

    def write(self, raw: bytes, timestamp_ns: int) -> None:
        if self.writer is not None:
            _cyclone.write_serialized(self.writer, raw, timestamp_ns)


def _kept(qos: Qos) -> tuple[bool, bool, int]:
    reliable = any(isinstance(p, type(Policy.Reliability.Reliable(0))) for p in qos)
    durable = any(p == Policy.Durability.TransientLocal for p in qos)
    depth = next((p.depth for p in qos if isinstance(p, Policy.History.KeepLast)), 1)
    return reliable, durable, max(1, min(int(depth), 256))


def site_topics(bus: Bus, exported: set[str], imported: set[str], waitset: WaitSet) -> list[SiteTopic]:
    """A reader for each exported topic and a writer for each imported one, with the topics' QoS."""
    topics: dict[str, TopicType] = {}
    for topic in bus.registry.topics():
        topics.setdefault(topic.name, topic)
    out = []
    for name in sorted(topics):
        if name not in exported and name not in imported:
            continue
        topic = topics[name]
        wqos = bus.qos.writer_qos(name)
        reliable, durable, depth = _kept(wqos)
        entry = SiteTopic(topic, reliable, durable, depth, lifespan_ns(wqos))
        dds_topic = bus._topic(topic)
        if name in exported:
            rqos = bus.qos.reader_qos(name)
            rqos = Qos(*[p for p in rqos if not isinstance(p, Policy.Deadline)], Policy.IgnoreLocal.Participant)
            rqos = bus._bounded(rqos, None, None)  # bounded like every gridbus reader
            entry.reader = DataReader(bus.subscriber, dds_topic, qos=rqos)
            entry.condition = ReadCondition(entry.reader, _cyclone.ANY_STATE)
            waitset.attach(entry.condition)
        if name in imported:
            wq = Qos(
                *[p for p in wqos if not isinstance(p, Policy.Deadline)], Policy.WriterDataLifecycle(autodispose=False)
            )
            entry.writer = DataWriter(bus.publisher, dds_topic, qos=wq)
        out.append(entry)
    return out
