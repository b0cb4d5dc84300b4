"""From DDS into the journal in two threads, so that taking samples never waits for SQLite.

The *taker* only moves samples from the DDS readers (:mod:`.tap`) into
memory.  The *committer* group-commits what waits there into the journal
every ``commit_interval`` s, or sooner once ``commit_rows`` rows (a batch of
the forwarder's) wait, and then wakes the forwarder.  It is the journal's only
writer while the recorder runs: it also drops the rows the database holds
(*settling*), so the journal's writers never queue on SQLite's write lock.

Why (measured on 27 November 2026 at 33 k samples/s, batch 1000): with the
commit in the taker and settling in the forwarder, the taker spent a commit's
5-50 ms (busy handler sleeps included when both wrote at once) not taking;
a forwarded batch waited for 1000 committed rows, so the rows left over from
one 50 ms commit waited for the next; and the forwarder looked for new rows
every 10 ms.  Those waits, one after the other, made the row delay's median
about 70 ms.

What a ``kill -9`` loses is unchanged or less: rows taken but not yet
committed, at most ``commit_interval`` s of them (now often fewer, as a
commit also comes once ``commit_rows`` wait).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..steady import steady_loop
from .journal import Journal, RawRow
from .record_stats import RecorderStats
from .tap import Tap

_logger = logging.getLogger(__name__)

SETTLE_INTERVAL = 0.5  # s between deletions of forwarded rows from the journal
SWITCH_INTERVAL = 0.001  # s, see recording_interpreter
MIN_COMMIT_ROWS = 100  # a small --batch does not make every take a commit
MAX_RETRY = 1.0  # s, the longest wait between commits the journal refuses (unless commit_interval is longer)


class Intake:
    """Taken rows in memory (``pending``), the journal's group commit and its settling."""

    def __init__(
        self,
        tap: Tap,
        journal: Journal,
        stats: RecorderStats,
        max_buffer: int,
        commit_interval: float,
        commit_rows: int,
        log: Callable[[str], None],
    ) -> None:
        self.tap, self.journal, self.stats, self.log = tap, journal, stats, log
        self.max_buffer, self.commit_interval, self.commit_rows = max_buffer, commit_interval, commit_rows
        self.pending: deque[RawRow] = deque()  # taken, not yet in the journal
        self.lock = threading.Lock()  # guards pending; held only for deque operations
        self.journal_lock = threading.Lock()  # one writer of taken rows at a time (commit or memory forwarding)
        self.enough = threading.Event()  # commit_rows wait: commit now
        self.committed = threading.Event()  # new rows in the journal: the forwarder may go on
        self.failing = False  # the journal refused the last commit; guarded by journal_lock
        self.in_flight = 0  # rows out of pending in a commit's append (guarded by lock)
        self.popped = 0  # rows pop gave the database, neither delivered nor put back (guarded by lock)
        self.retry = commit_interval  # s until the next commit while failing; doubles up to MAX_RETRY

    # -- the taker ----------------------------------------------------------------------
    def take_loop(self, stop: threading.Event) -> None:
        """Take samples until ``stop``; never touches SQLite."""
        while not stop.is_set():
            try:
                self.tap.wait(0.01)
                if self.take_once() and len(self.pending) >= self.commit_rows:
                    self.enough.set()
            except Exception:  # keep recording; say what went wrong
                _logger.exception("record: taking samples failed; trying again")
                stop.wait(0.5)

    def take_once(self) -> int:
        """The samples DDS holds now into ``pending``; beyond ``max_buffer`` the oldest are dropped."""
        rows = self.tap.take()
        if rows:
            with self.lock:
                self.pending.extend(rows)
                self.stats["received"] += len(rows)
                overflow = len(self.pending) - self.max_buffer
                for _ in range(max(0, overflow)):
                    self.pending.popleft()
            if overflow > 0:
                self.stats["dropped"] += overflow
                self.log(
                    f"record: {overflow} oldest rows dropped: the journal cannot be written and "
                    f"{self.max_buffer} rows wait in memory"
                )
        return len(rows)

    # -- the committer ------------------------------------------------------------------
    def commit_loop(self, stop: threading.Event, settle: Callable[[], None]) -> None:
        """Commit every ``commit_interval`` s or once enough rows wait; ``settle`` every 0.5 s.

        While the journal refuses, ``enough`` is ignored and the committer backs
        off: the taker sets it after every take then (``pending`` only grows),
        and retrying at once made about 900 failed commits a second, each
        copying all of ``pending`` and holding ``journal_lock``, so that
        :meth:`pop` (the rows' way to the database meanwhile) seldom got it.
        """
        last_settle = time.monotonic()
        while not stop.is_set():
            try:
                if not self._wait_for_commit(stop):
                    break
                self.commit()
                if time.monotonic() - last_settle >= SETTLE_INTERVAL:
                    settle()
                    last_settle = time.monotonic()
            except Exception:  # the rows stay in memory and go with the next commit
                _logger.exception("record: committing the journal failed; trying again")
                stop.wait(0.5)

    def _wait_for_commit(self, stop: threading.Event) -> bool:
        """Until the next commit is due; False once ``stop`` is set during a back-off."""
        if self.failing:
            if stop.wait(self.retry):
                return False
            self.retry = min(self.retry * 2, max(self.commit_interval, MAX_RETRY))
        else:
            self.retry = self.commit_interval
            self.enough.wait(self.commit_interval)  # the recorder sets enough too when it stops
            if stop.is_set():
                return False
        self.enough.clear()
        return True

    def commit(self) -> bool:
        """Group commit: every row taken so far into the journal; False if the journal refused.

        The taker goes on taking while the journal writes: only the hand-over
        of the rows holds ``lock``; the rows out of ``pending`` meanwhile are
        counted in ``in_flight`` (a committer that never returns loses them).
        Whatever ``append`` raises, the rows go back in front of those taken
        meanwhile (the order stays); errors other than SQLite's are raised again.

        While rows :meth:`pop` gave the database are outstanding nothing is
        committed (False): put back, they must precede what is taken now.
        ``failing`` ends under ``journal_lock``, so that :meth:`pop` never
        takes a row newer than those just committed.
        """
        with self.journal_lock:
            with self.lock:
                if self.popped:
                    return False
                rows = list(self.pending)
                self.pending.clear()
                self.in_flight = len(rows)
            if not rows:
                return True
            try:
                self.journal.append(rows)
            except BaseException as exc:
                with self.lock:
                    self.pending.extendleft(reversed(rows))
                    self.in_flight = 0
                if not isinstance(exc, sqlite3.Error):
                    raise
                if not self.failing:
                    self.failing = True
                    self.log(
                        f"record: journal {self.journal.path} cannot be written ({exc}); rows go to the "
                        f"database from memory (at most {self.max_buffer} wait)"
                    )
                return False
            with self.lock:
                self.in_flight = 0
            recovered, self.failing = self.failing, False
        self.committed.set()
        if recovered:
            self.log("record: journal writable again")
        return True

    def in_memory(self) -> int:
        """Rows only in memory: waiting, in a commit's append, or on their way to the database."""
        with self.lock:
            return len(self.pending) + self.in_flight + self.popped

    # -- while the journal cannot be written --------------------------------------------
    def pop(self, size: int) -> list[RawRow]:
        """The oldest ``size`` rows in memory for the database, only while the journal refuses them.

        Once the journal takes rows again they go to the database from there,
        in order; popped rows hold back commits until :meth:`delivered` or
        :meth:`put_back` says what became of them.
        """
        with self.journal_lock, self.lock:
            if not self.failing or self.popped:
                return []
            rows = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
            self.popped = len(rows)
            return rows

    def delivered(self, rows: list[RawRow]) -> None:
        """Rows :meth:`pop` gave are in the database: commits may go on."""
        with self.lock:
            self.popped -= len(rows)

    def put_back(self, rows: list[RawRow]) -> None:
        """Rows :meth:`pop` gave that the database refused too: first in line again."""
        with self.journal_lock, self.lock:
            self.pending.extendleft(reversed(rows))
            self.popped -= len(rows)


@contextmanager
def recording_interpreter() -> Iterator[None]:
    """While recording: the start-up heap frozen (``gc.freeze``) and a 1 ms GIL switch interval.

    Measured at 33 k samples/s: a full collection of the start-up heap (the
    binding, numpy, the data model's types) came every few seconds and took
    47-61 ms, 130-150 ms on a loaded machine, holding the GIL: every thread of
    the recorder stood still.  Frozen, a full collection looks only at what
    was made since: 0.3-5 ms.

    ``executemany`` gives up the GIL for each row's step and must get it back
    for the next: beside a thread decoding (pure Python), each return waited
    for the switch interval (5 ms by default), so a 1000-row commit took
    47-68 ms instead of 8; at 1 ms, 15-49 ms.
    """
    with steady_loop(SWITCH_INTERVAL):
        yield
