"""The WAL of the SQLite sink and of the journal is checkpointed by a thread, not inside commits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from gridbus.historian.checkpoint import BACKSTOP_PAGES, Checkpointer, defer_checkpoints
from gridbus.historian.journal import Journal
from gridbus.historian.sinks import SqliteSink, read_rows


def _rows(n: int) -> list[tuple[str, str, float, float, str]]:
    return [(f"G_{i % 10}", "Generator_Measurement", 1000.0 + i, 1000.5 + i, '{"P":' + str(i) + "}") for i in range(n)]


def _wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_sink_commits_do_not_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    sink = SqliteSink(str(path))
    sink.check()
    try:
        assert sink.db is not None
        assert sink.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        empty = path.stat().st_size
        for start in range(0, 4000, 1000):
            sink.write(_rows(4000)[start : start + 1000], ("j", start + 1000))
        # the rows reach the database file itself while the sink is open: only the thread copies them
        assert _wait_until(lambda: path.stat().st_size > empty + 100_000)
        assert sink.forwarded("j") == 4000
    finally:
        sink.close()
    assert len(list(read_rows(str(path), "Generator_Measurement"))) == 4000


def test_journal_checkpoints_beside_its_writers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "x.0.journal")
    try:
        empty = journal.path.stat().st_size
        journal.append([("Generator_Measurement", 1.0 + i, 2.0 + i, bytes(200)) for i in range(3000)])
        assert _wait_until(lambda: journal.path.stat().st_size > empty + 300_000)
        assert journal.count_after(0) == 3000
    finally:
        journal.close(remove=True)
    assert not journal.path.exists()


def test_checkpointer_stops_and_a_missing_directory_is_only_logged(tmp_path: Path, caplog) -> None:
    db = sqlite3.connect(tmp_path / "a.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    defer_checkpoints(db, 100)
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 100
    db.close()
    checkpointer = Checkpointer(tmp_path / "nowhere" / "b.sqlite", interval=0.01)
    checkpointer.stop()
    assert not checkpointer._thread.is_alive()
    assert "cannot open it to checkpoint" in caplog.text
