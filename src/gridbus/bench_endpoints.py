"""The two systems the bench compares, behind one interface: gridbus and raw cyclonedds.

An :class:`Endpoint` is what a benchmark process needs from either system
(send, receive, matched, close), so the ping, echo, sink and throughput code in
:mod:`gridbus.bench` runs unchanged on both, and the comparison is fair: the raw
side uses the same QoS profile, partition and Cyclone config as the bus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BusOptions:
    """Where both systems meet: the domain and the ``gridbus`` bus options the bench runs with."""

    domain: int
    qos_file: str | None = None
    topic_map: str | None = None
    config: str | None = None
    partition: str | None = None

    def as_flags(self) -> list[str]:
        """The same options as command-line flags, for the echo and sink child processes."""
        flags = ["--domain", str(self.domain)]
        for flag, value in (
            ("--qos", self.qos_file),
            ("--topic-map", self.topic_map),
            ("--config", self.config),
            ("--partition", self.partition),
        ):
            if value:
                flags += [flag, str(value)]
        return flags


def payload_for(size: int) -> bytes:
    """A payload that makes a serialized Ping of about ``size`` bytes."""
    return bytes(max(0, size - 28))


@dataclass
class Endpoint:
    """What a benchmark process needs from either system: send, receive, close."""

    send: Callable[[int, bytes], None]
    receive: Callable[[float], list[tuple[int, bytes]]]  # (seq, payload) of what arrived
    matched: Callable[[], bool]
    close: Callable[[], None]


def gridbus_endpoint(options: BusOptions, out_role: str, in_role: str, mode: str) -> Endpoint:
    """gridbus's way: a ``Bus`` writer and reader by object id, in receive ``mode``."""
    from .bus import Bus

    bus = Bus(
        options.domain,
        qos_file=options.qos_file,
        topic_map=options.topic_map,
        config=options.config,
        partition=options.partition,
    )
    writer = bus.writer("BENCH_1", out_role)
    reader = bus.reader("BENCH", in_role, mode=mode)
    cls: Any = writer.topic.cls

    def send(seq: int, payload: bytes) -> None:
        writer.write(cls(id="BENCH_1", seq=seq, payload=payload))

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        got: list[Any] = [s.data for s in reader.take(timeout)]
        return [(d.seq, d.payload) for d in got]

    return Endpoint(send, receive, lambda: writer.matched > 0, bus.close)


def raw_endpoint(options: BusOptions, out_role: str, in_role: str, mode: str) -> Endpoint:
    """The plain cyclonedds-python way: Domain, participant, topic, writer, WaitSet + take."""
    from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
    from cyclonedds.domain import Domain, DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    from .bus import cyclone_config
    from .qos import TopicMap
    from .types.grid import Bench

    config = cyclone_config(options.config)
    domain = Domain(options.domain, config) if config else None
    participant = DomainParticipant(options.domain)
    qos_map = (
        TopicMap(options.topic_map, options.qos_file) if options.topic_map else TopicMap(qos_file=options.qos_file)
    )
    out_cls: Any = getattr(Bench, out_role)
    in_cls: Any = getattr(Bench, in_role)
    group = Qos(Policy.Partition(partitions=[options.partition])) if options.partition else None
    from cyclonedds.pub import Publisher
    from cyclonedds.sub import Subscriber

    publisher, subscriber = Publisher(participant, qos=group), Subscriber(participant, qos=group)
    writer = DataWriter(
        publisher, Topic(participant, f"RawBench_{out_role}", out_cls), qos=qos_map.writer_qos(f"Bench_{out_role}")
    )
    reader = DataReader(
        subscriber, Topic(participant, f"RawBench_{in_role}", in_cls), qos=qos_map.reader_qos(f"Bench_{in_role}")
    )
    waitset = WaitSet(participant)
    waitset.attach(ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any))

    def send(seq: int, payload: bytes) -> None:
        writer.write(out_cls(id="BENCH_1", seq=seq, payload=payload))

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        got = reader.take(N=1)
        if not got and timeout > 0:
            waitset.wait(duration(seconds=timeout))
            got = reader.take(N=1)
        return [(s.seq, s.payload) for s in got if hasattr(s, "seq")]

    def close() -> None:
        nonlocal domain
        from ._cyclone import delete

        delete(participant)
        domain = None

    def matched() -> bool:
        status = writer.get_publication_matched_status()  # type: ignore[no-untyped-call]
        return bool(status.current_count > 0)

    return Endpoint(send, receive, matched, close)


def endpoint(options: BusOptions, system: str, out_role: str, in_role: str, mode: str) -> Endpoint:
    make = gridbus_endpoint if system == "gridbus" else raw_endpoint
    return make(options, out_role, in_role, mode)
