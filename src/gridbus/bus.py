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
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from cyclonedds._clayer import ddspy_take
from cyclonedds.core import (DDSException, InstanceState, ReadCondition, SampleState,
                             ViewState, WaitSet)
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.internal import DDS, dds_c_t
from cyclonedds.pub import DataWriter, Publisher
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader, Subscriber
from cyclonedds.topic import Topic

from .errors import ConfigError, GridbusError, UnknownObjectError
from .model import ObjectType, Registry, TopicType, _plain
from .qos import DATA_DIR, TopicMap, seconds_to_ns

LOOPBACK_CONFIG = DATA_DIR / "cyclonedds-loopback.xml"
ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_BATCH = 256                                   # samples taken per call: the reader's fast path


def default_domain() -> int:
    """``GRIDBUS_DOMAIN`` from the environment, else 0."""
    text = os.environ.get("GRIDBUS_DOMAIN", "0")
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"GRIDBUS_DOMAIN={text!r} is not an integer domain id") from None
    if not 0 <= value <= 232:
        raise ConfigError(f"domain id {value} out of range 0..232")
    return value


def cyclone_config(config: str | Path | None) -> str | None:
    """The Cyclone configuration a Bus uses: the caller's, else the user's
    ``CYCLONEDDS_URI``, else gridbus's loopback-only file."""
    if config is None:
        if os.environ.get("CYCLONEDDS_URI"):
            return None                              # Cyclone reads it itself
        return LOOPBACK_CONFIG.read_text()
    text = str(config)
    if text.lstrip().startswith("<"):
        return text
    path = Path(text.removeprefix("file://"))
    if not path.is_file():
        raise ConfigError(f"Cyclone DDS configuration {path} does not exist")
    return path.read_text()


class _Domains:
    """One Cyclone ``Domain`` per id per process, shared by the Buses on it."""

    _lock = threading.Lock()
    _open: dict[int, tuple[Domain | None, str | None, int]] = {}

    @classmethod
    def acquire(cls, domain_id: int, config: str | None) -> None:
        with cls._lock:
            domain, used, count = cls._open.get(domain_id, (None, None, 0))
            if count and used != config:
                raise ConfigError(f"domain {domain_id} is already open in this process with "
                                  "another Cyclone configuration")
            if not count and config is not None:
                try:
                    domain = Domain(domain_id, config)
                except DDSException as exc:
                    raise ConfigError(f"Cyclone DDS rejected the configuration for domain "
                                      f"{domain_id}: {exc}") from None
            cls._open[domain_id] = (domain, config, count + 1)

    @classmethod
    def release(cls, domain_id: int) -> None:
        with cls._lock:
            domain, used, count = cls._open[domain_id]
            if count <= 1:
                del cls._open[domain_id]
            else:
                cls._open[domain_id] = (domain, used, count - 1)


# ----------------------------------------------------------------------- sample
class Sample:
    """One received sample: the data plus the paper's double time stamp.

    Field values are attributes (``s.f``); ``s.data`` is the IDL struct.
    Times are UTC seconds (float); ``*_ns`` keep the integer nanoseconds.
    """

    __slots__ = ("data", "topic", "source_time_ns", "reception_time_ns")

    def __init__(self, data: IdlStruct, topic: str, source_time_ns: int, reception_time_ns: int) -> None:
        self.data = data
        self.topic = topic
        self.source_time_ns = source_time_ns
        self.reception_time_ns = reception_time_ns

    @property
    def id(self) -> str:
        return self.data.id

    @property
    def source_time(self) -> float:
        return self.source_time_ns / 1e9

    @property
    def reception_time(self) -> float:
        return self.reception_time_ns / 1e9

    @property
    def latency(self) -> float:
        """Reception minus source time, in seconds (clocks of two hosts permitting)."""
        return (self.reception_time_ns - self.source_time_ns) / 1e9

    def fields(self) -> dict[str, Any]:
        """The sample's fields as plain values (enums by name, nested structs as dicts)."""
        return {k: _plain(v) for k, v in vars(self.data).items() if k != "sample_info"}

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(object.__getattribute__(self, "data"), name)
        except AttributeError:
            raise AttributeError(f"{self.topic} sample has no field {name!r}") from None

    def __repr__(self) -> str:
        return f"Sample({self.topic}, {self.data!r}, source_time={self.source_time:.6f})"


# ----------------------------------------------------------------------- writer
class Writer:
    """Writes one object's samples on one topic (``G_1`` on Generator_Measurement)."""

    def __init__(self, bus: "Bus", topic: TopicType, object_id: str, dds_writer: DataWriter) -> None:
        self.bus, self.topic, self.object_id = bus, topic, object_id
        self._dds = dds_writer
        self._write = dds_writer.write

    def build(self, **fields: Any) -> IdlStruct:
        """A checked sample of this object (missing fields take their defaults)."""
        return self.topic.build(self.object_id, fields)

    def write(self, sample: IdlStruct | None = None, /, *, timestamp: float | None = None,
              **fields: Any) -> IdlStruct:
        """Publish ``sample``, or one built from ``fields``; stamp it with the source time.

        ``timestamp`` (UTC seconds) overrides the clock, e.g. for replayed data.
        """
        if sample is None:
            sample = self.topic.build(self.object_id, fields)
        elif fields:
            raise TypeError("give either a sample or fields, not both")
        elif not isinstance(sample, self.topic.cls):
            raise GridbusError(f"{self.object_id}: expected a {self.topic.type_name} sample, "
                               f"got {type(sample).__name__}")
        elif sample.id != self.object_id:
            raise UnknownObjectError(f"sample id {sample.id!r} does not match writer of {self.object_id}")
        stamp = time.time_ns() if timestamp is None else int(timestamp * 1e9)
        self._write(sample, timestamp=stamp)
        return sample

    def dispose(self) -> None:
        """Tell readers this object is gone (e.g. a device removed from the testbed)."""
        self._dds.dispose(self.topic.build(self.object_id))

    @property
    def matched(self) -> int:
        """Number of readers currently matched (for waiting until someone listens)."""
        return self._dds.get_publication_matched_status().current_count

    def wait_for_readers(self, count: int = 1, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.matched < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True


# ----------------------------------------------------------------------- reader
_get_deadline_status = DDS._dll_handle.dds_get_requested_deadline_missed_status
_get_deadline_status.argtypes = [ctypes.c_int32, ctypes.POINTER(dds_c_t.requested_deadline_missed_status)]
_get_deadline_status.restype = ctypes.c_int32


def _deadline_status(reader: DataReader) -> "dds_c_t.requested_deadline_missed_status":
    status = dds_c_t.requested_deadline_missed_status()
    ret = _get_deadline_status(reader._ref, ctypes.byref(status))
    if ret < 0:
        raise DDSException(ret, "reading the requested-deadline-missed status")
    return status


class _KeyMatch:
    """Recognizes one object's samples by instance handle, before deserializing.

    gridbus topic types are @final and start with ``@key string id``, so a
    serialized sample begins: 4-byte encapsulation header, uint32 length, the
    id bytes.  The first matching sample teaches us the instance handle; after
    that a comparison of integers decides.  (A Python content filter on the
    topic would run on Cyclone's receive thread and deadlock against the GIL.)
    """

    def __init__(self, object_id: str) -> None:
        want = object_id.encode() + b"\x00"
        self._le = struct.pack("<I", len(want)) + want
        self._be = struct.pack(">I", len(want)) + want
        self.handle: int | None = None

    def __call__(self, raw: bytes, handle: int) -> bool:
        if self.handle is not None:
            return handle == self.handle
        if raw[4:4 + len(self._le)] == (self._le if raw[1] & 1 else self._be):
            self.handle = handle                      # odd encapsulation id = little endian
            return True
        return False


@dataclass
class _Source:
    """One DDS reader feeding a gridbus Reader (one per topic)."""

    topic: TopicType
    dds: DataReader
    condition: ReadCondition
    deserialize: Callable[[bytes], IdlStruct]
    match: _KeyMatch | None = None                      # set for a reader of one object


class Reader:
    """Receives samples of one object, one object type or several, on one role.

    ``mode`` chooses how a blocking take waits: ``"wait"`` sleeps on a DDS
    WaitSet (no CPU while idle); ``"poll"`` spins on take with
    ``os.sched_yield()`` between polls, about halving one-way latency at the
    cost of one busy core while waiting.
    """

    def __init__(self, bus: "Bus", sources: list[_Source], object_id: str | None, mode: str) -> None:
        if mode not in ("wait", "poll"):
            raise ValueError(f"reader mode must be 'wait' or 'poll', not {mode!r}")
        self.bus, self.object_id, self.mode = bus, object_id, mode
        self._sources = sources
        self._waitset = WaitSet(bus.participant)
        for source in sources:
            self._waitset.attach(source.condition)
        self._pending: deque[Sample] = deque()
        self._deadline_seen: dict[str, int] = {}
        self._callback_thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def topics(self) -> list[str]:
        return [s.topic.name for s in self._sources]

    # -- taking ----------------------------------------------------------------------
    def _take_available(self, limit: int) -> list[Sample]:
        out: list[Sample] = []
        for source in self._sources:
            got = ddspy_take(source.dds._ref, ANY_STATE, min(limit - len(out), _BATCH) or 1)
            if not got:
                continue
            if isinstance(got, int):
                raise DDSException(got, f"taking from {source.topic.name}")
            now = time.time_ns()
            name, deserialize, match = source.topic.name, source.deserialize, source.match
            for raw, info in got:
                if info.valid_data and (match is None or match(raw, info.instance_handle)):
                    out.append(Sample(deserialize(raw), name, info.source_timestamp, now))
            if len(out) >= limit:
                break
        return out

    def take(self, timeout: float | None = 0.0, max_samples: int = 10_000) -> list[Sample]:
        """Samples available now; if none, wait up to ``timeout`` s (None = forever)."""
        if self._pending:
            batch = [self._pending.popleft() for _ in range(min(max_samples, len(self._pending)))]
            return batch
        batch = self._take_available(max_samples)
        if batch or timeout == 0:
            return batch
        end = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            if self.mode == "poll":
                os.sched_yield()
            else:
                self._waitset.wait(seconds_to_ns(min(remaining, 0.5) if remaining is not None else 0.5))
            batch = self._take_available(max_samples)
            if batch:
                return batch
        return []

    def take_one(self, timeout: float | None = None) -> Sample | None:
        """The next sample, waiting up to ``timeout`` s; None on timeout."""
        if not self._pending:
            self._pending.extend(self.take(timeout))
        return self._pending.popleft() if self._pending else None

    def iter(self, timeout: float | None = None, count: int | None = None) -> Iterator[Sample]:
        """Yield samples until ``count`` were yielded or ``timeout`` s pass without one."""
        seen = 0
        while count is None or seen < count:
            sample = self.take_one(timeout)
            if sample is None:
                return
            seen += 1
            yield sample

    __iter__ = iter

    async def aiter(self, timeout: float | None = None, count: int | None = None) -> AsyncIterator[Sample]:
        """Async iteration: ``async for s in reader.aiter(): ...`` (waits in a thread)."""
        loop = asyncio.get_running_loop()
        seen = 0
        while count is None or seen < count:
            sample = self.take_one(0) if self._pending or self._has_data() else None
            if sample is None:
                sample = await loop.run_in_executor(None, self.take_one, timeout)
            if sample is None:
                return
            seen += 1
            yield sample

    def _has_data(self) -> bool:
        batch = self._take_available(_BATCH)
        self._pending.extend(batch)
        return bool(batch)

    def latest(self, timeout: float = 0.0) -> dict[str, Sample]:
        """The newest sample of each object, draining what is queued."""
        newest: dict[str, Sample] = {}
        for sample in self.take(timeout):
            newest[sample.id] = sample
        return newest

    # -- callbacks ---------------------------------------------------------------------
    def on_sample(self, callback: Callable[[Sample], Any]) -> "Reader":
        """Call ``callback(sample)`` for every sample, from a gridbus thread.

        Not from a Cyclone listener: those run holding the GIL on Cyclone's
        threads, where long work or a write can deadlock.
        """
        if self._callback_thread is not None:
            raise GridbusError("this reader already has a callback")

        def run() -> None:
            while not self._closed.is_set():
                for sample in self.take(timeout=0.2):
                    callback(sample)
        self._callback_thread = threading.Thread(target=run, name=f"gridbus-{self.topics[0]}", daemon=True)
        self._callback_thread.start()
        return self

    @property
    def deadline_missed(self) -> int:
        """Total requested-deadline misses: times an object fell silent for longer
        than the reader's deadline.  Read from the DDS status, not a listener, so
        that no Python runs on Cyclone's threads."""
        return sum(_deadline_status(s.dds).total_count for s in self._sources)

    def deadline_events(self) -> list[str]:
        """Topics whose deadline was missed since the last call (one entry per miss)."""
        events: list[str] = []
        for source in self._sources:
            total = _deadline_status(source.dds).total_count
            seen = self._deadline_seen.get(source.topic.name, 0)
            events += [source.topic.name] * (total - seen)
            self._deadline_seen[source.topic.name] = total
        return events

    def close(self) -> None:
        self._closed.set()
        if self._callback_thread is not None and self._callback_thread is not threading.current_thread():
            self._callback_thread.join(timeout=2)
        for source in self._sources:
            try:
                self._waitset.detach(source.condition)
            except DDSException:
                pass


# -------------------------------------------------------------------------- bus
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
    partition: DDS partition, to keep groups of participants apart on one domain.
    """

    def __init__(self, domain: int | None = None, *, qos_file: str | Path | None = None,
                 topic_map: str | Path | None = None, config: str | Path | None = None,
                 idl: list[str | Path] | tuple = (), partition: str | None = None,
                 registry: Registry | None = None) -> None:
        self.domain_id = default_domain() if domain is None else int(domain)
        self.registry = registry or Registry.default()
        for path in idl:
            self.registry.load_idl(path)
        if topic_map is not None or qos_file is not None:
            self.qos = TopicMap(topic_map, qos_file) if topic_map is not None else TopicMap(qos_file=qos_file)
        else:
            self.qos = TopicMap()
        config_text = cyclone_config(config)
        _Domains.acquire(self.domain_id, config_text)
        try:
            self.participant = DomainParticipant(self.domain_id)
        except DDSException as exc:
            _Domains.release(self.domain_id)
            raise ConfigError(f"cannot join DDS domain {self.domain_id}: {exc}") from None
        group = Qos(Policy.Partition(partitions=[partition])) if partition else None
        self.partition = partition
        self.publisher = Publisher(self.participant, qos=group)
        self.subscriber = Subscriber(self.participant, qos=group)
        self._topics: dict[str, Topic] = {}
        self._writers: dict[tuple, DataWriter] = {}
        self._readers: list[Reader] = []
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "Bus":
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
        self._writers.clear()
        self._topics.clear()
        try:
            self.participant.__del__()
        except Exception:                                     # already gone
            pass
        _Domains.release(self.domain_id)

    # -- topics ------------------------------------------------------------------------
    def topic_type(self, object_id: str, role: str | None = None) -> TopicType:
        obj = self.registry.parse_id(object_id)
        return obj.topic(role or _default_role(obj))

    def _topic(self, topic: TopicType) -> Topic:
        if topic.name not in self._topics:
            self._topics[topic.name] = Topic(self.participant, topic.name, topic.cls)
        return self._topics[topic.name]

    def _overrides(self, qos: Qos, deadline: float | None, history: int | None) -> Qos:
        policies = [p for p in qos if not (
            (deadline is not None and isinstance(p, Policy.Deadline)) or
            (history is not None and str(p).startswith("Policy.History")))]
        if deadline is not None:
            policies.append(Policy.Deadline(seconds_to_ns(deadline)))
        if history is not None:
            policies.append(Policy.History.KeepLast(history))
        return type(qos)(*policies)

    # -- writing -----------------------------------------------------------------------
    def writer(self, object_id: str, role: str | None = None, *, deadline: float | None = None) -> Writer:
        """A writer for ``object_id`` on its ``role`` topic (default Measurement, else State).

        ``deadline`` (s) overrides the profile's: set it to the publishing period
        so readers learn when this object falls silent.
        """
        topic = self.topic_type(object_id, role)
        key = (topic.name, deadline)
        if key not in self._writers:
            qos = self._overrides(self.qos.writer_qos(topic.name), deadline, None)
            self._writers[key] = DataWriter(self.publisher, self._topic(topic), qos=qos)
        return Writer(self, topic, object_id, self._writers[key])

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
    def reader(self, pattern: str, role: str | None = None, *, mode: str = "wait",
               deadline: float | None = None, history: int | None = None,
               on_sample: Callable[[Sample], Any] | None = None) -> Reader:
        """A reader of one object (``G_1``), one type (``G`` or ``G_*``) or all (``*``).

        ``role`` picks the topic (Measurement, State, Command, Protection); by
        default Measurement, else State.  With several object types, only the
        types that have the role are read.  A reader of one object gets only
        that object's samples: the others are recognized by DDS instance handle
        and dropped before they are deserialized.
        """
        object_types, object_id = self.registry.select(pattern)
        chosen = [(o, o.topics[role or _default_role(o)]) for o in object_types
                  if (role or _default_role(o)) in o.topics]
        if not chosen:
            raise UnknownObjectError(f"no object type matching {pattern!r} has a {role} topic")
        sources = [self._source(topic, object_id, deadline, history) for _obj, topic in chosen]
        reader = Reader(self, sources, object_id, mode)
        self._readers.append(reader)
        if on_sample is not None:
            reader.on_sample(on_sample)
        return reader

    def _source(self, topic: TopicType, object_id: str | None, deadline: float | None,
                history: int | None) -> _Source:
        qos = self._overrides(self.qos.reader_qos(topic.name), deadline, history)
        dds = DataReader(self.subscriber, self._topic(topic), qos=qos)
        condition = ReadCondition(dds, ANY_STATE)
        match = _KeyMatch(object_id) if object_id is not None else None
        return _Source(topic, dds, condition, topic.cls.deserialize, match)

    # -- discovery ---------------------------------------------------------------------
    def wait_for_peers(self, object_id: str, role: str | None = None, count: int = 1,
                       timeout: float = 5.0) -> bool:
        """Wait until ``count`` remote readers match the writer of ``object_id``."""
        return self.writer(object_id, role).wait_for_readers(count, timeout)


def _default_role(obj: ObjectType) -> str:
    for role in ("Measurement", "State"):
        if role in obj.topics:
            return role
    return next(iter(obj.topics))
