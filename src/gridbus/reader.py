"""Reading samples: the gridbus side of the binding's ``DataReader``.

A :class:`Reader` reads one object, one object type or several, through one
DDS reader per topic (a :class:`~gridbus.source.Source`).  Everything it
hands out comes through one take path, ``_take_available``, which takes
serialized samples, drops other objects' samples by their key bytes, decodes
the rest with the topic type's generated codec (:mod:`gridbus.codec`), and
learns on the way which objects have writers and which lost them.  How a blocking take waits is a
strategy chosen at construction (:class:`_SleepOnWaitSet` or :class:`_Spin`),
and ``take_iter``, ``take_aiter``, ``on_sample`` and ``latest`` are thin
adapters on ``take``.  The bookkeeping of objects and their deadlines lives in
:mod:`gridbus.presence`, each topic's DDS reader and key matching in
:mod:`gridbus.source`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from cyclonedds.core import DDSException, InstanceState, WaitSet
from cyclonedds.domain import DomainParticipant

from . import _cyclone
from .codec import codec_for
from .errors import CodecError, GridbusError
from .presence import Deadlines, Presence
from .qos import seconds_to_ns
from .sample import Gone, Sample
from .source import Source, key_id

if TYPE_CHECKING:
    from .bus import Bus

__all__ = ["Reader"]

log = logging.getLogger("gridbus.bus")  # the logger README names for callback errors

BATCH = 256  # samples taken per call: the reader's fast path
_ALIVE = InstanceState.Alive
_new = object.__new__  # a Sample filled slot by slot (see Reader._take_available)


# ------------------------------------------------------------------ wait strategies
class _Waiting(Protocol):
    """How a blocking take waits between two takes that found nothing."""

    def wait(self, remaining: float | None) -> None: ...

    def close(self) -> None: ...


class _SleepOnWaitSet:
    """Mode ``"wait"``: sleep on a DDS WaitSet until data arrives (no CPU while idle).

    Wakes at least every half second, so that a closed reader stops waiting.
    """

    _LONGEST = 0.5

    def __init__(self, participant: DomainParticipant, sources: list[Source]) -> None:
        self._waitset = WaitSet(participant)
        self._sleep = self._waitset.wait  # one WaitSet for the reader's life, its bound method kept
        self._longest_ns = seconds_to_ns(self._LONGEST)
        self._conditions = [source.condition for source in sources]
        for condition in self._conditions:
            self._waitset.attach(condition)

    def wait(self, remaining: float | None) -> None:
        # inline arithmetic: this runs once per message, on the path a sample's latency is measured on
        if remaining is None or remaining >= self._LONGEST:
            self._sleep(self._longest_ns)
        else:
            self._sleep(int(remaining * 1e9))

    def close(self) -> None:
        for condition in self._conditions:
            try:
                self._waitset.detach(condition)
            except DDSException:
                pass


class _Spin:
    """Mode ``"poll"``: give up the CPU between takes, nothing more.

    About halves one-way latency, at the cost of one busy core while waiting.
    """

    def __init__(self, participant: DomainParticipant, sources: list[Source]) -> None:
        pass

    def wait(self, remaining: float | None) -> None:
        os.sched_yield()

    def close(self) -> None:
        pass


_WAITING: dict[str, type[_SleepOnWaitSet | _Spin]] = {"wait": _SleepOnWaitSet, "poll": _Spin}


# ---------------------------------------------------------------------------- reader
class Reader:
    """Receives samples of one object, one object type or several, on one role.

    ``mode`` chooses how a blocking take waits: ``"wait"`` sleeps on a DDS
    WaitSet (no CPU while idle); ``"poll"`` spins on take with
    ``os.sched_yield()`` between polls, about halving one-way latency at the
    cost of one busy core while waiting.

    Besides samples, a reader learns, as it takes, which objects have a live
    writer (``alive_objects``) and which lost theirs (``gone()``, ``on_gone``).
    """

    _CHECK_EVERY = 0.25  # s between DDS status checks

    def __init__(self, bus: Bus, sources: list[Source], object_id: str | None, mode: str) -> None:
        if mode not in _WAITING:
            raise ValueError(f"reader mode must be 'wait' or 'poll', not {mode!r}")
        self.bus, self.object_id, self.mode = bus, object_id, mode
        self.pattern = object_id  # what it was asked for (set by Bus.reader)
        self._sources = sources
        for source in sources:  # the generated decoder instead of the binding's deserializer
            source.deserialize = codec_for(source.topic.cls).decode
        self._feeds = [(s.dds, s.topic.name, s.deserialize, s.match) for s in sources]  # what a take needs
        self._turn = 0  # the topic a take starts at, in turn
        self._waiting: _Waiting = _WAITING[mode](bus.participant, sources)
        self._pending: deque[Sample] = deque()
        periods = {s.topic.name: s.deadline for s in sources if s.deadline}
        self._presence = Presence(Deadlines(periods) if periods else None, self._label)
        self._deadline_seen: dict[str, int] = {}
        self._callback_thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._next_check = 0.0
        self.callback_errors = 0
        self.malformed = 0  # samples dropped because they could not be decoded

    @property
    def topics(self) -> list[str]:
        return [s.topic.name for s in self._sources]

    def _label(self) -> str:
        return self.pattern or ",".join(self.topics)

    # -- the take path -----------------------------------------------------------------
    def _take_available(self, limit: int) -> list[Sample]:
        """Up to ``limit`` samples DDS holds now, of this reader's objects; never waits.

        The sources are drained in rounds of one :data:`BATCH` each until all are empty or
        ``limit`` is reached (round by round, so one busy topic cannot starve the others).
        One batch per call was not enough: after a pause (a starved process, a long
        collection) a topic's backlog of several objects exceeds a batch, DDS hands it out
        object by object, and the objects left for the next call looked stale beside the
        ones taken (the experiments' "G_2 measurement is 5.6 s old").

        Runs once per message on the latency path, mostly with cold caches (the
        thread just woke): every call, attribute lookup and clock read counts,
        so per-topic values come from ``_feeds`` and Samples are filled
        without an ``__init__`` frame.
        """
        out: list[Sample] = []
        limit = max(1, limit)
        presence = self._presence
        writers_of, deadlines = presence.writers_of, presence.deadlines
        feeds = self._feeds
        if len(feeds) > 1:  # each call starts at the next topic: a small limit still goes round
            turn = self._turn = (self._turn + 1) % len(feeds)
            feeds = feeds[turn:] + feeds[:turn]
        for _ in range(limit // BATCH + 1):  # bounded: a filter may drop all it takes
            more = []  # the feeds that filled their batch: they may hold more
            for feed in feeds:
                want = min(limit - len(out), BATCH)
                if want <= 0:
                    break
                dds, name, deserialize, match = feed
                got = _cyclone.take_serialized(dds, want)
                if not got:
                    continue
                now = time.time_ns()
                clock = 0.0 if deadlines is None else time.monotonic()
                for raw, info in got:
                    if match is not None and not match(raw):
                        continue
                    state = info.instance_state
                    if info.valid_data:
                        try:
                            data = deserialize(raw)
                        except CodecError as exc:
                            self._malformed(exc)
                            continue
                        sample = _new(Sample)
                        sample.data, sample.topic = data, name
                        sample.source_time_ns, sample.reception_time_ns = info.source_timestamp, now
                        out.append(sample)
                        object_id = data.id
                        if state == _ALIVE:
                            entry = writers_of.get(object_id)
                            if entry is None:
                                presence.now_alive(object_id, name, info.publication_handle)
                            elif info.publication_handle not in entry[1]:
                                entry[1].add(info.publication_handle)
                            if deadlines is not None:
                                deadlines.seen(object_id, name, clock)
                            continue
                        presence.now_gone(object_id, name, state)
                    elif state != _ALIVE and (gone_id := key_id(raw)):
                        presence.now_gone(gone_id, name, state)
                if len(got) == want:
                    more.append(feed)
            feeds = more
            if not feeds or len(out) >= limit:
                break
        if time.monotonic() >= self._next_check:
            self._check_status()
        return out

    def _malformed(self, exc: CodecError) -> None:
        """Drop a sample that cannot be decoded (some writer on the domain sent garbage); say so."""
        self.malformed += 1
        if self.malformed <= 10 or self.malformed % 1000 == 0:
            log.warning("reader of %s dropped a malformed sample (%d so far): %s", self._label(), self.malformed, exc)

    def take(self, timeout: float | None = 0.0, max_samples: int = 10_000) -> list[Sample]:
        """Samples available now; if none, wait up to ``timeout`` s (None = forever)."""
        if self._pending:
            return [self._pending.popleft() for _ in range(min(max_samples, len(self._pending)))]
        batch = self._take_available(max_samples)
        if batch or timeout == 0:
            return batch
        end = None if timeout is None else time.monotonic() + timeout
        wait = self._waiting.wait
        while not self._closed.is_set():
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            wait(remaining)
            batch = self._take_available(max_samples)
            if batch:
                return batch
        return []

    # -- adapters on take ---------------------------------------------------------------
    def take_one(self, timeout: float | None = None) -> Sample | None:
        """The next sample, waiting up to ``timeout`` s; None on timeout."""
        if not self._pending:
            self._pending.extend(self.take(timeout))
        return self._pending.popleft() if self._pending else None

    def take_iter(self, timeout: float | None = None, count: int | None = None) -> Iterator[Sample]:
        """Yield samples until ``count`` were yielded or ``timeout`` s pass without one."""
        seen = 0
        while count is None or seen < count:
            sample = self.take_one(timeout)
            if sample is None:
                return
            seen += 1
            yield sample

    async def take_aiter(self, timeout: float | None = None, count: int | None = None) -> AsyncIterator[Sample]:
        """Async iteration: ``async for s in reader.take_aiter(): ...`` (waits in a thread)."""
        loop = asyncio.get_running_loop()
        seen = 0
        while count is None or seen < count:
            sample = self.take_one(0)  # what is there now, without a thread
            if sample is None:
                sample = await loop.run_in_executor(None, self.take_one, timeout)
            if sample is None:
                return
            seen += 1
            yield sample

    iter = take_iter  # the names before take_iter/take_aiter
    aiter = take_aiter
    __iter__ = take_iter

    def latest(self, timeout: float = 0.0) -> dict[str, Sample]:
        """The newest sample of each object, draining what is queued."""
        newest: dict[str, Sample] = {}
        for sample in self.take(timeout):
            newest[sample.id] = sample
        return newest

    def on_sample(self, callback: Callable[[Sample], Any]) -> Reader:
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
            log.exception(
                "on_sample callback of the %s reader raised on %s (%s); delivery goes on",
                self._label(),
                sample.id,
                sample.topic,
            )
        elif n % 100 == 0:
            log.error("on_sample callback of the %s reader has raised %d times; delivery goes on", self._label(), n)

    # -- DDS statuses -------------------------------------------------------------------
    def _check_status(self) -> None:
        """Learn from DDS statuses what samples do not say: writers that left, samples refused."""
        self._next_check = time.monotonic() + self._CHECK_EVERY
        left = False
        for source in self._sources:
            left |= source.writers_left()
            source.warn_rejections(self._label)
        if left and self._presence.writers_of:
            present: set[int] = set()
            for source in self._sources:
                present |= source.matched_writers()
            self._presence.forget_departed_writers(present)

    @property
    def rejected(self) -> int:
        """Samples DDS refused because this reader hit its resource limits."""
        return sum(_cyclone.sample_rejected(s.dds)[0] for s in self._sources)

    @property
    def lost(self) -> int:
        """Samples DDS knows were lost before reaching this reader (e.g. best-effort gaps)."""
        return sum(_cyclone.sample_lost(s.dds) for s in self._sources)

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
        deadlines = self._presence.deadlines
        if deadlines is None:
            return {}
        self._pending.extend(self._take_available(BATCH))
        deadlines.settle(time.monotonic())
        return dict(deadlines.missed)

    # -- objects coming and going ------------------------------------------------------
    @property
    def alive_objects(self) -> frozenset[str]:
        """Ids of the objects that have a live writer, as of the samples taken so far."""
        return frozenset(self._presence.writers_of)

    def gone(self) -> list[Gone]:
        """Objects whose writers went away since the last call (oldest first).

        Learned while taking, from DDS instance states and from the writers
        this reader is matched with: an object is gone when every writer that
        wrote it has left (its process exited; after a crash, when its DDS lease
        expires, 10 s by default) or when a writer disposed it.  Keeps the
        newest 4096 events.
        """
        return self._presence.drain_gone()

    def on_gone(self, callback: Callable[[Gone], Any]) -> Reader:
        """Call ``callback(gone)`` when an object loses its writers (see ``gone()``).

        It runs in the thread that takes: the ``on_sample`` thread if there is
        one, else the caller of ``take``.  An exception in it is logged.
        """
        self._presence.on_gone = callback
        return self

    def close(self) -> None:
        self._closed.set()
        if self._callback_thread is not None and self._callback_thread is not threading.current_thread():
            self._callback_thread.join(timeout=2)
        self._waiting.close()
