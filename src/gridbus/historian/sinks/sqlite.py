"""The embedded default sink: a SQLite file in WAL mode, marks in the same transaction as the rows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ...errors import GridbusError, SinkRefused, SinkUnavailable
from ..checkpoint import Checkpointer, defer_checkpoints
from .base import MARKS_TABLE, Key, Mark, Row, create_private, file_problem, unwritable

SQLITE_COLUMNS = [
    ("id", "INTEGER"),
    ("object_id", "TEXT"),
    ("topic", "TEXT"),
    ("source_time", "REAL"),
    ("reception_time", "REAL"),
    ("created_time", "REAL"),
    ("fields", "TEXT"),
]


class SqliteSink:
    SCHEMA = f"""
        CREATE TABLE IF NOT EXISTS samples (
            id INTEGER PRIMARY KEY,
            object_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            source_time REAL NOT NULL,
            reception_time REAL NOT NULL,
            created_time REAL NOT NULL,
            fields TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS samples_series ON samples (topic, object_id, source_time);
        CREATE TABLE IF NOT EXISTS {MARKS_TABLE} (journal TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    """

    def __init__(self, path: str) -> None:
        self.url = path
        self.db: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None

    def check(self) -> None:
        """Refuse a file that cannot be opened or written, or holds another schema."""
        path = Path(self.url)
        problem = file_problem(path) or unwritable(path, "its -wal and -shm files")
        if problem:
            raise SinkRefused(f"{self.url}: {problem}")
        try:
            created = create_private(path)
        except OSError as exc:
            raise SinkRefused(f"{self.url}: cannot create it: {exc.strerror}") from None
        try:
            self.connect()
            self._check_schema()
            self._probe()
        except (sqlite3.Error, SinkUnavailable, SinkRefused) as exc:
            self.close()
            if created:
                path.unlink(missing_ok=True)
            raise SinkRefused(str(exc) if isinstance(exc, GridbusError) else f"{self.url}: {exc}") from None

    def _check_schema(self) -> None:
        db = self._connection()
        tables = {
            name: kind
            for name, kind in db.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        if "samples" not in tables:
            others = sorted(t for t in tables if not t.startswith("sqlite_") and t != MARKS_TABLE)
            if others:
                raise SinkRefused(
                    f"{self.url}: holds tables {', '.join(others)} but no samples table: not a gridbus recording"
                )
        else:
            columns = [(name, decl.upper()) for _cid, name, decl, *_ in db.execute("PRAGMA table_info(samples)")]
            if tables["samples"] != "table" or columns != SQLITE_COLUMNS:
                raise SinkRefused(
                    f"{self.url}: its samples table has another layout "
                    f"({', '.join(f'{n} {t}' for n, t in columns) or 'a view'}); gridbus writes "
                    f"({', '.join(f'{n} {t}' for n, t in SQLITE_COLUMNS)})"
                )
        if MARKS_TABLE in tables:
            mark_columns = [name for _cid, name, *_ in db.execute(f"PRAGMA table_info({MARKS_TABLE})")]
            if mark_columns != ["journal", "seq"]:
                raise SinkRefused(f"{self.url}: table {MARKS_TABLE} has another layout ({', '.join(mark_columns)})")
        with db:
            db.executescript(self.SCHEMA)

    def _probe(self) -> None:
        """Write a row and roll it back: proves the file, its directory and the disk take writes."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO samples (object_id, topic, source_time, reception_time, created_time, "
                "fields) VALUES ('probe', 'probe', 0, 0, 0, '{}')"
            )
        finally:
            db.execute("ROLLBACK")

    def connect(self) -> None:
        self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.db = db = sqlite3.connect(self.url, check_same_thread=False, isolation_level=None, timeout=5)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            defer_checkpoints(db)  # a thread of its own checkpoints: no commit waits for the fsyncs
        except sqlite3.Error as exc:
            self.close()
            raise SinkUnavailable(f"{self.url}: {exc}") from None
        self._checkpointer = Checkpointer(self.url)
        return db

    def _connection(self) -> sqlite3.Connection:
        """The connection, opened on first use or again after :meth:`close`."""
        return self.db if self.db is not None else self._connect()

    def write(self, rows: list[Row], mark: Mark | None = None) -> None:
        db = self._connection()
        created = time.time()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO samples (object_id, topic, source_time, reception_time, created_time, fields) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(o, t, s, r, created, f) for o, t, s, r, f in rows],
                )
                if mark is not None:
                    db.execute(f"INSERT OR REPLACE INTO {MARKS_TABLE} (journal, seq) VALUES (?, ?)", mark)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"{self.url}: {exc}") from None

    def forwarded(self, journal: str) -> int:
        db = self._connection()
        try:
            row = db.execute(f"SELECT seq FROM {MARKS_TABLE} WHERE journal = ?", (journal,)).fetchone()
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"{self.url}: {exc}") from None
        return int(row[0]) if row else 0

    def existing(self, keys: list[Key]) -> set[Key]:
        """Which of these samples the database already holds (the series index answers each)."""
        db = self._connection()
        try:
            return {
                key
                for key in keys
                if db.execute(
                    "SELECT 1 FROM samples WHERE topic = ? AND object_id = ? AND source_time = ? LIMIT 1",
                    (key[1], key[0], key[2]),
                ).fetchone()
            }
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"{self.url}: {exc}") from None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self.db is not None:
            self.db.close()
            self.db = None
