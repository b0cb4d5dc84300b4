"""``gridbus record``: store every sample of the selected objects and topics.

Two threads, so a slow or absent database never stalls the bus side: the
*taker* moves samples from DDS (deep reader histories) into a bounded buffer,
the *writer* flushes the buffer in batches (``batch`` rows or every
``flush_interval`` seconds).  If the database goes away the rows stay in the
buffer, the writer reconnects with back-off and writes them — in order, each
batch once (a failed batch is rolled back and retried whole).  The buffer
warns as it fills; only when it is full are the oldest rows dropped, and they
are counted.  On stop (SIGINT/SIGTERM) everything taken is flushed; rows the
database still refuses are saved to ``<db>.unflushed.csv`` rather than lost.
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from ..bus import Bus, Reader
from ..errors import GridbusError, UnknownObjectError
from .sinks import CsvSink, Row, Sink, SinkUnavailable

ROLES = ("Measurement", "State", "Command", "Protection")


def _json_fields(fields: dict[str, Any]) -> str:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in fields.items() if k != "id"}
    return json.dumps(clean, separators=(",", ":"))


class Recorder:
    def __init__(self, bus: Bus, sink: Sink, patterns: list[str], roles: list[str] | None = None,
                 batch: int = 100, flush_interval: float = 1.0, max_buffer: int = 1_000_000,
                 log: Callable[[str], None] | None = None) -> None:
        if batch < 1 or flush_interval <= 0 or max_buffer < batch:
            raise GridbusError("need batch >= 1, flush interval > 0 and max buffer >= batch")
        self.bus, self.sink = bus, sink
        self.batch, self.flush_interval, self.max_buffer = batch, flush_interval, max_buffer
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.readers: list[Reader] = []
        for pattern in patterns:
            for role in roles or ROLES:
                try:
                    self.readers.append(bus.reader(pattern, role, history=10_000))
                except UnknownObjectError:
                    if roles:
                        raise
        if not self.readers:
            raise GridbusError(f"nothing to record for {' '.join(patterns)}")
        self.buffer: deque[Row] = deque()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.stats = {"received": 0, "written": 0, "dropped": 0, "batches": 0, "reconnects": 0,
                      "max_buffered": 0, "unflushed_saved": 0}
        self._warned = 0.0
        self._down_since: float | None = None

    # -- taking from the bus ------------------------------------------------------------
    def _take(self) -> None:
        while not self.stop_event.is_set():
            self.take_once(0.05)

    def take_once(self, timeout: float) -> int:
        rows = []
        for reader in self.readers:
            for sample in reader.take(0):
                rows.append((sample.id, sample.topic, sample.source_time, sample.reception_time,
                             _json_fields(sample.fields())))
        if not rows:
            time.sleep(timeout)
            return 0
        with self.lock:
            self.buffer.extend(rows)
            self.stats["received"] += len(rows)
            overflow = len(self.buffer) - self.max_buffer
            if overflow > 0:
                for _ in range(overflow):
                    self.buffer.popleft()
                self.stats["dropped"] += overflow
            size = len(self.buffer)
            self.stats["max_buffered"] = max(self.stats["max_buffered"], size)
        self._warn_fill(size)
        return len(rows)

    def _warn_fill(self, size: int) -> None:
        fill = size / self.max_buffer
        for level in (0.5, 0.8, 0.95, 1.0):
            if fill >= level > self._warned:
                self._warned = level
                self.log(f"record: buffer {fill:.0%} full ({size} of {self.max_buffer} rows)"
                         + (f"; {self.stats['dropped']} oldest rows dropped" if level >= 1.0 else ""))
        if fill < 0.4:
            self._warned = 0.0

    # -- writing to the sink ------------------------------------------------------------
    def _write_loop(self) -> None:
        last = time.monotonic()
        while not self.stop_event.is_set():
            with self.lock:
                size = len(self.buffer)
            due = size >= self.batch or (size and time.monotonic() - last >= self.flush_interval)
            if not due:
                time.sleep(min(0.01, self.flush_interval))
                continue
            if self.flush_batch():
                last = time.monotonic()
            else:
                self.stop_event.wait(self._backoff())

    def flush_batch(self) -> bool:
        """Write the oldest ``batch`` rows; True when written (or nothing to write)."""
        with self.lock:
            rows = [self.buffer[i] for i in range(min(self.batch, len(self.buffer)))]
        if not rows:
            return True
        try:
            self.sink.write(rows)
        except SinkUnavailable as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.log(f"record: database unavailable, buffering: {exc}")
            return False
        with self.lock:
            for _ in rows:
                self.buffer.popleft()
            self.stats["written"] += len(rows)
            self.stats["batches"] += 1
        if self._down_since is not None:
            self.stats["reconnects"] += 1
            self.log(f"record: database back after {time.monotonic() - self._down_since:.1f} s; writing the buffer")
            self._down_since = None
        return True

    def _backoff(self) -> float:
        down = time.monotonic() - (self._down_since or time.monotonic())
        return min(2.0, 0.1 + down / 5)

    # -- running ------------------------------------------------------------------------
    def run(self, duration: float | None = None, final_timeout: float = 15.0) -> dict[str, int]:
        try:
            self.sink.connect()
        except SinkUnavailable as exc:
            self._down_since = time.monotonic()
            self.log(f"record: database unavailable at start, buffering: {exc}")
        taker = threading.Thread(target=self._take, name="gridbus-record-take", daemon=True)
        writer = threading.Thread(target=self._write_loop, name="gridbus-record-write", daemon=True)
        taker.start()
        writer.start()
        try:
            deadline = None if duration is None else time.monotonic() + duration
            while not self.stop_event.is_set() and (deadline is None or time.monotonic() < deadline):
                self.stop_event.wait(0.1)
        finally:
            self.stop_event.set()
            taker.join(timeout=5)
            writer.join(timeout=5)
            self.take_once(0)
            self._final_flush(final_timeout)
            self.sink.close()
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()

    def _final_flush(self, timeout: float) -> None:
        # on the way out, write the backlog in large batches: the steady-state batch size may be 1
        self.batch = max(self.batch, 1000)
        deadline = time.monotonic() + timeout
        while self.buffer and time.monotonic() < deadline:
            if not self.flush_batch():
                time.sleep(self._backoff())
        if self.buffer:
            path = _fallback_path(str(self.sink.url))
            fallback = CsvSink(str(path))
            fallback.write(list(self.buffer))
            fallback.close()
            self.stats["unflushed_saved"] = len(self.buffer)
            self.log(f"record: the database refused {len(self.buffer)} rows; saved them to {path}")
            self.buffer.clear()


def _fallback_path(url: str) -> Path:
    """Where rows the database refused at exit go: beside a file database, else in the cwd."""
    if "://" not in url:
        return Path(url + ".unflushed.csv")
    name = url.split("?")[0].split("://", 1)[1].replace("/", "_").replace("@", "_")
    return Path(f"gridbus-{name}.unflushed.csv")
