"""Where recorded samples go: SQLite (embedded default), PostgreSQL, CSV.

One module per concept: :mod:`.base` (the row, the :class:`Sink` protocol, marks,
URLs and their secrets, private files), :mod:`.sqlite`, :mod:`.postgres`,
:mod:`.csv_file` (the sinks) and :mod:`.reading` (reading a recording back).
This package re-exports all of them, so ``gridbus.historian.sinks`` keeps its names.
"""

from __future__ import annotations

from ...errors import GridbusError, SinkRefused, SinkUnavailable
from ...extras import require
from .base import (
    COLUMNS,
    MARKS_TABLE,
    Key,
    Mark,
    QueryArg,
    Row,
    Sink,
    StoredRow,
    create_private,
    is_csv,
    is_postgres,
    password_of,
    redact,
    scrub,
    sqlite_path,
)
from .csv_file import CsvMarks, CsvSink
from .postgres import PG_COLUMNS, PostgresSink
from .reading import read_rows, record_ends_line
from .sqlite import SQLITE_COLUMNS, SqliteSink

__all__ = [
    "COLUMNS",
    "MARKS_TABLE",
    "PG_COLUMNS",
    "SQLITE_COLUMNS",
    "CsvMarks",
    "CsvSink",
    "GridbusError",
    "Key",
    "Mark",
    "PostgresSink",
    "QueryArg",
    "Row",
    "Sink",
    "SinkRefused",
    "SinkUnavailable",
    "SqliteSink",
    "StoredRow",
    "create_private",
    "is_csv",
    "is_postgres",
    "open_sink",
    "password_of",
    "read_rows",
    "record_ends_line",
    "redact",
    "require",
    "scrub",
    "sqlite_path",
]


def open_sink(url: str) -> Sink:
    """``postgresql://...`` → PostgreSQL; ``*.csv`` or ``csv:PATH`` → CSV; else a SQLite file."""
    if is_postgres(url):
        return PostgresSink(url)
    if is_csv(url):
        return CsvSink(url.removeprefix("csv:"))
    return SqliteSink(sqlite_path(url))
