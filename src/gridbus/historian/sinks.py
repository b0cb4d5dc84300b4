"""Where recorded samples go: SQLite (embedded default), PostgreSQL, CSV.

Every sink stores the same row (see README, "Historian schema"):

    object_id TEXT, topic TEXT, source_time DOUBLE, reception_time DOUBLE,
    created_time DOUBLE, fields JSON

Times are UTC seconds.  ``created_time`` is when the row was written: the
database server's clock for PostgreSQL (``clock_timestamp()``, per row, as the
PMU seed measures it), the recorder's clock at the write for SQLite and CSV.
A sink raises :class:`SinkUnavailable` when it cannot write; the recorder keeps
the batch and tries again, so nothing accepted is lost.
"""
from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from ..errors import GridbusError

Row = tuple[str, str, float, float, str]          # object_id, topic, source, reception, fields JSON
StoredRow = tuple[str, str, float, float, float, str]

COLUMNS = ("object_id", "topic", "source_time", "reception_time", "created_time", "fields")


class SinkUnavailable(GridbusError):
    """The database cannot take rows right now (down, restarting, disk full...)."""


class Sink(Protocol):
    url: str

    def connect(self) -> None: ...
    def write(self, rows: list[Row]) -> None: ...
    def close(self) -> None: ...


def open_sink(url: str) -> "Sink":
    """``postgresql://...`` → PostgreSQL; ``*.csv`` or ``csv:PATH`` → CSV; else a SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresSink(url)
    if url.startswith("csv:") or url.endswith(".csv"):
        return CsvSink(url.removeprefix("csv:"))
    return SqliteSink(url.removeprefix("sqlite:///").removeprefix("sqlite:"))


class SqliteSink:
    SCHEMA = """
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
    """

    def __init__(self, path: str) -> None:
        self.url = path
        self.db: sqlite3.Connection | None = None

    def connect(self) -> None:
        try:
            self.db = sqlite3.connect(self.url, check_same_thread=False)   # one writer thread at a time
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(self.SCHEMA)
        except sqlite3.Error as exc:
            self.db = None
            raise SinkUnavailable(f"{self.url}: {exc}") from None

    def write(self, rows: list[Row]) -> None:
        if self.db is None:
            self.connect()
        created = time.time()
        try:
            with self.db:
                self.db.executemany(
                    "INSERT INTO samples (object_id, topic, source_time, reception_time, created_time, fields) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [(o, t, s, r, created, f) for o, t, s, r, f in rows])
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"{self.url}: {exc}") from None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


class PostgresSink:
    SCHEMA = """
        CREATE TABLE IF NOT EXISTS samples (
            id BIGSERIAL PRIMARY KEY,
            object_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            source_time DOUBLE PRECISION NOT NULL,
            reception_time DOUBLE PRECISION NOT NULL,
            created_time DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
            fields JSONB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS samples_series ON samples (topic, object_id, source_time);
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = None

    def connect(self) -> None:
        import psycopg
        try:
            self.conn = psycopg.connect(self.url, connect_timeout=3)
            with self.conn.transaction():
                self.conn.execute(self.SCHEMA)
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(f"{_safe(self.url)}: {str(exc).strip().splitlines()[0]}") from None

    def write(self, rows: list[Row]) -> None:
        import psycopg
        if self.conn is None or self.conn.closed:
            self.connect()
        try:
            with self.conn.transaction():
                with self.conn.cursor() as cur:
                    with cur.copy("COPY samples (object_id, topic, source_time, reception_time, fields) "
                                  "FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(f"{_safe(self.url)}: {str(exc).strip().splitlines()[0]}") from None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


class CsvSink:
    def __init__(self, path: str) -> None:
        self.url = path
        self.handle = None

    def connect(self) -> None:
        try:
            new = not Path(self.url).exists() or Path(self.url).stat().st_size == 0
            self.handle = open(self.url, "a", newline="")
            if new:
                csv.writer(self.handle).writerow(COLUMNS)
                self.handle.flush()
        except OSError as exc:
            raise SinkUnavailable(f"{self.url}: {exc.strerror}") from None

    def write(self, rows: list[Row]) -> None:
        if self.handle is None:
            self.connect()
        created = time.time()
        try:
            writer = csv.writer(self.handle)
            for o, t, s, r, f in rows:
                writer.writerow((o, t, repr(s), repr(r), repr(created), f))
            self.handle.flush()
        except OSError as exc:
            raise SinkUnavailable(f"{self.url}: {exc.strerror}") from None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _safe(url: str) -> str:
    """A connection URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


# -- reading back -------------------------------------------------------------------------
def read_rows(url: str, topic: str | None = None, object_id: str | None = None,
              start: float | None = None, end: float | None = None) -> Iterator[StoredRow]:
    """Stored rows in source-time order, optionally of one topic / object / time span."""
    where, args = [], []
    for column, value, op in (("topic", topic, "="), ("object_id", object_id, "="),
                              ("source_time", start, ">="), ("source_time", end, "<=")):
        if value is not None:
            where.append(f"{column} {op} %s")
            args.append(value)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    sql = f"SELECT object_id, topic, source_time, reception_time, created_time, fields FROM samples{clause} " \
          f"ORDER BY source_time"
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        with psycopg.connect(url) as conn:
            for o, t, s, r, c, f in conn.execute(sql, args):
                yield o, t, s, r, c, f if isinstance(f, str) else json.dumps(f)
    elif url.startswith("csv:") or url.endswith(".csv"):
        yield from _csv_rows(url.removeprefix("csv:"), topic, object_id, start, end)
    else:
        path = url.removeprefix("sqlite:///").removeprefix("sqlite:")
        if not Path(path).exists():
            raise GridbusError(f"{path}: no such database")
        db = sqlite3.connect(path)
        try:
            yield from db.execute(sql.replace("%s", "?"), args)
        finally:
            db.close()


def _csv_rows(path: str, topic, object_id, start, end) -> Iterable[StoredRow]:
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise GridbusError(f"{path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise GridbusError(f"{path}:1: not a gridbus recording (expected columns {', '.join(COLUMNS)})")
        rows = []
        for line, record in enumerate(reader, start=2):
            try:
                o, t, s, r, c, f = record
                row = (o, t, float(s), float(r), float(c), f)
            except ValueError:
                raise GridbusError(f"{path}:{line}: malformed row") from None
            if (topic is None or t == topic) and (object_id is None or o == object_id) and \
                    (start is None or row[2] >= start) and (end is None or row[2] <= end):
                rows.append(row)
    rows.sort(key=lambda row: row[2])
    return rows
