"""The systems the bench compares, behind one interface: gridbus, raw cyclonedds, ZeroMQ.

An :class:`Endpoint` is what a benchmark process needs from any system (send,
receive, matched, close), so the ping, echo, sink and stream code of
:mod:`gridbus.bench` runs unchanged on each, and the comparison is fair: the raw
side uses the same QoS profile, partition and Cyclone config as the bus.

Two kinds of traffic: ``Ping``/``Pong`` (``Bench_Ping``: key, sequence number,
octet payload of any size) and ``Measurement`` (``Generator_Measurement``, a
real 100-byte topic; its ``P`` field carries the sequence number).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

TOPICS = ("Ping", "Pong", "Measurement")
SEQ_FIELD = "P"  # the Generator_Measurement field that carries a stream's sequence number
OBJECTS = 100  # a Measurement stream cycles over G_1..G_100 (keep-last history is per object)


@dataclass(frozen=True)
class BusOptions:
    """Where the systems meet: the domain and the ``gridbus`` bus options the bench runs with."""

    domain: int
    qos_file: str | None = None
    topic_map: str | None = None
    config: str | None = None
    partition: str | None = None
    batch: bool = False  # writers batch samples until the stream flushes (both systems alike)

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

    def apart(self, tag: str) -> BusOptions:
        """The same options on a partition of their own (``<partition>-<tag>``), for one system of a run."""
        return replace(self, partition=f"{self.partition or 'bench'}-{tag}")


def payload_for(size: int) -> bytes:
    """A payload that makes a serialized Ping of about ``size`` bytes."""
    return bytes(max(0, size - 28))


@dataclass
class Endpoint:
    """What a benchmark process needs from any system: send, receive, matched, close."""

    send: Callable[[int, bytes], None]
    receive: Callable[[float], list[tuple[int, bytes]]]  # (seq, payload) of what arrived
    matched: Callable[[], bool]
    close: Callable[[], None]
    flush: Callable[[], None] = lambda: None  # send what a batching writer holds (a burst's end)
    port: int = 0  # the TCP port a ZeroMQ endpoint bound or connected to (0 for DDS)


def _object(seq: int) -> str:
    """The generator a stream's sample ``seq`` belongs to: G_1..G_100 in turn, like a plant's many objects."""
    return f"G_{seq % OBJECTS + 1}"


def _measurement(cls: Any, seq: int) -> Any:
    return cls(
        id=_object(seq),
        Ia=5.0,
        Ib=5.0,
        Ic=5.0,
        Va=120.0,
        Vb=120.0,
        Vc=120.0,
        f=60.0,
        P=float(seq),
        Q=0.0,
        speed=1800.0,
        angle=0.0,
    )


def gridbus_endpoint(options: BusOptions, out_topic: str | None, in_topic: str | None, mode: str) -> Endpoint:
    """gridbus's way: a ``Bus`` writer and reader by object id, in receive ``mode``."""
    from ..bus import Bus

    bus = Bus(
        options.domain,
        qos_file=options.qos_file,
        topic_map=options.topic_map,
        config=options.config,
        partition=options.partition,
    )
    writer = reader = None
    generators = []
    if out_topic == "Measurement":
        generators = [bus.writer(f"G_{n + 1}", batch=options.batch) for n in range(OBJECTS)]
        writer = generators[0]
    elif out_topic is not None:
        writer = bus.writer("BENCH_1", out_topic, batch=options.batch)
    if in_topic is not None:
        reader = bus.reader("G", mode=mode) if in_topic == "Measurement" else bus.reader("BENCH", in_topic, mode=mode)

    def send(seq: int, payload: bytes) -> None:
        assert writer is not None
        cls: Any = writer.topic.cls
        if out_topic == "Measurement":
            generators[seq % OBJECTS].write(_measurement(cls, seq))
        else:
            writer.write(cls(id="BENCH_1", seq=seq, payload=payload))

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        if reader is None:
            return []
        got: list[Any] = [s.data for s in reader.take(timeout)]
        if in_topic == "Measurement":
            return [(int(d.P), b"") for d in got]
        return [(d.seq, d.payload) for d in got]

    def matched() -> bool:
        return writer is None or writer.matched > 0

    return Endpoint(send, receive, matched, bus.close, writer.flush if writer is not None else lambda: None)


def raw_endpoint(options: BusOptions, out_topic: str | None, in_topic: str | None, mode: str) -> Endpoint:
    """The plain cyclonedds-python way: participant, topic, DataWriter, DataReader, WaitSet + take.

    ``mode`` is ignored: the binding's documented way is the WaitSet.  Only the Domain (the
    Cyclone configuration, loopback by default) is shared with a Bus of the same process.
    With ``options.batch`` the DataWriter gets the same Cyclone write batching as gridbus's.
    """
    from cyclonedds.core import ReadCondition, WaitSet
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter, Publisher
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.sub import DataReader, Subscriber
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    from .. import _cyclone
    from ..config import cyclone_config
    from ..qos import TopicMap
    from ..types.grid import Bench, Generator

    _cyclone.Domains.acquire(options.domain, cyclone_config(options.config))
    participant = DomainParticipant(options.domain)
    qos_map = (
        TopicMap(options.topic_map, options.qos_file) if options.topic_map else TopicMap(qos_file=options.qos_file)
    )
    group = Qos(Policy.Partition(partitions=[options.partition])) if options.partition else None

    def topic_of(role: str) -> tuple[Any, str, Any]:
        if role == "Measurement":
            return (
                Generator.Measurement,
                "Generator_Measurement",
                Topic(participant, "RawBench_G", Generator.Measurement),
            )
        cls = getattr(Bench, role)
        return cls, f"Bench_{role}", Topic(participant, f"RawBench_{role}", cls)

    writer: Any = None
    reader: Any = None
    out_cls: Any = None
    if out_topic is not None:
        out_cls, profile, topic = topic_of(out_topic)
        make = _cyclone.batching_writer if options.batch else DataWriter
        writer = make(Publisher(participant, qos=group), topic, qos=qos_map.writer_qos(profile))
    waitset = WaitSet(participant)
    if in_topic is not None:
        _cls, profile, topic = topic_of(in_topic)
        reader = DataReader(Subscriber(participant, qos=group), topic, qos=qos_map.reader_qos(profile))
        waitset.attach(ReadCondition(reader, _cyclone.ANY_STATE))

    def send(seq: int, payload: bytes) -> None:
        if out_topic == "Measurement":
            writer.write(_measurement(out_cls, seq))
        else:
            writer.write(out_cls(id="BENCH_1", seq=seq, payload=payload))

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        if reader is None:
            return []
        got = reader.take(N=256)
        if not got and timeout > 0:
            waitset.wait(duration(seconds=timeout))
            got = reader.take(N=256)
        if in_topic == "Measurement":
            return [(int(s.P), b"") for s in got if hasattr(s, SEQ_FIELD)]
        return [(s.seq, s.payload) for s in got if hasattr(s, "seq")]

    def close() -> None:
        _cyclone.delete(participant)
        _cyclone.Domains.release(options.domain)

    def matched() -> bool:
        return writer is None or _cyclone.publication_matched(writer) > 0

    def flush() -> None:
        if writer is not None and options.batch:
            _cyclone.flush(writer)

    return Endpoint(send, receive, matched, close, flush)


def zmq_endpoint(port: int, bind: bool) -> Endpoint:
    """ZeroMQ over TCP on 127.0.0.1: a PAIR socket, the sequence number and payload as two frames.

    The echo side binds (``port`` 0: a free port of its choosing, in ``Endpoint.port``), the
    ping side connects.  ``matched()`` is true once the ZMTP handshake with the peer succeeded
    (socket monitor events) and until it disconnects, as a DDS writer's matched count.
    Needs pyzmq (the ``zmq`` extra).
    """
    from ..errors import MissingExtra

    try:
        import zmq
        from zmq.utils.monitor import recv_monitor_message
    except ModuleNotFoundError as exc:  # pyzmq's module is "zmq": not extras.require's package-named rule
        raise MissingExtra("the ZeroMQ column of the benchmarks", "pyzmq", "zmq") from exc
    context = zmq.Context()
    sock = context.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)  # before any peer
    if bind:
        sock.bind(f"tcp://127.0.0.1:{port or '*'}")
        port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
    else:
        sock.connect(f"tcp://127.0.0.1:{port}")
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    peer = [False]  # PAIR: one peer at most

    def send(seq: int, payload: bytes) -> None:
        sock.send_multipart([seq.to_bytes(8, "little"), payload], copy=False)

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        got: list[tuple[int, bytes]] = []
        if not poller.poll(int(timeout * 1000)):
            return got
        while True:
            try:
                head, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return got
            got.append((int.from_bytes(head, "little"), payload))

    def matched() -> bool:
        while True:  # the events so far, in order: the last one says
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return peer[0]
            peer[0] = event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED

    def close() -> None:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        context.term()

    return Endpoint(send, receive, matched, close, port=port)


def endpoint(options: BusOptions, system: str, out_topic: str | None, in_topic: str | None, mode: str) -> Endpoint:
    """An endpoint of ``system`` (``gridbus`` or ``cyclonedds``) sending ``out_topic``, receiving ``in_topic``."""
    make = gridbus_endpoint if system == "gridbus" else raw_endpoint
    return make(options, out_topic, in_topic, mode)
