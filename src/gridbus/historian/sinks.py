"""Where recorded samples go: SQLite (embedded default), PostgreSQL, CSV.

Every sink stores the same row (see README, "Historian"):

    object_id TEXT, topic TEXT, source_time DOUBLE, reception_time DOUBLE,
    created_time DOUBLE, fields JSON

Times are UTC seconds.  ``created_time`` is when the row was written: the
database server's clock for PostgreSQL (``clock_timestamp()``, per row, as the
PMU seed measures it), the recorder's clock at the write for SQLite and CSV.

Before the recorder takes a sample, :meth:`check` opens the target, checks its
schema and proves it can write (a probe row, rolled back): a target it cannot
use is refused (:class:`SinkRefused`) instead of silently losing a run.
While running, a sink raises :class:`SinkUnavailable` when it cannot write;
the rows stay in the recorder's journal and are written again.

Each write carries a *mark*: the journal it came from and the journal sequence
number of its last row.  Databases store the mark in ``gridbus_marks`` in the
same transaction as the rows; a CSV file keeps it in a sidecar file with the
file size, so a batch cut short by a crash is cut off and written again.
Forwarding a journal twice therefore never duplicates a row.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO, TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import GridbusError, SinkRefused, SinkUnavailable
from ..extras import require

if TYPE_CHECKING:  # psycopg is the optional ``postgres`` extra
    import psycopg

Row = tuple[str, str, float, float, str]  # object_id, topic, source, reception, fields JSON
StoredRow = tuple[str, str, float, float, float, str]
Mark = tuple[str, int]  # journal id, sequence number of the batch's last row
Key = tuple[str, str, float]  # object_id, topic, source_time: one sample of one writer
QueryArg = str | float  # a value bound to a ``%s`` / ``?`` in a reading query

COLUMNS = ("object_id", "topic", "source_time", "reception_time", "created_time", "fields")
MARKS_TABLE = "gridbus_marks"


class Sink(Protocol):
    url: str  # for messages and file names: never a password

    def check(self) -> None: ...
    def connect(self) -> None: ...
    def write(self, rows: list[Row], mark: Mark | None = None) -> None: ...
    def forwarded(self, journal: str) -> int: ...
    def existing(self, keys: list[Key]) -> set[Key]: ...
    def close(self) -> None: ...


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def is_csv(url: str) -> bool:
    return url.startswith("csv:") or url.endswith(".csv")


def open_sink(url: str) -> Sink:
    """``postgresql://...`` → PostgreSQL; ``*.csv`` or ``csv:PATH`` → CSV; else a SQLite file."""
    if is_postgres(url):
        return PostgresSink(url)
    if is_csv(url):
        return CsvSink(url.removeprefix("csv:"))
    return SqliteSink(sqlite_path(url))


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///").removeprefix("sqlite:")


# -- secrets ------------------------------------------------------------------------------
def redact(url: str) -> str:
    """``url`` with any password shown as ``***`` (in the userinfo or a ``password=`` parameter)."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if "password" in query.lower():
        pairs = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(url: str) -> str | None:
    """The password in ``url``, so that messages can be scrubbed of it."""
    if "://" not in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    for key, value in parse_qsl(parts.query):
        if key.lower() == "password" and value:
            return value
    return None


def scrub(text: str, url: str) -> str:
    """``text`` (an error message) without the password of ``url``."""
    secret = password_of(url)
    text = text.replace(url, redact(url))
    return text.replace(secret, "***") if secret else text


# -- private files ------------------------------------------------------------------------
def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist; True when created here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a recording file, or None (it may not exist yet)."""
    if not path.parent.is_dir():
        return f"directory {path.parent} does not exist"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def _unwritable(path: Path, creates: str) -> str | None:
    """Why this process cannot write ``path`` (or create it and ``creates`` in its directory)."""
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK):
        return f"directory {path.parent} is read-only (the recorder creates {creates} there)"
    return None


# -- SQLite -------------------------------------------------------------------------------
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

    def check(self) -> None:
        """Refuse a file that cannot be opened or written, or holds another schema."""
        path = Path(self.url)
        problem = _file_problem(path) or _unwritable(path, "its -wal and -shm files")
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
        except sqlite3.Error as exc:
            self.close()
            raise SinkUnavailable(f"{self.url}: {exc}") from None
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
        if self.db is not None:
            self.db.close()
            self.db = None


# -- PostgreSQL ---------------------------------------------------------------------------
PG_COLUMNS = [
    ("id", "bigint"),
    ("object_id", "text"),
    ("topic", "text"),
    ("source_time", "double precision"),
    ("reception_time", "double precision"),
    ("created_time", "double precision"),
    ("fields", "jsonb"),
]


class PostgresSink:
    SCHEMA = f"""
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
        CREATE TABLE IF NOT EXISTS {MARKS_TABLE} (journal TEXT PRIMARY KEY, seq BIGINT NOT NULL);
    """

    def __init__(self, url: str) -> None:
        self._dsn = url
        self.url = redact(url)
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _error(self, exc: Exception) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{self.url}: {scrub(text, self._dsn)}"

    def check(self) -> None:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        try:
            conn = self._connect()
            with conn.transaction():
                self._check_schema(conn)
                conn.execute(self.SCHEMA)
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "INSERT INTO samples (object_id, topic, source_time, reception_time, fields) "
                    "VALUES ('probe', 'probe', 0, 0, '{}')"
                )
        except SinkUnavailable as exc:
            self.close()
            raise SinkRefused(str(exc)) from None
        except SinkRefused:
            self.close()
            raise
        except psycopg.Error as exc:
            self.close()
            raise SinkRefused(self._error(exc)) from None

    def _check_schema(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        for table, want in (("samples", PG_COLUMNS), (MARKS_TABLE, [("journal", "text"), ("seq", "bigint")])):
            kind = conn.execute(
                "SELECT table_type FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_name = %s",
                (table,),
            ).fetchone()
            if kind is None:
                continue
            columns = [
                tuple(r)
                for r in conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
            ]
            if kind[0] != "BASE TABLE" or columns != want:
                raise SinkRefused(
                    f"{self.url}: its {table} table has another layout "
                    f"({', '.join(f'{n} {t}' for n, t in columns)}); gridbus writes "
                    f"({', '.join(f'{n} {t}' for n, t in want)})"
                )

    def connect(self) -> None:
        self._connect()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        try:
            self.conn = conn = psycopg.connect(self._dsn, connect_timeout=3)
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None
        return conn

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The open connection, opened again if a failure (or the server) closed it."""
        return self.conn if self.conn is not None and not self.conn.closed else self._connect()

    def write(self, rows: list[Row], mark: Mark | None = None) -> None:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        conn = self._connection()
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(
                        "COPY samples (object_id, topic, source_time, reception_time, fields) FROM STDIN"
                    ) as copy:
                        for row in rows:
                            copy.write_row(row)
                    if mark is not None:
                        cur.execute(
                            f"INSERT INTO {MARKS_TABLE} (journal, seq) VALUES (%s, %s) "
                            "ON CONFLICT (journal) DO UPDATE SET seq = excluded.seq",
                            mark,
                        )
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None

    def forwarded(self, journal: str) -> int:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        conn = self._connection()
        try:
            with conn.transaction():
                row = conn.execute(f"SELECT seq FROM {MARKS_TABLE} WHERE journal = %s", (journal,)).fetchone()
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None
        return int(row[0]) if row else 0

    def existing(self, keys: list[Key]) -> set[Key]:
        require("psycopg", "the PostgreSQL sink")
        import psycopg

        if not keys:
            return set()
        conn = self._connection()
        try:
            with conn.transaction():
                found = conn.execute(
                    "SELECT s.object_id, s.topic, s.source_time FROM samples s JOIN "
                    "unnest(%s::text[], %s::text[], %s::float8[]) AS k(o, t, st) "
                    "ON s.topic = k.t AND s.object_id = k.o AND s.source_time = k.st",
                    ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
                ).fetchall()
        except psycopg.Error as exc:
            self.close()
            raise SinkUnavailable(self._error(exc)) from None
        return {tuple(row) for row in found}

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


# -- CSV ----------------------------------------------------------------------------------
class CsvMarks(TypedDict):
    """The ``<file>.marks`` sidecar: the file size at the last mark, and each journal's mark."""

    size: int | None
    journals: dict[str, int]


class CsvSink:
    """Append-only CSV; marks live in ``<file>.marks`` (JSON: file size and journal marks)."""

    def __init__(self, path: str) -> None:
        self.url = path
        self.handle: TextIO | None = None
        self.marks_path = Path(path + ".marks")

    def check(self) -> None:
        path = Path(self.url)
        problem = _file_problem(path) or _unwritable(path, "it")
        if problem:
            raise SinkRefused(f"{self.url}: {problem}")
        if path.exists() and path.stat().st_size:
            try:
                with open(path, newline="", encoding="utf-8") as handle:
                    header = next(csv.reader(handle), None)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise SinkRefused(f"{self.url}: {getattr(exc, 'strerror', None) or exc}") from None
            if header is None or tuple(header) != COLUMNS:
                raise SinkRefused(
                    f"{self.url}:1: another layout ({','.join(header or [])}); gridbus writes {','.join(COLUMNS)}"
                )
        try:
            self.connect()
        except SinkUnavailable as exc:
            raise SinkRefused(str(exc)) from None

    def connect(self) -> None:
        self._connect()

    def _connect(self) -> TextIO:
        path = Path(self.url)
        try:
            create_private(path)
            new = path.stat().st_size == 0
            self.handle = handle = open(path, "a", newline="", encoding="utf-8")
            if new:
                csv.writer(handle).writerow(COLUMNS)
                handle.flush()
        except OSError as exc:
            self.handle = None
            raise SinkUnavailable(f"{self.url}: {exc.strerror}") from None
        return handle

    def _marks(self) -> CsvMarks:
        try:
            marks: CsvMarks = json.loads(self.marks_path.read_text())
            return marks
        except (OSError, ValueError):
            return {"size": None, "journals": {}}

    def forwarded(self, journal: str) -> int:
        """The journal's mark; a tail written after the last mark (a crash mid-batch) is cut off."""
        marks = self._marks()
        size = marks.get("size")
        if size is not None and Path(self.url).exists() and Path(self.url).stat().st_size > size:
            self.close()
            os.truncate(self.url, size)
        return int(marks.get("journals", {}).get(journal, 0))

    def existing(self, keys: list[Key]) -> set[Key]:
        """Which of these samples the file already holds (a scan: CSV has no index)."""
        if not keys:
            return set()
        wanted = set(keys)
        low, high = min(k[2] for k in keys), max(k[2] for k in keys)
        found: set[Key] = set()
        try:
            with open(self.url, newline="", encoding="utf-8", errors="replace") as handle:
                for record in csv.reader(handle):
                    if len(record) == len(COLUMNS):
                        try:
                            key = (record[0], record[1], float(record[2]))
                        except ValueError:
                            continue
                        if low <= key[2] <= high and key in wanted:
                            found.add(key)
        except (OSError, csv.Error) as exc:
            raise SinkUnavailable(f"{self.url}: {getattr(exc, 'strerror', None) or exc}") from None
        return found

    def write(self, rows: list[Row], mark: Mark | None = None) -> None:
        handle = self.handle if self.handle is not None else self._connect()
        created = time.time()
        try:
            writer = csv.writer(handle)
            for o, t, s, r, f in rows:
                writer.writerow((o, t, repr(s), repr(r), repr(created), f))
            handle.flush()
            if mark is not None:
                marks = self._marks()
                marks["size"] = handle.tell()
                marks.setdefault("journals", {})[mark[0]] = mark[1]
                tmp = self.marks_path.with_suffix(".tmp")
                create_private(tmp)
                tmp.write_text(json.dumps(marks))
                os.replace(tmp, self.marks_path)
        except OSError as exc:
            self.close()
            raise SinkUnavailable(f"{self.url}: {exc.strerror}") from None

    def close(self) -> None:
        if self.handle is not None:
            try:
                self.handle.close()
            except OSError:
                pass
            self.handle = None


# -- reading back -------------------------------------------------------------------------
def read_rows(
    url: str,
    topic: str | None = None,
    object_id: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[StoredRow]:
    """Stored rows in source-time order, optionally of one topic / object / time span.

    A source that is not a readable gridbus recording (missing, a directory or
    FIFO, a corrupt SQLite file, a malformed or non-UTF-8 CSV) raises
    :class:`GridbusError` naming the file (and CSV line).
    """
    where: list[str] = []
    args: list[QueryArg] = []
    for column, value, op in (
        ("topic", topic, "="),
        ("object_id", object_id, "="),
        ("source_time", start, ">="),
        ("source_time", end, "<="),
    ):
        if value is not None:
            where.append(f"{column} {op} %s")
            args.append(value)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    sql = (
        f"SELECT object_id, topic, source_time, reception_time, created_time, fields FROM samples{clause} "
        f"ORDER BY source_time"
    )
    if is_postgres(url):
        yield from _postgres_rows(url, sql, args)
    elif is_csv(url):
        yield from _csv_rows(url.removeprefix("csv:"), topic, object_id, start, end)
    else:
        yield from _sqlite_rows(sqlite_path(url), sql.replace("%s", "?"), args)


def _readable_file(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise GridbusError(f"{path}: no such database") from None
    except OSError as exc:
        raise GridbusError(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise GridbusError(f"{path}: is a directory, not a recording")
    if not stat.S_ISREG(mode):
        raise GridbusError(f"{path}: is not a regular file (a FIFO or device?), not a recording")


def _postgres_rows(url: str, sql: str, args: Sequence[QueryArg]) -> Iterator[StoredRow]:
    require("psycopg", "the PostgreSQL sink")
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            for o, t, s, r, c, f in conn.execute(sql, args):
                yield o, t, s, r, c, f if isinstance(f, str) else json.dumps(f)
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GridbusError(f"{redact(url)}: {scrub(text, url)}") from None


def _sqlite_rows(path: str, sql: str, args: Sequence[QueryArg]) -> Iterator[StoredRow]:
    _readable_file(path)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise GridbusError(f"{path}: {exc}") from None
    try:
        try:
            columns = [name for _cid, name, *_ in db.execute("PRAGMA table_info(samples)")]
            if not set(COLUMNS) <= set(columns):
                raise GridbusError(f"{path}: not a gridbus recording (no samples table with {', '.join(COLUMNS)})")
            yield from db.execute(sql, args)
        except sqlite3.Error as exc:
            raise GridbusError(f"{path}: not a readable gridbus recording: {exc}") from None
    finally:
        db.close()


def _utf8_lines(path: str, handle: IO[bytes]) -> Iterator[str]:
    """Decoded lines; a line that is not UTF-8, or a last line cut short, is an error naming it."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GridbusError(
                f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            ) from None


def record_ends_line(handle: IO[bytes]) -> bool:
    """False only at the end of a file whose last line has no end-of-line (cut short?)."""
    position = handle.tell()
    if position < handle.seek(0, os.SEEK_END):
        handle.seek(position)
        return True
    handle.seek(position - 1)
    last = handle.read(1)
    return last == b"\n"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _csv_rows(
    path: str, topic: str | None, object_id: str | None, start: float | None, end: float | None
) -> Iterable[StoredRow]:
    _readable_file(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise GridbusError(f"{path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(_utf8_lines(path, handle), strict=True)
        try:
            header = next(reader, None)
            if header is None or tuple(header) != COLUMNS:
                raise GridbusError(f"{path}:1: not a gridbus recording (expected columns {', '.join(COLUMNS)})")
            rows: list[StoredRow] = []
            for record in reader:
                line = reader.line_num
                if len(record) != len(COLUMNS):
                    raise GridbusError(
                        f"{path}:{line}: malformed row ({len(record)} columns, expected "
                        f"{len(COLUMNS)}; a truncated file?)"
                    )
                o, t, s, r, c, f = record
                try:
                    row = (o, t, float(s), float(r), float(c), f)
                except ValueError:
                    raise GridbusError(f"{path}:{line}: malformed row (a time is not a number)") from None
                if not record_ends_line(handle) and not _is_json(f):
                    raise GridbusError(f"{path}:{line}: truncated (the last row stops in its fields)")
                if (
                    (topic is None or t == topic)
                    and (object_id is None or o == object_id)
                    and (start is None or row[2] >= start)
                    and (end is None or row[2] <= end)
                ):
                    rows.append(row)
        except csv.Error as exc:
            raise GridbusError(f"{path}:{reader.line_num}: truncated or malformed CSV ({exc})") from None
    rows.sort(key=lambda row: row[2])
    return rows
