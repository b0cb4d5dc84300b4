"""The bus: typed writers and readers by object id, on real Cyclone DDS.

``Bus`` is the paper's "domain creator": it joins a DDS domain (loopback-only
by default), knows the data model (:mod:`gridbus.model`) and the QoS map
(:mod:`gridbus.qos`), and hands out writers and readers by object id::

    with Bus(domain=3) as bus:
        g1 = bus.writer("G_1")                      # Generator_Measurement of G_1
        g1.write(Va=120.1, f=60.0)
        gens = bus.reader("G")                       # every generator
        for s in gens.take(timeout=1.0):
            print(s.id, s.f, s.source_time, s.reception_time)
        bus.command("CB_1", status="CLOSED")

Every sample is stamped twice: at the source when written (the DDS source
timestamp) and at the receiver when taken.  No central broker exists: each
``Bus`` is a DDS participant talking to its peers directly.

This module holds the participant and what it creates (topics, DDS writers
and readers with their QoS); samples, writers and readers themselves live in
:mod:`gridbus.sample`, :mod:`gridbus.writer` and :mod:`gridbus.reader`, the
configuration checks in :mod:`gridbus.config`.  Their names are re-exported
here, where they always were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from cyclonedds.core import DDSException, ReadCondition
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.pub import DataWriter, Publisher
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader, Subscriber
from cyclonedds.topic import Topic

from . import _cyclone
from .config import (
    LOOPBACK_CONFIG,
    MAX_PARTITION_BYTES,
    check_cyclone_uri,
    check_partition,
    cyclone_config,
    default_domain,
)
from .errors import ConfigError, UnknownObjectError
from .model import ObjectType, Registry, TopicType
from .qos import TopicMap, seconds_to_ns
from .reader import Reader
from .sample import Gone, Sample
from .source import KeyMatch, Source
from .writer import Writer

__all__ = [
    "ANY_STATE",
    "LOOPBACK_CONFIG",
    "MAX_INSTANCES",
    "MAX_PARTITION_BYTES",
    "MAX_SAMPLES",
    "Bus",
    "Gone",
    "Reader",
    "Sample",
    "Writer",
    "check_cyclone_uri",
    "check_partition",
    "cyclone_config",
    "default_domain",
]

log = logging.getLogger(__name__)

ANY_STATE = _cyclone.ANY_STATE

# Per-reader bounds (one DDS reader per topic).  A writer that invents a new object id per
# sample must not grow a reader without bound: Cyclone keeps an instance per key for as long
# as its writer has it registered.  Override per reader (``bus.reader(..., max_instances=)``)
# or per profile (``<resource_limits>`` in the QoS XML).
MAX_INSTANCES = 4096  # objects per topic; a lab has tens
MAX_SAMPLES = 65536  # samples queued per topic, all objects together
_INFINITE_NS = 2**63 - 1  # DDS_INFINITY


class Bus:
    """A participant on a gridbus domain: the entry point of the API.

    Parameters
    ----------
    domain: DDS domain id; default ``GRIDBUS_DOMAIN`` or 0.
    qos_file: DDS-XML profile file; default the packaged ``gridbus_qos.xml``.
    topic_map: topic → profile map; default the packaged ``topics.xml``.
    config: Cyclone configuration (file or XML text); default ``CYCLONEDDS_URI``
        if set, else the packaged loopback-only configuration.
    idl: extra IDL files whose object types join the data model.
    partition: DDS partition, to keep groups of participants apart on one domain
        (a plain name of at most 256 bytes; ConfigError otherwise).
    """

    def __init__(
        self,
        domain: int | None = None,
        *,
        qos_file: str | Path | None = None,
        topic_map: str | Path | None = None,
        config: str | Path | None = None,
        idl: list[str | Path] | tuple[str | Path, ...] = (),
        partition: str | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.domain_id = default_domain() if domain is None else int(domain)
        if partition:
            check_partition(partition)
        self.registry = registry or Registry.default()
        for path in idl:
            self.registry.load_idl(path)
        if topic_map is not None or qos_file is not None:
            self.qos = TopicMap(topic_map, qos_file) if topic_map is not None else TopicMap(qos_file=qos_file)
        else:
            self.qos = TopicMap()
        config_text = cyclone_config(config)
        _cyclone.Domains.acquire(self.domain_id, config_text)
        try:
            self.participant = DomainParticipant(self.domain_id)
        except DDSException as exc:
            _cyclone.Domains.release(self.domain_id)
            raise ConfigError(f"cannot join DDS domain {self.domain_id}: {exc}") from None
        group = Qos(Policy.Partition(partitions=[partition])) if partition else None
        self.partition = partition
        self.publisher = Publisher(self.participant, qos=group)
        self.subscriber = Subscriber(self.participant, qos=group)
        self._topics: dict[str, Topic[Any]] = {}
        # (topic, deadline, batch) -> (writer, born)
        self._writers: dict[tuple[str, float | None, bool], tuple[DataWriter[Any], float]] = {}
        self._readers: list[Reader] = []
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave the domain: readers stop, writers and the participant are deleted."""
        if self._closed:
            return
        self._closed = True
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        for (name, _deadline, batch), (dds, _born) in self._writers.items():
            if batch:  # deleting would send it too; flushing first says so
                try:
                    _cyclone.flush(dds)
                except DDSException as exc:  # the participant still goes
                    log.warning("could not flush the batching writer of %s on close: %s", name, exc)
        self._writers.clear()
        self._topics.clear()
        _cyclone.delete(self.participant)
        _cyclone.Domains.release(self.domain_id)

    # -- topics ------------------------------------------------------------------------
    def topic_type(self, object_id: str, role: str | None = None) -> TopicType:
        obj = self.registry.parse_id(object_id)
        return obj.topic(role or _default_role(obj))

    def _topic(self, topic: TopicType) -> Topic[Any]:
        if topic.name not in self._topics:
            self._topics[topic.name] = Topic(self.participant, topic.name, topic.cls)
        return self._topics[topic.name]

    def _overrides(self, qos: Qos, deadline: float | None, history: int | None) -> Qos:
        policies = [
            p
            for p in qos
            if not (
                (deadline is not None and isinstance(p, Policy.Deadline))
                or (history is not None and str(p).startswith("Policy.History"))
            )
        ]
        if deadline is not None:
            policies.append(Policy.Deadline(seconds_to_ns(deadline)))
        if history is not None:
            policies.append(Policy.History.KeepLast(history))
        return type(qos)(*policies)

    @staticmethod
    def _bounded(qos: Qos, max_instances: int | None, max_samples: int | None) -> Qos:
        """``qos`` with resource limits: the caller's, else the profile's, else gridbus's.

        Every reader is bounded, so that a writer inventing ids cannot grow it
        without end; DDS then refuses (and counts) what does not fit.
        """
        given = next((p for p in qos if isinstance(p, Policy.ResourceLimits)), None)
        if given is not None and max_instances is None and max_samples is None:
            return qos
        depth = next((p.depth for p in qos if isinstance(p, Policy.History.KeepLast)), None)
        instances = max_instances if max_instances is not None else (given.max_instances if given else MAX_INSTANCES)
        samples = max_samples if max_samples is not None else (given.max_samples if given else MAX_SAMPLES)
        for name, value in (("max_instances", instances), ("max_samples", samples)):
            if value != -1 and value < 1:
                raise ConfigError(f"reader {name} must be positive (or -1, unlimited), not {value}")
        if samples != -1 and depth is not None:
            samples = max(samples, depth)  # DDS: depth <= per instance <= max_samples
        per_instance = depth if depth is not None else samples
        limits = Policy.ResourceLimits(
            max_samples=samples, max_instances=instances, max_samples_per_instance=per_instance
        )
        return type(qos)(*[p for p in qos if not isinstance(p, Policy.ResourceLimits)], limits)

    # -- writing -----------------------------------------------------------------------
    def writer(
        self, object_id: str, role: str | None = None, *, deadline: float | None = None, batch: bool = False
    ) -> Writer:
        """A writer for ``object_id`` on its ``role`` topic (default Measurement, else State).

        ``deadline`` (s) overrides the profile's: set it to the publishing period
        so readers learn when this object falls silent.  ``batch=True`` gives a
        batching writer: its samples leave packed together at ``flush()`` (or
        when a datagram is full, or the bus closes), for high-rate bursts.  A
        batching and a plain writer of one object are two DDS writers: write an
        object through one of them only (a late flush would deliver an older
        sample after a newer one, and readers ordered by source time drop it).
        """
        topic = self.topic_type(object_id, role)
        key = (topic.name, deadline, batch)
        if key not in self._writers:
            qos = self._overrides(self.qos.writer_qos(topic.name), deadline, None)
            if not any(isinstance(p, Policy.WriterDataLifecycle) for p in qos):
                # a writer that leaves is "no writers" to readers; "disposed" stays an explicit act
                qos = type(qos)(*qos, Policy.WriterDataLifecycle(autodispose=False))
            make = _cyclone.batching_writer if batch else DataWriter
            self._writers[key] = (make(self.publisher, self._topic(topic), qos=qos), time.monotonic())
        dds, born = self._writers[key]
        return Writer(self, topic, object_id, dds, born, batch)

    def publish(self, object_id: str, **fields: Any) -> IdlStruct:
        """Publish ``fields`` on the topic of ``object_id`` that has them all
        (command fields go to the Command topic, ``status`` of a CB to State…)."""
        obj = self.registry.parse_id(object_id)
        topic = obj.topic_of_fields(fields)
        return self.writer(object_id, topic.role).write(**fields)

    def command(self, object_id: str, **fields: Any) -> IdlStruct:
        """Send a command to ``object_id`` (the Command topic of its type)."""
        return self.writer(object_id, "Command").write(**fields)

    # -- reading -----------------------------------------------------------------------
    def reader(
        self,
        pattern: str,
        role: str | None = None,
        *,
        mode: str = "wait",
        deadline: float | None = None,
        history: int | None = None,
        on_sample: Callable[[Sample], Any] | None = None,
        on_gone: Callable[[Gone], Any] | None = None,
        max_instances: int | None = None,
        max_samples: int | None = None,
    ) -> Reader:
        """A reader of one object (``G_1``), one type (``G`` or ``G_*``) or all (``*``).

        ``role`` picks the topic (Measurement, State, Command, Protection); by
        default Measurement, else State.  With several object types, only the
        types that have the role are read.  A reader of one object gets only
        that object's samples: the others are recognized by their key bytes
        and dropped before they are deserialized.

        Each topic's DDS reader is bounded to ``max_instances`` objects (default
        4096) and ``max_samples`` queued samples (default 65536, at least the
        history depth), unless the QoS profile sets ``<resource_limits>``.
        ``on_gone`` is called when an object loses its writers (``Reader.gone``).
        """
        object_types, object_id = self.registry.select(pattern)
        chosen = [
            (o, o.topics[role or _default_role(o)]) for o in object_types if (role or _default_role(o)) in o.topics
        ]
        if not chosen:
            raise UnknownObjectError(f"no object type matching {pattern!r} has a {role} topic")
        sources = [
            self._source(topic, object_id, deadline, history, max_instances, max_samples) for _obj, topic in chosen
        ]
        reader = Reader(self, sources, object_id, mode)
        reader.pattern = pattern
        self._readers.append(reader)
        if on_gone is not None:
            reader.on_gone(on_gone)
        if on_sample is not None:
            reader.on_sample(on_sample)
        return reader

    def _source(
        self,
        topic: TopicType,
        object_id: str | None,
        deadline: float | None,
        history: int | None,
        max_instances: int | None = None,
        max_samples: int | None = None,
    ) -> Source:
        qos = self._overrides(self.qos.reader_qos(topic.name), deadline, history)
        qos = self._bounded(qos, max_instances, max_samples)
        period = next((p.deadline for p in qos if isinstance(p, Policy.Deadline)), None)
        qos = type(qos)(*[p for p in qos if not isinstance(p, Policy.Deadline)])  # see presence.Deadlines
        try:
            dds = DataReader(self.subscriber, self._topic(topic), qos=qos)
        except DDSException as exc:
            raise ConfigError(f"DDS refused the reader QoS of {topic.name} ({qos}): {exc}") from None
        condition = ReadCondition(dds, ANY_STATE)
        match = KeyMatch(object_id) if object_id is not None else None
        limits = next(p for p in qos if isinstance(p, Policy.ResourceLimits))
        checked = period / 1e9 if period is not None and 0 < period < _INFINITE_NS else None
        return Source(topic, dds, condition, topic.cls.deserialize, match, limits, deadline=checked)

    # -- discovery ---------------------------------------------------------------------
    def wait_for_peers(self, object_id: str, role: str | None = None, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` remote readers match the writer of ``object_id``."""
        return self.writer(object_id, role).wait_for_readers(count, timeout)


def _default_role(obj: ObjectType) -> str:
    for role in ("Measurement", "State"):
        if role in obj.topics:
            return role
    return next(iter(obj.topics))
