"""Copying a SQLite write-ahead log into its database beside the writer, not inside its commits.

In WAL mode SQLite checkpoints automatically: the commit that takes the log
past 1000 pages (4 MB) copies the log into the database file and, with
``synchronous=NORMAL``, fsyncs both files before it returns.  At 30 k rows/s
that happened about once a second inside the recorder's forwarding and took
tens to hundreds of milliseconds on a busy disk: the rows of every batch
behind it waited, which set the p99 delay.

A :class:`Checkpointer` runs passive checkpoints from a thread and a
connection of its own every ``interval`` s instead (SQLite releases the GIL
while it works; a passive checkpoint never blocks a writer), and the writing
connection's automatic checkpoint is pushed out to ``backstop_pages``, so the
log stays bounded even if this thread cannot keep up.  Durability is the same
as with automatic checkpoints: a commit survives a crash of the process; with
``synchronous=NORMAL`` the last commits before a power cut may be rolled back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 16_384  # 64 MB of log before a commit checkpoints by itself


def defer_checkpoints(db: sqlite3.Connection, backstop_pages: int = BACKSTOP_PAGES) -> None:
    """Let ``db``'s commits checkpoint only past ``backstop_pages`` (a :class:`Checkpointer` does it)."""
    db.execute(f"PRAGMA wal_autocheckpoint={int(backstop_pages)}")


class Checkpointer:
    """A daemon thread checkpointing ``path``'s WAL every ``interval`` s until :meth:`stop`."""

    def __init__(self, path: str | Path, interval: float = 0.5) -> None:
        self.path, self.interval = str(path), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridbus-wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=1)
        except sqlite3.Error as exc:
            log.warning("%s: cannot open it to checkpoint its log (%s); commits will", self.path, exc)
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or a full disk: the next round, or the backstop
                    log.debug("%s: checkpoint skipped: %s", self.path, exc)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
