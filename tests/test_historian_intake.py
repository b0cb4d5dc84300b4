"""The recorder's intake: taking into memory, the journal's group commit on its own thread, settling."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import wait_until

from gridbus import Bus
from gridbus.historian.intake import MAX_RETRY, SWITCH_INTERVAL, Intake, recording_interpreter
from gridbus.historian.journal import Journal, RawRow
from gridbus.historian.record_stats import new_stats
from gridbus.historian.tap import Tap


def _rows(n: int, first: int = 0) -> list[RawRow]:
    return [("Generator_Measurement", 1000.0 + i, 1000.5 + i, bytes([i % 256]) * 40) for i in range(first, first + n)]


@contextmanager
def _committing(intake: Intake, settle: Callable[[], None] = lambda: None) -> Iterator[None]:
    """The committer on its own thread, as the recorder runs it; stopped and joined on leaving."""
    stop = threading.Event()
    committer = threading.Thread(target=intake.commit_loop, args=(stop, settle))
    committer.start()
    try:
        yield
    finally:
        stop.set()  # a back-off waits on stop, the normal wait on enough
        intake.enough.set()
        committer.join(timeout=10)
    assert not committer.is_alive()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(tmp_path / "x.0.journal")
    yield journal
    journal.close(remove=True)


@pytest.fixture
def bus(domain: int, partition: str) -> Iterator[Bus]:
    with Bus(domain, partition=partition) as bus:
        yield bus


def _intake(bus: Bus, journal: Journal, commit_interval: float, commit_rows: int, said: list[str]) -> Intake:
    tap = Tap(bus, ["G"], ["Measurement"], 1000)
    return Intake(tap, journal, new_stats(), 10_000, commit_interval, commit_rows, said.append)


def test_a_batch_waiting_is_committed_before_the_interval_and_wakes_the_forwarder(domain, partition, tmp_path):
    journal = Journal(tmp_path / "x.0.journal")
    try:
        with Bus(domain, partition=partition) as bus:
            intake = _intake(bus, journal, commit_interval=600.0, commit_rows=100, said=[])
            with _committing(intake):
                intake.pending.extend(_rows(150))
                assert journal.count_after(0) == 0  # nothing commits by itself for 600 s
                intake.enough.set()  # what the taker does once commit_rows wait
                assert wait_until(lambda: journal.count_after(0) == 150)
                assert intake.committed.is_set()  # the forwarder is woken, it does not poll
                assert not intake.pending
                assert [row for _seq, row in journal.after(0, 1000)] == _rows(150)
    finally:
        journal.close(remove=True)


def test_the_taker_hands_dds_samples_over_and_asks_for_a_commit(domain, partition, tmp_path):
    journal = Journal(tmp_path / "x.0.journal")
    stop = threading.Event()
    try:
        with Bus(domain, partition=partition) as bus:
            intake = _intake(bus, journal, commit_interval=600.0, commit_rows=20, said=[])
            taker = threading.Thread(target=intake.take_loop, args=(stop,))
            taker.start()
            try:
                writer = bus.writer("G_1")
                writer.wait_for_readers(1, timeout=10)
                for n in range(30):
                    writer.write(writer.build(f=60.0, P=float(n)))
                assert wait_until(intake.enough.is_set)
                assert wait_until(lambda: intake.stats["received"] == 30)
            finally:
                stop.set()
                taker.join(timeout=10)
            assert journal.count_after(0) == 0  # the taker never writes the journal itself
            assert len(intake.pending) == 30
            assert intake.commit()
            assert journal.count_after(0) == 30
    finally:
        journal.close(remove=True)


def test_a_refused_commit_keeps_every_row_in_order_before_newer_ones(domain, partition, tmp_path):
    journal = Journal(tmp_path / "x.0.journal")
    said: list[str] = []
    try:
        with Bus(domain, partition=partition) as bus:
            intake = _intake(bus, journal, commit_interval=0.05, commit_rows=100, said=said)
            intake.pending.extend(_rows(5))
            journal._append.execute("PRAGMA query_only=1")  # SQLite itself refuses the writes
            assert not intake.commit()
            assert intake.failing and "cannot be written" in said[0]
            intake.pending.extend(_rows(3, first=5))  # taken meanwhile
            assert list(intake.pending) == _rows(8)
            popped = intake.pop(4)  # to the database from memory ...
            assert popped == _rows(4)
            intake.put_back(popped)  # ... which refused them too
            assert list(intake.pending) == _rows(8)
            journal._append.execute("PRAGMA query_only=0")
            assert intake.commit()
            assert not intake.failing and said[-1] == "record: journal writable again"
            assert [row for _seq, row in journal.after(0, 100)] == _rows(8)
    finally:
        journal.close(remove=True)


def _counting_appends(journal: Journal) -> list[int]:
    """Count the journal's commit attempts (each still goes to SQLite)."""
    attempts = [0]
    append = journal.append

    def counted(rows: list[RawRow]) -> None:
        attempts[0] += 1
        append(rows)

    journal.append = counted  # type: ignore[method-assign]
    return attempts


def test_a_refusing_journal_is_retried_after_a_back_off_not_on_every_take(bus: Bus, journal: Journal) -> None:
    intake = _intake(bus, journal, commit_interval=600.0, commit_rows=100, said=[])
    attempts = _counting_appends(journal)
    journal._append.execute("PRAGMA query_only=1")
    with _committing(intake):
        intake.pending.extend(_rows(150))
        intake.enough.set()
        assert wait_until(lambda: intake.failing)
        assert attempts[0] == 1
        intake.pending.extend(_rows(150, first=150))
        intake.enough.set()  # what the taker does after every take while pending only grows
        # the back-off is commit_interval (600 s): a committer retrying on `enough` would do so now
        assert not wait_until(lambda: attempts[0] > 1 or not intake.enough.is_set(), timeout=1.0)
        assert intake.pop(2) == _rows(2)  # journal_lock is free for the rows' way to the database
    assert attempts[0] == 1  # the back-off waits on stop too: the committer ended without a retry


def test_the_back_off_doubles_up_to_a_second_and_ends_when_the_journal_takes_rows(bus: Bus, journal: Journal) -> None:
    stop = threading.Event()
    intake = _intake(bus, journal, commit_interval=0.001, commit_rows=100, said=[])
    intake.failing = True
    for _ in range(5):
        assert intake._wait_for_commit(stop)
    assert intake.retry == pytest.approx(0.032)
    intake.retry = 0.6
    assert intake._wait_for_commit(stop)
    assert intake.retry == MAX_RETRY
    stop.set()
    assert not intake._wait_for_commit(stop)  # stopping ends a back-off
    stop.clear()
    journal._append.execute("PRAGMA query_only=1")
    intake.pending.extend(_rows(5))
    assert not intake.commit()
    intake.retry = intake.commit_interval
    with _committing(intake):
        journal._append.execute("PRAGMA query_only=0")  # writable again: retried without `enough`
        assert wait_until(lambda: journal.count_after(0) == 5)
        assert not intake.failing
    assert intake._wait_for_commit(stop) and intake.retry == intake.commit_interval


def test_rows_stay_in_memory_when_the_commit_fails_with_any_error(bus: Bus, journal: Journal) -> None:
    intake = _intake(bus, journal, commit_interval=0.05, commit_rows=100, said=[])
    intake.pending.extend(_rows(5))
    append = journal.append

    def out_of_memory(rows: list[RawRow]) -> None:
        raise MemoryError("no room for the batch")

    journal.append = out_of_memory  # type: ignore[method-assign]
    with pytest.raises(MemoryError):
        intake.commit()
    assert not intake.failing  # not the journal refusing: raised for the committer's log
    intake.pending.extend(_rows(3, first=5))
    assert list(intake.pending) == _rows(8)
    journal.append = append  # type: ignore[method-assign]
    assert intake.commit()
    assert [row for _seq, row in journal.after(0, 100)] == _rows(8)


def test_settling_writes_on_the_appending_connection(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "x.0.journal")
    try:
        journal.append(_rows(10))
        reading = journal._forward.execute("SELECT seq FROM rows ORDER BY seq")
        assert reading.fetchone() == (1,)  # the forwarder's connection is in the middle of a read
        journal.settle(6)  # the committer's thread, while the forwarder reads
        journal.append(_rows(2, first=10))
        assert reading.fetchone() == (2,)  # its snapshot is unchanged
        reading.close()
        assert journal.settled == 6
        assert [seq for seq, _row in journal.after(0, 100)] == [7, 8, 9, 10, 11, 12]
    finally:
        journal.close(remove=True)


def test_the_heap_is_frozen_and_the_switch_interval_short_only_while_recording() -> None:
    interval = sys.getswitchinterval()
    with recording_interpreter():
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == SWITCH_INTERVAL < interval
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == interval


class _RecordingLock:
    """``journal_lock`` that notes ``failing`` each time it is released (what pop would find)."""

    def __init__(self, intake: Intake) -> None:
        self.intake, self.inner, self.failing_at_release = intake, threading.Lock(), list[bool]()

    def __enter__(self) -> None:
        self.inner.acquire()

    def __exit__(self, *exc: object) -> None:
        self.failing_at_release.append(self.intake.failing)
        self.inner.release()


def test_rows_taken_during_the_recovering_commit_go_to_the_database_through_the_journal(
    bus: Bus, journal: Journal
) -> None:
    intake = _intake(bus, journal, commit_interval=0.05, commit_rows=100, said=[])
    intake.pending.extend(_rows(5))  # R1
    journal._append.execute("PRAGMA query_only=1")
    assert not intake.commit() and intake.failing
    journal._append.execute("PRAGMA query_only=0")
    append = journal.append

    def taken_during_the_append(rows: list[RawRow]) -> None:
        append(rows)
        intake.pending.extend(_rows(3, first=5))  # R2, taken while the append holds journal_lock

    journal.append = taken_during_the_append  # type: ignore[method-assign]
    lock = _RecordingLock(intake)
    intake.journal_lock = lock  # type: ignore[assignment]
    assert intake.commit()
    assert lock.failing_at_release == [False]  # a pop waiting for the lock finds the journal writable ...
    assert intake.pop(100) == []  # ... and leaves R2 to the journal, behind R1
    journal.append = append  # type: ignore[method-assign]
    assert intake.commit()
    assert [row for _seq, row in journal.after(0, 100)] == _rows(8)


def test_no_commit_while_popped_rows_may_come_back(bus: Bus, journal: Journal) -> None:
    intake = _intake(bus, journal, commit_interval=0.05, commit_rows=100, said=[])
    intake.pending.extend(_rows(5))
    journal._append.execute("PRAGMA query_only=1")
    assert not intake.commit()
    popped = intake.pop(4)  # on their way to the database
    assert popped == _rows(4) and intake.pop(4) == []  # one batch at a time
    intake.pending.extend(_rows(3, first=5))  # taken meanwhile
    journal._append.execute("PRAGMA query_only=0")
    assert not intake.commit()  # the journal is writable, but rows 0-3 may come back first
    assert journal.count_after(0) == 0 and intake.in_memory() == 8
    intake.put_back(popped)  # the database refused them
    assert intake.commit()
    assert [row for _seq, row in journal.after(0, 100)] == _rows(8)
    # and when the database takes them, the journal goes on after them
    intake.pending.extend(_rows(2, first=8))
    journal._append.execute("PRAGMA query_only=1")
    assert not intake.commit()
    popped = intake.pop(1)
    intake.pending.extend(_rows(1, first=10))
    journal._append.execute("PRAGMA query_only=0")
    assert not intake.commit()
    intake.delivered(popped)
    assert intake.commit() and intake.in_memory() == 0
    assert [row for _seq, row in journal.after(0, 100)] == _rows(8) + _rows(3, first=8)[1:]
