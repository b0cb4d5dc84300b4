"""Reading a recording back (analysis, replay, bench): rows in source-time order from any sink's target."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from ...errors import GridbusError
from ...extras import require
from .base import COLUMNS, QueryArg, StoredRow, is_csv, is_postgres, redact, scrub, sqlite_path


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
