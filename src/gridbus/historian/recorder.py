"""``gridbus record``: store every sample of the selected objects and topics.

What can be lost, and when (README, "Historian", says the same):

* Before anything is taken, the target is checked (opened, schema compared,
  a probe row written and rolled back) and so is the spool directory: a
  target that cannot be used stops the recorder with an error (exit 2).
* The *taker* thread moves samples from DDS (KEEP_ALL readers, :mod:`.tap`)
  into memory; the *committer* group-commits them into a local journal
  (:mod:`.journal`) every ``commit_interval`` (50 ms), or sooner once a batch
  waits (:mod:`.intake`).  ``kill -9`` loses what was taken but not yet
  committed: at most about that interval.  Samples DDS itself dropped (the
  recorder's queue was full, or out-of-order samples) are counted.
* The *forwarder* thread writes journal rows in order, in batches of ``batch``
  rows (woken by each commit) or every ``flush_interval`` s, each batch with its mark in the same
  transaction.  While the database is away the rows wait in the journal on
  disk; a restart forwards what the target lacks, never twice.
* On SIGINT/SIGTERM the journal is forwarded for up to ``exit_timeout`` s;
  what the database still refuses is written to a CSV in the spool directory
  (never beside a database whose disk may be full), or stays in the journal
  for the next start.  Every sample not in the database is counted in the
  final statistics and the exit status says so.
  A thread that does not stop within 5 s is left the journal: nothing more
  is taken, forwarded or spooled beside it; its rows wait for the next start.
* Only if the journal itself cannot be written (the spool's disk is full)
  do rows wait in memory, up to ``max_buffer`` rows; beyond that the oldest
  are dropped and counted.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from ..bus import Bus
from ..errors import GridbusError, SinkUnavailable
from .dedupe import unstored
from .intake import MIN_COMMIT_ROWS, Intake, recording_interpreter
from .journal import RawRow, export, open_journals, prepare_spool, spool_file, target_key
from .record_stats import RecorderStats, new_stats, summary
from .sinks import Row, Sink
from .tap import ROLES, Decoder, Tap

__all__ = ["ROLES", "Recorder", "RecorderStats", "summary"]

_logger = logging.getLogger("gridbus.historian.recorder")


class Recorder:
    def __init__(
        self,
        bus: Bus,
        sink: Sink,
        patterns: list[str],
        roles: list[str] | None = None,
        batch: int = 100,
        flush_interval: float = 1.0,
        max_buffer: int = 1_000_000,
        spool: str | Path | None = None,
        commit_interval: float = 0.05,
        exit_timeout: float = 10.0,
        queue: int = 100_000,
        log: Callable[[str], None] | None = None,
    ) -> None:
        problems = [
            text
            for bad, text in (
                (batch < 1, f"--batch must be >= 1, not {batch}"),
                (not flush_interval > 0, f"--flush-interval must be > 0, not {flush_interval}"),
                (max_buffer < batch, f"--max-buffer ({max_buffer}) must be >= --batch ({batch})"),
                (not commit_interval > 0, f"the commit interval must be > 0, not {commit_interval}"),
                (
                    not (exit_timeout >= 0 and math.isfinite(exit_timeout)),
                    f"--exit-timeout must be a finite number >= 0, not {exit_timeout}",
                ),
            )
            if bad
        ]
        if problems:
            raise GridbusError("; ".join(problems))
        self.bus, self.sink = bus, sink
        self.batch, self.flush_interval, self.max_buffer = batch, flush_interval, max_buffer
        self.exit_timeout = exit_timeout
        self.join_timeout = 5.0  # s a thread has to stop in, after stop_event
        self.log = log or _logger.warning
        self.started = time.time()  # samples older than this may be stored already
        self.spool = prepare_spool(spool)  # refuse before taking anything
        self.sink.check()
        self.key = target_key(sink.url)
        try:
            self.journal, self._leftovers = open_journals(self.spool, self.key)
        except BaseException:
            self.sink.close()
            raise
        try:
            self.tap = Tap(bus, patterns, roles, queue)
        except BaseException:
            self._close_journals()
            self.sink.close()
            raise
        self.decode = Decoder(bus.registry)
        self.stop_event = threading.Event()
        self.cursor = 0  # journal rows up to here are in the target
        self._cursor_known = False  # the target's mark has been read
        self.stats: RecorderStats = new_stats()
        self._down_since: float | None = None
        # the journal commits every commit_interval, or sooner once a batch waits
        commit_rows = max(batch, MIN_COMMIT_ROWS)
        self.intake = Intake(self.tap, self.journal, self.stats, max_buffer, commit_interval, commit_rows, self.log)

    @property
    def readers(self) -> list[str]:
        return self.tap.topics

    # -- taking from the bus into the journal (see .intake) --------------------------------
    @property
    def pending(self) -> deque[RawRow]:
        return self.intake.pending

    def take_once(self) -> int:
        return self.intake.take_once()

    def commit(self) -> bool:
        """Group commit: every row taken so far into the journal; False if the journal refused."""
        return self.intake.commit()

    def forward_from_memory(self, size: int) -> bool:
        """While the journal cannot be written, rows go straight from memory to the database."""
        rows = self.intake.pop(size)
        if not rows:
            return True
        try:
            decoded = self._new_only(self._decoded(rows))
            self.sink.write(decoded)
        except BaseException as exc:  # whatever went wrong, the rows wait in memory, first in line
            self.intake.put_back(rows)
            if not isinstance(exc, SinkUnavailable):
                raise
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.log(f"record: database unavailable too, rows wait in memory: {exc}")
            return False
        self.intake.delivered(rows)
        self.stats["written"] += len(decoded)
        self.stats["batches"] += 1
        return True

    # -- forwarding the journal to the target -------------------------------------------
    def _forward_loop(self) -> None:
        """Forward as soon as a commit brings a batch (woken by the committer, no polling)."""
        last_write = time.monotonic()
        while not self.stop_event.is_set():
            try:
                waiting = self._backlog()
                if not waiting and self.intake.failing and self.pending:
                    if not self.forward_from_memory(self.batch):
                        self.stop_event.wait(self._backoff())
                elif waiting >= self.batch or (waiting and time.monotonic() - last_write >= self.flush_interval):
                    if self.forward_batch(self.batch):
                        last_write = time.monotonic()
                    else:
                        self.stop_event.wait(self._backoff())
                else:
                    self.intake.committed.wait(0.05)
                    self.intake.committed.clear()
            except Exception:  # the rows stay in the journal
                _logger.exception("record: forwarding the journal failed; trying again")
                self.stop_event.wait(1.0)

    def _backlog(self) -> int:
        newest = self.journal._forward.execute("SELECT max(seq) FROM rows").fetchone()[0] or 0
        backlog = max(0, newest - self.cursor)
        if backlog > self.stats["max_buffered"]:
            self.stats["max_buffered"] = backlog
        return backlog

    def forward_batch(self, size: int) -> bool:
        """Write the next ``size`` journal rows with their mark; True when written (or none)."""
        try:
            self._learn_cursor()
            batch = self.journal.after(self.cursor, size)
            if not batch:
                return True
            rows = self._new_only(self._decoded([row for _seq, row in batch]))
            self.sink.write(rows, (self.journal.id, batch[-1][0]))
        except SinkUnavailable as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.log(f"record: database unavailable, rows wait in the journal {self.journal.path}: {exc}")
            return False
        self.cursor = batch[-1][0]
        self.stats["written"] += len(rows)
        self.stats["batches"] += 1
        if self._down_since is not None:
            self.stats["reconnects"] += 1
            self.log(f"record: database back after {time.monotonic() - self._down_since:.1f} s; writing the journal")
            self._down_since = None
        return True

    def _learn_cursor(self) -> None:
        """Start after the last row the target holds (its mark), never before: no row twice."""
        if not self._cursor_known:
            self.cursor = max(self.sink.forwarded(self.journal.id), self.journal.settled)
            self._cursor_known = True

    def _decoded(self, raw: list[RawRow]) -> list[Row]:
        """Database rows of journal rows; one that does not decode is counted and logged, not stored."""
        rows = []
        for item in raw:
            try:
                rows.append(self.decode(item))
            except GridbusError as exc:
                self.stats["undecodable"] += 1
                if self.stats["undecodable"] == 1:
                    self.log(f"record: {exc}; such samples are counted as lost")
        return rows

    def _new_only(self, rows: list[Row]) -> list[Row]:
        """Rows without the samples the target already has (see :mod:`.dedupe`); skips are counted."""
        fresh = unstored(rows, self.started, self.sink)
        self.stats["duplicates_skipped"] += len(rows) - len(fresh)
        return fresh

    def _settle(self) -> None:
        """Drop forwarded rows; under ``journal_lock``, as it writes on the committer's connection."""
        try:
            with self.intake.journal_lock:
                if self._cursor_known and self.cursor > self.journal.settled:
                    self.journal.settle(self.cursor)
        except sqlite3.Error:
            pass  # settling later is as good

    def _backoff(self) -> float:
        down = time.monotonic() - (self._down_since or time.monotonic())
        return min(2.0, 0.1 + down / 5)

    # -- start: journals of earlier runs ------------------------------------------------
    def _recover(self) -> None:
        """Forward what earlier runs journaled and the target lacks (this journal, then leftovers)."""
        self._learn_cursor()
        mine = self.journal.count_after(self.cursor)
        if mine:
            self.log(f"record: {mine} rows of an earlier run wait in {self.journal.path}; forwarding them")
        self.stats["recovered"] += mine
        for other in self._leftovers:
            try:
                cursor = max(self.sink.forwarded(other.id), other.settled)
                count = other.count_after(cursor)
                self.log(f"record: {count} rows of an earlier run wait in {other.path}; forwarding them")
                while True:
                    batch = other.after(cursor, max(self.batch, 1000))
                    if not batch:
                        break
                    rows = self._new_only(self._decoded([r for _s, r in batch]))
                    self.sink.write(rows, (other.id, batch[-1][0]))
                    cursor = batch[-1][0]
                    self.stats["written"] += len(rows)
                    self.stats["recovered"] += len(batch)
                other.settle(cursor)
                other.close(remove=True)
            except (SinkUnavailable, sqlite3.Error) as exc:
                self.log(f"record: {other.path} stays for the next start: {exc}")
                other.close()
        self._leftovers = []

    # -- running ------------------------------------------------------------------------
    def run(self, duration: float | None = None) -> RecorderStats:
        try:
            self._recover()
        except SinkUnavailable as exc:
            self.log(f"record: database unavailable, journaled rows wait: {exc}")
        threads = [
            threading.Thread(target=self.intake.take_loop, args=(self.stop_event,), name="gridbus-record-take"),
            threading.Thread(
                target=self.intake.commit_loop, args=(self.stop_event, self._settle), name="gridbus-record-commit"
            ),
            threading.Thread(target=self._forward_loop, name="gridbus-record-forward"),
        ]
        started: list[threading.Thread] = []
        with recording_interpreter():
            try:
                for thread in threads:
                    thread.daemon = True
                    thread.start()
                    started.append(thread)
                deadline = None if duration is None else time.monotonic() + duration
                while not self.stop_event.is_set() and (deadline is None or time.monotonic() < deadline):
                    self.stop_event.wait(0.1)
            finally:
                self.stop_event.set()
                self.intake.enough.set()  # the committer's normal wait is on enough, for commit_interval
                for thread in started:
                    thread.join(timeout=self.join_timeout)
                alive = [thread.name for thread in started if thread.is_alive()]
                if alive:
                    self._abandon(alive)
                else:
                    self.take_once()
                    self.commit()
                    self._finish()
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()

    def _finish(self) -> None:
        """Forward the rest; spool what the database refuses; count what is lost."""
        deadline = time.monotonic() + self.exit_timeout
        while (self._backlog() or self.pending) and time.monotonic() < deadline:
            if self._backlog():
                done = self.forward_batch(max(self.batch, 1000))
            elif self.commit():
                continue
            else:
                done = self.forward_from_memory(max(self.batch, 1000))
            if not done:
                time.sleep(min(self._backoff(), max(0.0, deadline - time.monotonic())))
        self._settle()
        self._spool_rest()
        self._count_losses()
        self.sink.close()

    def _count_losses(self) -> None:
        losses = self.tap.losses()
        self.stats["dds_lost"], self.stats["dds_rejected"] = losses["dds_lost"], losses["dds_rejected"]
        self.stats["lost"] += (
            self.stats["dropped"] + self.stats["dds_lost"] + self.stats["dds_rejected"] + self.stats["undecodable"]
        )

    def _abandon(self, alive: list[str]) -> None:
        """A thread did not stop: finishing beside it would break the order and share its connections.

        So nothing more is taken, committed, settled, forwarded or closed here:
        the journal keeps its rows for the next start; rows still in memory
        (waiting, or held by the stuck thread in a commit or a database write)
        are counted as lost: some may yet reach the journal or the database.
        """
        in_memory = self.intake.in_memory()
        self.log(
            f"record: {', '.join(alive)} did not stop within {self.join_timeout:g} s; the journal's rows stay in "
            f"{self.journal.path} for the next start with this --db, {in_memory} rows in memory are counted as lost"
        )
        try:
            self.stats["left_in_journal"] = self.journal.count_after(self.cursor)
        except sqlite3.Error:
            pass
        self.stats["lost"] += in_memory
        self._count_losses()

    def _spool_rest(self) -> None:
        try:
            waiting = self.journal.count_after(self.cursor)
        except sqlite3.Error:
            waiting = 0
        in_memory = list(self.pending)
        if not waiting and not in_memory:
            self.journal.close(remove=True)
            return
        path = spool_file(self.spool, self.key)
        newest = [self.cursor]

        def chunks() -> Iterator[list[Row]]:
            cursor = self.cursor
            while batch := self.journal.after(cursor, 10_000):
                cursor = newest[0] = batch[-1][0]
                yield self._decoded([r for _s, r in batch])
            if in_memory:
                yield self._decoded(in_memory)

        try:
            count = export(chunks(), path)
        except (OSError, GridbusError, sqlite3.Error) as exc:
            self.stats["left_in_journal"] = waiting
            self.stats["lost"] += len(in_memory)
            self.log(
                f"record: the database refused {waiting + len(in_memory)} rows and the spool directory "
                f"too ({exc}); {waiting} stay in {self.journal.path} for the next start with this --db, "
                f"{len(in_memory)} are lost"
            )
            self.journal.close()
            return
        self.stats["spooled"] = count
        self.stats["spool_file"] = str(path)
        self.pending.clear()
        self.log(f"record: the database refused {count} rows; saved them to {path}")
        try:
            self.journal.settle(newest[0])
            self.journal.close(remove=True)
        except sqlite3.Error:
            self.journal.close()

    def _close_journals(self) -> None:
        for journal in (self.journal, *self._leftovers):
            journal.close(remove=journal.count_after(0) == 0)
