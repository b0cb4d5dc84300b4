"""The recorder's shutdown when one of its threads does not stop, or does not start."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from helpers import wait_until

from gridbus import Bus
from gridbus.historian.journal import RawRow
from gridbus.historian.recorder import Recorder, summary
from gridbus.historian.sinks import open_sink


def _rows(n: int) -> list[RawRow]:
    return [("Generator_Measurement", 1000.0 + i, 1000.5 + i, bytes([i]) * 40) for i in range(n)]


def _recorder(bus: Bus, tmp_path: Path, said: list[str]) -> Recorder:
    return Recorder(bus, open_sink(str(tmp_path / "h.sqlite")), ["G"], spool=tmp_path / "spool", log=said.append)


def _thread(name: str) -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == name), None)


def test_a_thread_that_does_not_stop_leaves_the_journal_to_it_and_the_next_start(domain, partition, tmp_path):
    said: list[str] = []
    with Bus(domain, partition=partition) as bus:
        recorder = _recorder(bus, tmp_path, said)
        recorder.join_timeout = 0.5
        recorder.pending.extend(_rows(5))
        blocker = sqlite3.connect(recorder.journal.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the committer's append waits for SQLite's write lock (10 s)
        intake = recorder.intake

        def stop_once_the_committer_waits() -> None:
            if wait_until(lambda: not intake.pending and intake.journal_lock.locked()):
                recorder.stop()

        stopper = threading.Thread(target=stop_once_the_committer_waits)
        stopper.start()
        try:
            stats = recorder.run()
            committer = _thread("gridbus-record-commit")
            assert committer is not None and committer.is_alive()  # run() returned beside it ...
            assert any("gridbus-record-commit did not stop" in line for line in said)
            assert not recorder.pending  # ... and took nothing more
            assert stats["left_in_journal"] == 0 and stats["written"] == 0
            # the 5 rows the stuck commit holds are in no table: counted, reported, exit status 1
            assert any("5 rows in memory are counted as lost" in line for line in said)
            assert stats["lost"] == 5
            missing = summary(stats, recorder.sink.url)
            assert missing is not None  # `gridbus record` exits 1 when there is a summary line
            assert "5 lost from memory" in missing and "5 lost in all" in missing
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            stopper.join(timeout=20)
        committer = _thread("gridbus-record-commit")
        assert committer is None or wait_until(lambda: not committer.is_alive())
        # the committer finished its commit: the rows are in the journal, in order, for the next start
        assert [row for _seq, row in recorder.journal.after(0, 100)] == _rows(5)
        assert recorder.journal.settled == 0
        recorder.journal.close()
        recorder.sink.close()


def test_a_thread_that_cannot_start_stops_the_others_and_closes_everything(domain, partition, tmp_path, monkeypatch):
    said: list[str] = []
    start = threading.Thread.start

    def start_unless_forwarder(thread: threading.Thread) -> None:
        if thread.name == "gridbus-record-forward":
            raise RuntimeError("can't start new thread")
        start(thread)

    with Bus(domain, partition=partition) as bus:
        recorder = _recorder(bus, tmp_path, said)
        recorder.pending.extend(_rows(5))
        monkeypatch.setattr(threading.Thread, "start", start_unless_forwarder)
        with pytest.raises(RuntimeError, match="can't start new thread"):
            recorder.run()
        monkeypatch.undo()
        for name in ("gridbus-record-take", "gridbus-record-commit"):
            assert _thread(name) is None  # they saw stop_event and were joined
        # the (made-up) rows went through the journal and the forwarder's decoding on the way out ...
        assert recorder.stats["undecodable"] == 5 and recorder.stats["lost"] == 5
        assert not recorder.journal.path.exists()  # ... and the journal was settled and removed


def test_stopping_does_not_wait_for_the_commit_interval(domain, partition, tmp_path):
    said: list[str] = []
    with Bus(domain, partition=partition) as bus, Bus(domain, partition=partition) as other:
        sink = open_sink(str(tmp_path / "h.sqlite"))
        recorder = Recorder(bus, sink, ["CTRL"], spool=tmp_path / "spool", commit_interval=600, log=said.append)
        recorder.join_timeout = 2.0  # a committer waiting out its 600 s would be abandoned
        stats: list[dict[str, object]] = []
        runner = threading.Thread(target=lambda: stats.append(dict(recorder.run())))
        runner.start()
        try:
            writer = other.writer("CTRL_h1", "State")
            assert writer.wait_for_readers(1)
            for n in range(10):  # fewer than a batch: only the interval (600 s) or stopping commits them
                writer.write(stage="STEP", reason=str(n))
            assert wait_until(lambda: recorder.stats["received"] == 10)
        finally:
            recorder.stop()
            runner.join(timeout=30)
        assert not runner.is_alive()
    assert not any("did not stop" in line for line in said)
    assert stats[0]["written"] == 10 and stats[0]["lost"] == 0 and summary(stats[0], sink.url) is None
    with sqlite3.connect(tmp_path / "h.sqlite") as conn:
        reasons = [row[0] for row in conn.execute("SELECT fields FROM samples ORDER BY source_time")]
    assert sorted(int(json.loads(fields)["reason"]) for fields in reasons) == list(range(10))
