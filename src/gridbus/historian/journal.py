"""The recorder's journal: every sample taken, on local disk, before it goes to the database.

Samples taken from DDS are appended to a local SQLite file in WAL mode with a
group commit every ``commit_interval`` (50 ms by default), ``synchronous=NORMAL``:
a committed row survives a crash of the recorder (``kill -9``), though not
necessarily a power cut.  A journal row is the sample as it came off the wire
(topic, times, serialized CDR): storing it costs a few microseconds, so the
journal keeps up with DDS even when decoding the samples (about 50-100 us each
in Python) falls behind; the forwarder decodes.  A second thread forwards journal rows in order to the
target database; each row has a sequence number and the target stores the
number of the last row it holds (see :mod:`.sinks`, *marks*), so a restart
forwards exactly what the target lacks.

Journals live in the *spool directory* (``--spool``; by default
``$XDG_STATE_HOME/gridbus`` or ``~/.local/state/gridbus``), one per running
recorder and target, named after the target without its password.  A recorder
holds an exclusive ``flock`` on its journal; at start it adopts a journal of its
target that nobody holds (the leftovers of a crash) and forwards it first.  A
clean exit removes the journal once everything in it is in the database or in
a spool CSV file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import SinkRefused
from .checkpoint import Checkpointer, defer_checkpoints
from .sinks import CsvSink, Row, create_private

RawRow = tuple[str, float, float, bytes]  # topic, source time, reception time, serialized sample

SCHEMA = """
    CREATE TABLE IF NOT EXISTS rows (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        source_time REAL NOT NULL,
        reception_time REAL NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def default_spool() -> Path:
    """``$XDG_STATE_HOME/gridbus``, else ``~/.local/state/gridbus``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gridbus"


def prepare_spool(path: Path | str | None) -> Path:
    """The spool directory, created 0700 if missing; refused if it cannot be written."""
    spool = Path(path) if path is not None else default_spool()
    try:
        spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not spool.is_dir():
            raise SinkRefused(f"spool directory {spool}: is not a directory")
        probe = spool / f".probe-{os.getpid()}"
        create_private(probe)
        probe.unlink()
    except OSError as exc:
        raise SinkRefused(f"spool directory {spool}: {exc.strerror}") from None
    return spool


def target_key(target: str) -> str:
    """A file-name stem for a target (already without its password): readable part + hash."""
    if "://" in target:  # the same journal whether or not a password is given
        parts = urlsplit(target)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"], safe="/")
        canonical = urlunsplit(parts._replace(netloc=parts.netloc.replace(":***@", "@"), query=query))
    else:
        canonical = str(Path(target.removeprefix("csv:")).resolve())
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", canonical.split("?")[0].split("://")[-1].rsplit("/", 1)[-1] or "db")
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    return f"{stem[:40]}-{digest}"


class Journal:
    """One journal file, held with an exclusive lock while this object is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        create_private(path)
        self._lock = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise
        try:
            self._append = self._connect()
            self._append.executescript(SCHEMA)
            self._forward = self._connect()
            self.id = self._meta("id") or self._set_meta("id", uuid.uuid4().hex)
        except sqlite3.Error:
            self._release()
            raise
        self._checkpointer = Checkpointer(path)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        defer_checkpoints(db)  # see .checkpoint: neither the taker nor the forwarder waits for fsyncs
        return db

    def _meta(self, key: str) -> str | None:
        row = self._forward.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str, db: sqlite3.Connection | None = None) -> str:
        (db or self._forward).execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    # -- the taker's side ----------------------------------------------------------------
    def append(self, rows: list[RawRow]) -> None:
        """Store rows in one transaction (the group commit); raises sqlite3.Error (disk full...)."""
        db = self._append
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO rows (topic, source_time, reception_time, data) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- the forwarder's side ------------------------------------------------------------
    @property
    def settled(self) -> int:
        """Rows up to this number are in the target or in a spool file."""
        return int(self._meta("settled") or 0)

    def after(self, seq: int, limit: int) -> list[tuple[int, RawRow]]:
        """Up to ``limit`` rows after ``seq``, in order."""
        return [
            (seq, (topic, source, reception, data))
            for seq, topic, source, reception, data in self._forward.execute(
                "SELECT seq, topic, source_time, reception_time, data FROM rows WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
        ]

    def count_after(self, seq: int) -> int:
        count: int = self._forward.execute("SELECT count(*) FROM rows WHERE seq > ?", (seq,)).fetchone()[0]
        return count

    def settle(self, seq: int) -> None:
        """Rows up to ``seq`` are safe elsewhere: drop them from the journal.

        On the appending connection: while recording, the same thread appends
        and settles (see :mod:`.intake`), so the two never wait for each other.
        """
        db = self._append
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM rows WHERE seq <= ?", (seq,))
            self._set_meta("settled", str(seq), db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- closing -------------------------------------------------------------------------
    def close(self, remove: bool = False) -> None:
        """Close; with ``remove``, delete the journal files (only when it holds nothing unsettled)."""
        self._checkpointer.stop()
        for db in (self._append, self._forward):
            try:
                db.close()
            except sqlite3.Error:
                pass
        if remove:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def open_journals(spool: Path, key: str) -> tuple[Journal, list[Journal]]:
    """This run's journal (a free leftover of ``key``'s, else a new one) and other free leftovers."""
    mine: Journal | None = None
    leftovers: list[Journal] = []
    existing = sorted(spool.glob(f"{key}.*.journal"), key=lambda p: p.name)
    for path in existing:
        try:
            journal = Journal(path)
        except BlockingIOError:
            continue  # another running recorder holds it
        except (sqlite3.Error, OSError) as exc:
            raise SinkRefused(f"journal {path}: {exc}; move it away to start afresh") from None
        if mine is None:
            mine = journal
        else:
            leftovers.append(journal)
    if mine is None:
        taken = {p.name for p in existing}
        number = next(n for n in range(len(taken) + 1) if f"{key}.{n}.journal" not in taken)
        try:
            mine = Journal(spool / f"{key}.{number}.journal")
        except (sqlite3.Error, OSError) as exc:
            raise SinkRefused(f"journal in {spool}: {exc}") from None
    return mine, leftovers


def spool_file(spool: Path, key: str) -> Path:
    """A new spool CSV for rows the database refused at exit."""
    return spool / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.unflushed.csv"


def export(chunks: Iterable[list[Row]], path: Path) -> int:
    """Write rows to a spool CSV (mode 0600, fsynced); on failure remove it and raise."""
    sink = CsvSink(str(path))
    count = 0
    try:
        for rows in chunks:
            sink.write(rows)
            count += len(rows)
        if sink.handle is not None:
            os.fsync(sink.handle.fileno())
    except BaseException:
        sink.close()
        path.unlink(missing_ok=True)  # the rows stay where they were: no half copies
        raise
    sink.close()
    return count
