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
import logging
import os
import struct
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from cyclonedds._clayer import ddspy_take
from cyclonedds.core import (DDSException, InstanceState, ReadCondition, SampleState,
                             ViewState, WaitSet)
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.pub import DataWriter, Publisher
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader, Subscriber
from cyclonedds.topic import Topic
from lxml import etree

from .errors import ConfigError, GridbusError, UnknownObjectError
from .model import ObjectType, Registry, TopicType, _plain
from .qos import DATA_DIR, TopicMap, seconds_to_ns

log = logging.getLogger("gridbus.bus")

LOOPBACK_CONFIG = DATA_DIR / "cyclonedds-loopback.xml"
ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_BATCH = 256                                   # samples taken per call: the reader's fast path
_ALIVE = InstanceState.Alive
_DISPOSED = InstanceState.NotAliveDisposed

# Per-reader bounds (one DDS reader per topic).  A writer that invents a new object id per
# sample must not grow a reader without bound: Cyclone keeps an instance per key for as long
# as its writer has it registered.  Override per reader (``bus.reader(..., max_instances=)``)
# or per profile (``<resource_limits>`` in the QoS XML).
MAX_INSTANCES = 4096                           # objects per topic; a lab has tens
MAX_SAMPLES = 65536                            # samples queued per topic, all objects together
_U64 = 2**64 - 1                               # instance handles are unsigned in sample infos
_WARN_EVERY = 10.0                             # s between resource-limit warnings per topic
_INFINITE_NS = 2**63 - 1                       # DDS_INFINITY
_MATCH_SETTLE = 0.05                           # s for a remote reader to match a new writer
MAX_PARTITION_BYTES = 256                      # Cyclone segfaults near 64 KiB; names are short


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
    ``CYCLONEDDS_URI``, else gridbus's loopback-only file.

    Whatever is given is parsed first: Cyclone itself falls back to its
    defaults (every interface, multicast) on an empty or truncated file, which
    would put a lab's traffic on its LAN without a word.
    """
    if config is None:
        uri = os.environ.get("CYCLONEDDS_URI", "")
        if uri.strip():
            check_cyclone_uri(uri)
            return None                              # Cyclone reads it itself
        return LOOPBACK_CONFIG.read_text()
    text = str(config)
    if text.lstrip().startswith("<"):
        _check_cyclone_xml(text, "the Cyclone DDS configuration text", fragment=True)
        return text
    return _read_cyclone_file(Path(text.removeprefix("file://")), "")


def check_cyclone_uri(uri: str) -> None:
    """Check what ``CYCLONEDDS_URI`` names: files (``file://``, comma separated) or XML text."""
    expanded = os.path.expandvars(uri).strip()
    if expanded.startswith("<"):
        _check_cyclone_xml(expanded, "CYCLONEDDS_URI", fragment=True)
        return
    for part in (p.strip() for p in expanded.split(",")):
        if part.startswith("<"):
            _check_cyclone_xml(part, "CYCLONEDDS_URI", fragment=True)
        elif part:
            _read_cyclone_file(Path(part.removeprefix("file://")), " (named by CYCLONEDDS_URI)")


def _read_cyclone_file(path: Path, named_by: str) -> str:
    """The text of a Cyclone configuration file, checked (ConfigError naming the file)."""
    if not path.exists():
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by} does not exist")
    if not path.is_file():
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by} is not a regular file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Cyclone DDS configuration {path}{named_by}: not UTF-8 text "
                          f"(byte {exc.start})") from None
    _check_cyclone_xml(text, f"{path}", fragment=False, named_by=named_by)
    return text


def _check_cyclone_xml(text: str, where: str, fragment: bool, named_by: str = "") -> None:
    """Parse a Cyclone configuration; ConfigError with ``where:line`` if it is not one.

    A file must have the ``<CycloneDDS>`` root; XML text may be a fragment
    (``<General>...</General>``), which Cyclone places under an implied root.
    """
    if not text.strip():
        raise ConfigError(f"{where}{named_by}: empty Cyclone DDS configuration (Cyclone would "
                          "silently fall back to its defaults: every interface and multicast)")
    body = text.encode("utf-8")
    if fragment and not text.lstrip().startswith("<?"):
        body = b"<CycloneDDS>" + body + b"</CycloneDDS>"   # same line numbers
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{where}:{exc.lineno}{named_by}: not a Cyclone DDS configuration: "
                          f"malformed XML: {exc.msg}") from None
    name = etree.QName(root).localname
    if name.lower() != "cyclonedds":
        raise ConfigError(f"{where}:{root.sourceline}{named_by}: the root element is <{name}>, "
                          "expected <CycloneDDS>")


def check_partition(name: str) -> None:
    """Refuse a partition name Cyclone cannot use (ConfigError saying why).

    Cyclone crashes (segfault) on a name near 64 KiB; DDS reads ``*``, ``?``
    and ``[`` as wildcards, and two wildcard partitions never match each other,
    so a Bus with one would not even hear itself.
    """
    if not isinstance(name, str):
        raise ConfigError(f"partition name must be text, not {type(name).__name__}")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_PARTITION_BYTES:
        raise ConfigError(f"partition name is {size} bytes long; at most {MAX_PARTITION_BYTES} "
                          f"bytes are allowed (starts {name[:20]!r})")
    for position, char in enumerate(name):
        if char in "*?[]\\":
            raise ConfigError(f"partition name {name!r} contains {char!r} at position {position}: "
                              "DDS reads it as a wildcard pattern; use a plain name")
        if not char.isprintable():
            raise ConfigError(f"partition name {name!r} contains the control character "
                              f"{char!r} at position {position}")


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

    def __init__(self, bus: "Bus", topic: TopicType, object_id: str, dds_writer: DataWriter,
                 born: float = 0.0) -> None:
        self.bus, self.topic, self.object_id = bus, topic, object_id
        self._dds = dds_writer
        self._born = born                                  # time.monotonic() at DDS writer creation
        self._best_effort = any(isinstance(p, type(Policy.Reliability.BestEffort)) for p in dds_writer.get_qos())
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
        """Tell readers this object is gone (e.g. a device removed from the testbed).

        The instance is also unregistered, so that readers (and this writer)
        can reclaim it; writing again brings the object back.
        """
        key = self.topic.build(self.object_id)
        self._dds.dispose(key)
        self._dds.unregister_instance(key)

    @property
    def matched(self) -> int:
        """Number of readers currently matched (for waiting until someone listens)."""
        return self._dds.get_publication_matched_status().current_count

    def wait_for_readers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` readers match; False after ``timeout`` s.

        A remote reader matches this writer a moment after this writer matches
        it, and drops best-effort data sent in between: so a new best-effort
        writer, or one that had to wait, pauses briefly before returning.
        (Reliable data sent in between is repaired by the protocol.)
        """
        deadline = time.monotonic() + timeout
        waited = False
        while self.matched < count:
            if time.monotonic() > deadline:
                return False
            waited = True
            time.sleep(0.005)
        if self._best_effort and (waited or time.monotonic() - self._born < _MATCH_SETTLE):
            time.sleep(_MATCH_SETTLE)
        return True


# ----------------------------------------------------------------------- reader
class _KeyMatch:
    """Recognizes one object's samples by their key bytes, before deserializing.

    gridbus topic types are @final and start with ``@key string id``, so a
    serialized sample (and the key of an invalid sample) begins: 4-byte
    encapsulation header, uint32 length, the id bytes.  The key is compared on
    every sample, never remembered as an instance handle: Cyclone gives a key a
    new handle once every writer has unregistered it (a publisher process
    exits), and a cached handle made a one-object reader deaf to the object's
    next writer.  Both byte orders are recognized: writers of other DDS
    implementations may send big-endian CDR.  (A Python content filter on the
    topic would run on Cyclone's receive thread and deadlock against the GIL.)
    """

    def __init__(self, object_id: str) -> None:
        want = object_id.encode() + b"\x00"
        self._le = struct.pack("<I", len(want)) + want
        self._be = struct.pack(">I", len(want)) + want

    def __call__(self, raw: bytes) -> bool:
        return raw.startswith(self._le if raw[1] & 1 else self._be, 4)   # odd id = little endian


def _key_id(raw: bytes) -> str:
    """The object id at the head of a serialized sample or key (either byte order); "" if none."""
    if len(raw) < 9:
        return ""
    size = struct.unpack_from("<I" if raw[1] & 1 else ">I", raw, 4)[0]
    return raw[8:7 + size].decode("utf-8", "replace")


@dataclass(frozen=True)
class Gone:
    """An object whose writers are gone: every writer of it left (its process
    exited, or crashed and its DDS lease expired), or one disposed it
    (``Writer.dispose()``)."""

    id: str
    topic: str
    reason: str                                       # "no writers" or "disposed"
    time: float                                       # UTC s when this reader learned it


_REJECT_REASONS = {1: "max_instances", 2: "max_samples", 3: "max_samples_per_instance"}


@dataclass
class _Source:
    """One DDS reader feeding a gridbus Reader (one per topic)."""

    topic: TopicType
    dds: DataReader
    condition: ReadCondition
    deserialize: Callable[[bytes], IdlStruct]
    match: _KeyMatch | None = None                      # set for a reader of one object
    limits: Policy.ResourceLimits | None = None
    rejected_seen: int = 0
    matched_seen: tuple[int, int] = (0, 0)              # (current, total) matched writers
    deadline: float | None = None                       # requested deadline (s), checked by gridbus
    warn_after: float = 0.0                             # time.monotonic() of the next allowed warning


class _Deadlines:
    """Requested-deadline accounting, done by gridbus rather than by Cyclone.

    Cyclone 11.0.1 forgets an instance's writer when the reader's deadline is
    missed (dds_rhc_default.c, deadline_missed_cb clears wr_iid_islive): the
    instance then never becomes not-alive and is never reclaimed, so a reader
    could neither learn that an object is gone nor free what a flood left.
    gridbus readers therefore give DDS no deadline and count misses here, the
    DDS way: one per period an object stays silent, from its last sample.
    """

    def __init__(self, periods: dict[str, float]) -> None:
        self.periods = periods                           # topic -> deadline period (s)
        self.due: dict[str, tuple[str, float]] = {}      # object id -> (topic, next deadline)
        self.missed: dict[str, int] = {}                 # topic -> misses so far

    def seen(self, object_id: str, topic: str, now: float) -> None:
        period = self.periods.get(topic)
        if period is None:
            return
        entry = self.due.get(object_id)
        if entry is not None and now > entry[1]:
            self._count(topic, now - entry[1])
        self.due[object_id] = (topic, now + period)

    def forget(self, object_id: str, now: float) -> None:
        """Stop watching an object that is gone, counting its silence until ``now``."""
        entry = self.due.pop(object_id, None)
        if entry is not None and now > entry[1]:
            self._count(entry[0], now - entry[1])

    def settle(self, now: float) -> None:
        """Count the misses of objects silent until ``now``."""
        for object_id, (topic, due) in list(self.due.items()):
            if now > due:
                late = self._count(topic, now - due)
                self.due[object_id] = (topic, due + late * self.periods[topic])

    def _count(self, topic: str, overdue: float) -> int:
        late = int(overdue // self.periods[topic]) + 1
        self.missed[topic] = self.missed.get(topic, 0) + late
        return late


class Reader:
    """Receives samples of one object, one object type or several, on one role.

    ``mode`` chooses how a blocking take waits: ``"wait"`` sleeps on a DDS
    WaitSet (no CPU while idle); ``"poll"`` spins on take with
    ``os.sched_yield()`` between polls, about halving one-way latency at the
    cost of one busy core while waiting.

    Besides samples, a reader learns, as it takes, which objects have a live
    writer (``alive_objects``) and which lost theirs (``gone()``, ``on_gone``).
    """

    _GONE_KEPT = 4096                                    # bounds of the bookkeeping below
    _CHECK_EVERY = 0.25                                  # s between DDS status checks

    def __init__(self, bus: "Bus", sources: list[_Source], object_id: str | None, mode: str) -> None:
        if mode not in ("wait", "poll"):
            raise ValueError(f"reader mode must be 'wait' or 'poll', not {mode!r}")
        self.bus, self.object_id, self.mode = bus, object_id, mode
        self.pattern = object_id                         # what it was asked for (set by Bus.reader)
        self._sources = sources
        self._waitset = WaitSet(bus.participant)
        for source in sources:
            self._waitset.attach(source.condition)
        self._pending: deque[Sample] = deque()
        periods = {s.topic.name: s.deadline for s in sources if s.deadline}
        self._deadlines = _Deadlines(periods) if periods else None
        self._deadline_seen: dict[str, int] = {}
        self._callback_thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._writers_of: dict[str, tuple[str, set[int]]] = {}   # alive id -> (topic, writers)
        self._recently_gone: OrderedDict[str, None] = OrderedDict()
        self._gone_events: deque[Gone] = deque(maxlen=self._GONE_KEPT)
        self._on_gone: Callable[[Gone], Any] | None = None
        self._next_check = 0.0
        self.callback_errors = 0

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
            writers_of, deadlines = self._writers_of, self._deadlines
            clock = time.monotonic()
            for raw, info in got:
                if match is not None and not match(raw):
                    continue
                state = info.instance_state
                if info.valid_data:
                    data = deserialize(raw)
                    out.append(Sample(data, name, info.source_timestamp, now))
                    if state == _ALIVE:
                        entry = writers_of.get(data.id)
                        if entry is None:
                            self._now_alive(data.id, name, info.publication_handle)
                        elif info.publication_handle not in entry[1]:
                            entry[1].add(info.publication_handle)
                        if deadlines is not None:
                            deadlines.seen(data.id, name, clock)
                        continue
                    self._now_gone(data.id, name, state)
                elif state != _ALIVE and (gone_id := _key_id(raw)):
                    self._now_gone(gone_id, name, state)
            if len(out) >= limit:
                break
        if time.monotonic() >= self._next_check:
            self._check_status()
        return out

    def _now_alive(self, object_id: str, topic: str, writer: int) -> None:
        self._writers_of[object_id] = (topic, {writer})
        self._recently_gone.pop(object_id, None)

    def _now_gone(self, object_id: str, topic: str, state: int) -> None:
        """Record that ``object_id`` lost its writers, once per loss."""
        if self._writers_of.pop(object_id, None) is None and object_id in self._recently_gone:
            return                                       # already reported
        self._recently_gone[object_id] = None
        if len(self._recently_gone) > self._GONE_KEPT:
            self._recently_gone.popitem(last=False)
        if self._deadlines is not None:
            self._deadlines.forget(object_id, time.monotonic())
        event = Gone(object_id, topic, "disposed" if state == _DISPOSED else "no writers", time.time())
        log.debug("%s gone on %s (%s)", object_id, topic, event.reason)
        self._gone_events.append(event)
        if self._on_gone is not None:
            try:
                self._on_gone(event)
            except Exception:
                log.exception("on_gone callback of the %s reader raised on %s", self._label(), object_id)

    def _check_status(self) -> None:
        """Learn from DDS statuses what samples do not say: writers that left, samples refused."""
        self._next_check = time.monotonic() + self._CHECK_EVERY
        left = False
        for source in self._sources:
            matched = source.dds.get_subscription_matched_status()
            seen = (matched.current_count, matched.total_count)
            joined = seen[1] - source.matched_seen[1]
            left |= seen[0] < source.matched_seen[0] + joined      # someone unmatched
            source.matched_seen = seen
            self._warn_rejections(source)
        if left and self._writers_of:
            self._forget_departed_writers()

    def _forget_departed_writers(self) -> None:
        """Objects whose every writer is no longer matched are gone.

        Cyclone marks such instances not-alive itself, but not always (see
        ``_Deadlines``), and a crashed writer only leaves when its lease expires.
        """
        present: set[int] = set()
        for source in self._sources:             # signed there, unsigned in sample infos
            present.update(h & _U64 for h in source.dds.get_matched_publications())
        for object_id, (topic, writers) in list(self._writers_of.items()):
            writers &= present
            if not writers:
                self._now_gone(object_id, topic, InstanceState.NotAliveNoWriters)

    def _warn_rejections(self, source: _Source) -> None:
        """Say (at most every 10 s per topic) that DDS refused samples at this reader's limits."""
        if time.monotonic() < source.warn_after:
            return
        status = source.dds.get_sample_rejected_status()
        if status.total_count > source.rejected_seen:
            limit = _REJECT_REASONS.get(status.last_reason, "a resource limit")
            value = getattr(source.limits, limit, "?")
            log.warning("reader of %s (%s): DDS refused %d sample(s), %s=%s reached; "
                        "samples of the objects it holds still arrive", self._label(),
                        source.topic.name, status.total_count - source.rejected_seen, limit, value)
            source.rejected_seen = status.total_count
            source.warn_after = time.monotonic() + _WARN_EVERY

    def _label(self) -> str:
        return self.pattern or ",".join(self.topics)

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

    # -- objects coming and going ------------------------------------------------------
    @property
    def alive_objects(self) -> frozenset[str]:
        """Ids of the objects that have a live writer, as of the samples taken so far."""
        return frozenset(self._writers_of)

    def gone(self) -> list[Gone]:
        """Objects whose writers went away since the last call (oldest first).

        Learned while taking, from DDS instance states and from the writers
        this reader is matched with: an object is gone when every writer that
        wrote it has left (its process exited; after a crash, when its DDS lease
        expires, 10 s by default) or when a writer disposed it.  Keeps the
        newest 4096 events.
        """
        events = list(self._gone_events)
        self._gone_events.clear()
        return events

    def on_gone(self, callback: Callable[[Gone], Any]) -> "Reader":
        """Call ``callback(gone)`` when an object loses its writers (see ``gone()``).

        It runs in the thread that takes: the ``on_sample`` thread if there is
        one, else the caller of ``take``.  An exception in it is logged.
        """
        self._on_gone = callback
        return self

    @property
    def rejected(self) -> int:
        """Samples DDS refused because this reader hit its resource limits."""
        return sum(s.dds.get_sample_rejected_status().total_count for s in self._sources)

    @property
    def lost(self) -> int:
        """Samples DDS knows were lost before reaching this reader (e.g. best-effort gaps)."""
        return sum(s.dds.get_sample_lost_status().total_count for s in self._sources)

    # -- callbacks ---------------------------------------------------------------------
    def on_sample(self, callback: Callable[[Sample], Any]) -> "Reader":
        """Call ``callback(sample)`` for every sample, from a gridbus thread.

        Not from a Cyclone listener: those run holding the GIL on Cyclone's
        threads, where long work or a write can deadlock.  An exception in the
        callback is logged with its traceback (logger ``gridbus.bus``) and
        delivery goes on with the next sample; ``callback_errors`` counts them.
        """
        if self._callback_thread is not None:
            raise GridbusError("this reader already has a callback")

        def run() -> None:
            while not self._closed.is_set():
                try:
                    batch = self.take(timeout=0.2)
                except Exception:
                    if not self._closed.is_set():
                        log.exception("the %s reader failed; its callback thread stops", self._label())
                    return
                for sample in batch:
                    try:
                        callback(sample)
                    except Exception:
                        self._callback_failed(sample)
        self._callback_thread = threading.Thread(target=run, name=f"gridbus-{self.topics[0]}", daemon=True)
        self._callback_thread.start()
        return self

    def _callback_failed(self, sample: Sample) -> None:
        """Log a failed callback: with its traceback for the first ten, then every hundredth."""
        self.callback_errors += 1
        n = self.callback_errors
        if n <= 10:
            log.exception("on_sample callback of the %s reader raised on %s (%s); delivery goes on",
                          self._label(), sample.id, sample.topic)
        elif n % 100 == 0:
            log.error("on_sample callback of the %s reader has raised %d times; delivery goes on",
                      self._label(), n)

    @property
    def deadline_missed(self) -> int:
        """Total requested-deadline misses: one per deadline period an object
        stayed silent (after its first sample).  Samples waiting in DDS are
        taken into this reader's queue first, so they count as arrived."""
        return sum(self._missed_by_topic().values())

    def deadline_events(self) -> list[str]:
        """Topics whose deadline was missed since the last call (one entry per miss)."""
        events: list[str] = []
        for topic, total in self._missed_by_topic().items():
            events += [topic] * (total - self._deadline_seen.get(topic, 0))
            self._deadline_seen[topic] = total
        return events

    def _missed_by_topic(self) -> dict[str, int]:
        if self._deadlines is None:
            return {}
        self._pending.extend(self._take_available(_BATCH))
        self._deadlines.settle(time.monotonic())
        return dict(self._deadlines.missed)

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
    partition: DDS partition, to keep groups of participants apart on one domain
        (a plain name of at most 256 bytes; ConfigError otherwise).
    """

    def __init__(self, domain: int | None = None, *, qos_file: str | Path | None = None,
                 topic_map: str | Path | None = None, config: str | Path | None = None,
                 idl: list[str | Path] | tuple = (), partition: str | None = None,
                 registry: Registry | None = None) -> None:
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
        self._writers: dict[tuple, tuple[DataWriter, float]] = {}   # -> (writer, created at)
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
        instances = max_instances if max_instances is not None else \
            (given.max_instances if given else MAX_INSTANCES)
        samples = max_samples if max_samples is not None else (given.max_samples if given else MAX_SAMPLES)
        for name, value in (("max_instances", instances), ("max_samples", samples)):
            if value != -1 and value < 1:
                raise ConfigError(f"reader {name} must be positive (or -1, unlimited), not {value}")
        if samples != -1 and depth is not None:
            samples = max(samples, depth)          # DDS: depth <= per instance <= max_samples
        per_instance = depth if depth is not None else samples
        limits = Policy.ResourceLimits(max_samples=samples, max_instances=instances,
                                       max_samples_per_instance=per_instance)
        return type(qos)(*[p for p in qos if not isinstance(p, Policy.ResourceLimits)], limits)

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
            if not any(isinstance(p, Policy.WriterDataLifecycle) for p in qos):
                # a writer that leaves is "no writers" to readers; "disposed" stays an explicit act
                qos = type(qos)(*qos, Policy.WriterDataLifecycle(autodispose=False))
            self._writers[key] = (DataWriter(self.publisher, self._topic(topic), qos=qos), time.monotonic())
        dds, born = self._writers[key]
        return Writer(self, topic, object_id, dds, born)

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
               on_sample: Callable[[Sample], Any] | None = None,
               on_gone: Callable[[Gone], Any] | None = None,
               max_instances: int | None = None, max_samples: int | None = None) -> Reader:
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
        chosen = [(o, o.topics[role or _default_role(o)]) for o in object_types
                  if (role or _default_role(o)) in o.topics]
        if not chosen:
            raise UnknownObjectError(f"no object type matching {pattern!r} has a {role} topic")
        sources = [self._source(topic, object_id, deadline, history, max_instances, max_samples)
                   for _obj, topic in chosen]
        reader = Reader(self, sources, object_id, mode)
        reader.pattern = pattern
        self._readers.append(reader)
        if on_gone is not None:
            reader.on_gone(on_gone)
        if on_sample is not None:
            reader.on_sample(on_sample)
        return reader

    def _source(self, topic: TopicType, object_id: str | None, deadline: float | None,
                history: int | None, max_instances: int | None = None,
                max_samples: int | None = None) -> _Source:
        qos = self._overrides(self.qos.reader_qos(topic.name), deadline, history)
        qos = self._bounded(qos, max_instances, max_samples)
        period = next((p.deadline for p in qos if isinstance(p, Policy.Deadline)), None)
        qos = type(qos)(*[p for p in qos if not isinstance(p, Policy.Deadline)])   # see _Deadlines
        try:
            dds = DataReader(self.subscriber, self._topic(topic), qos=qos)
        except DDSException as exc:
            raise ConfigError(f"DDS refused the reader QoS of {topic.name} ({qos}): {exc}") from None
        condition = ReadCondition(dds, ANY_STATE)
        match = _KeyMatch(object_id) if object_id is not None else None
        limits = next(p for p in qos if isinstance(p, Policy.ResourceLimits))
        checked = period / 1e9 if period is not None and 0 < period < _INFINITE_NS else None
        return _Source(topic, dds, condition, topic.cls.deserialize, match, limits, deadline=checked)

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
