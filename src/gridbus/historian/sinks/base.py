"""What every sink shares: the row, the :class:`Sink` protocol, target URLs and private files.

The sinks themselves: :mod:`.sqlite`, :mod:`.postgres`, :mod:`.csv_file`.

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

import os
import re
import stat
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def file_problem(path: Path) -> str | None:
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


def unwritable(path: Path, creates: str) -> str | None:
    """Why this process cannot write ``path`` (or create it and ``creates`` in its directory)."""
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK):
        return f"directory {path.parent} is read-only (the recorder creates {creates} there)"
    return None
