"""The recorder's intake: taking into memory, the journal's group commit on its own thread, settling."""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path

from gridbus import Bus
from gridbus.historian.intake import SWITCH_INTERVAL, Intake, recording_interpreter
from gridbus.historian.journal import Journal, RawRow
from gridbus.historian.record_stats import new_stats
from gridbus.historian.tap import Tap


def _rows(n: int, first: int = 0) -> list[RawRow]:
    return [("Generator_Measurement", 1000.0 + i, 1000.5 + i, bytes([i % 256]) * 40) for i in range(first, first + n)]


def _wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _intake(bus: Bus, journal: Journal, commit_interval: float, commit_rows: int, said: list[str]) -> Intake:
    tap = Tap(bus, ["G"], ["Measurement"], 1000)
    return Intake(tap, journal, new_stats(), 10_000, commit_interval, commit_rows, said.append)


def test_a_batch_waiting_is_committed_before_the_interval_and_wakes_the_forwarder(domain, partition, tmp_path):
    journal = Journal(tmp_path / "x.0.journal")
    stop = threading.Event()
    settled: list[int] = []
    try:
        with Bus(domain, partition=partition) as bus:
            intake = _intake(bus, journal, commit_interval=600.0, commit_rows=100, said=[])
            committer = threading.Thread(target=intake.commit_loop, args=(stop, lambda: settled.append(1)))
            committer.start()
            try:
                intake.pending.extend(_rows(150))
                assert journal.count_after(0) == 0  # nothing commits by itself for 600 s
                intake.enough.set()  # what the taker does once commit_rows wait
                assert _wait_until(lambda: journal.count_after(0) == 150)
                assert intake.committed.is_set()  # the forwarder is woken, it does not poll
                assert not intake.pending
                assert [row for _seq, row in journal.after(0, 1000)] == _rows(150)
            finally:
                stop.set()
                intake.enough.set()
                committer.join(timeout=10)
            assert not committer.is_alive()
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
                assert _wait_until(intake.enough.is_set)
                assert _wait_until(lambda: intake.stats["received"] == 30)
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
