"""``gridbus bench historian``: sustained ingest and the delay distribution per batch size.

A publisher in this process writes ``objects`` generators at ``rate`` Hz
(100 x 100 Hz = 10,000 samples/s by default) while ``gridbus record`` runs in
its own process with the given batch size.  For each database and batch size
it reports what was offered, what was stored per second, and the delay
``created - source`` (the PMU seed's measure) of the stored rows.

With ``kill_at`` (:func:`crash`), the recorder is killed with SIGKILL that many
seconds into the stream and started again at once; the result says how many
samples published before the kill are missing from the database once the new
recorder has forwarded the journal (the crash's loss), beside the loss in an
earlier second of the same stream (what DDS dropped anyway).
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from ..bus import Bus
from .sinks import read_rows, redact

CLI = [sys.executable, "-m", "gridbus.cli.main"]


def ingest(dbs: list[str], batches: list[int], objects: int, rate: float, seconds: float,
           domain: int) -> list[dict[str, Any]]:
    results = []
    for db in dbs:
        for batch in batches:
            results.append(_one(db, batch, objects, rate, seconds, domain))
    return results


def _one(db: str, batch: int, objects: int, rate: float, seconds: float, domain: int) -> dict[str, Any]:
    recorder = subprocess.Popen([*CLI, "record", "G", "--role", "Measurement", "--db", db, "--domain", str(domain),
                                 "--batch", str(batch), "--flush-interval", "1.0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    recorder.stdout.readline()
    with Bus(domain) as bus:
        writers = [bus.writer(f"G_{n + 1}") for n in range(objects)]
        writers[0].wait_for_readers(1)
        samples = [w.build(Va=120.0, Vb=120.0, Vc=120.0, f=60.0, P=float(n)) for n, w in enumerate(writers)]
        start = time.time()
        ticks = int(seconds * rate)
        for tick in range(ticks):
            now = time.time()
            for writer, sample in zip(writers, samples):
                writer.write(sample, timestamp=now)
            pause = start + (tick + 1) / rate - time.time()
            if pause > 0:
                time.sleep(pause)
        end = time.time()
        time.sleep(0.5)
    recorder.send_signal(signal.SIGINT)
    out, _err = recorder.communicate(timeout=120)
    stats = json.loads(out.strip().splitlines()[-1])["done"]
    rows = [(s, c) for _o, _t, s, _r, c, _f in read_rows(db, "Generator_Measurement", start=start - 0.1,
                                                          end=end + 0.1)]
    delays = np.array([c - s for s, c in rows]) * 1000.0
    created = [c for _s, c in rows]
    span = (max(created) - min(created)) if len(created) > 1 else float("nan")
    return {"db": _kind(db),
            "batch": batch, "offered_per_s": round(ticks * objects / (end - start)),
            "received": stats["received"], "stored": len(delays), "dropped": stats["dropped"],
            "stored_per_s": round(len(delays) / span) if span == span and span > 0 else None,
            **{f"delay_{k}_ms": (round(float(np.percentile(delays, q)), 1) if len(delays) else None)
               for k, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
            "delay_mean_ms": round(float(delays.mean()), 1) if len(delays) else None}


def _start_recorder(db: str, batch: int, domain: int, env: dict | None, extra: list[str]) -> subprocess.Popen:
    recorder = subprocess.Popen([*CLI, "record", "G", "--role", "Measurement", "--db", db, "--domain", str(domain),
                                 "--batch", str(batch), "--flush-interval", "1.0", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = recorder.stdout.readline()
    if not line.startswith('{"ready"'):
        recorder.kill()
        raise RuntimeError(f"the recorder did not start: {line} {recorder.stderr.read()}")
    return recorder


def crash(db: str, batch: int, objects: int, rate: float, seconds: float, kill_at: float, domain: int,
          env: dict | None = None, spool: str | None = "") -> dict[str, Any]:
    """Samples lost when the recorder is killed (SIGKILL) ``kill_at`` s into a stream, then restarted.

    ``env`` runs the recorder with another environment (e.g. another gridbus on PYTHONPATH);
    ``spool=None`` passes no ``--spool`` (a recorder without one).
    """
    extra = [] if spool is None else ["--spool", spool or tempfile.mkdtemp(prefix="gridbus-bench-spool-")]
    recorder = _start_recorder(db, batch, domain, env, extra)
    restarted: dict[str, subprocess.Popen] = {}
    ticks_at: list[float] = []
    kill_time = None
    with Bus(domain) as bus:
        writers = [bus.writer(f"G_{n + 1}") for n in range(objects)]
        writers[0].wait_for_readers(1)
        time.sleep(0.3)
        samples = [w.build(Va=120.0, Vb=120.0, Vc=120.0, f=60.0, P=float(n)) for n, w in enumerate(writers)]
        start = time.time()
        for tick in range(int(seconds * rate)):
            now = time.time()
            if kill_time is None and now - start >= kill_at:
                recorder.send_signal(signal.SIGKILL)
                kill_time = time.time()
                threading.Thread(target=lambda: restarted.setdefault(
                    "rec", _start_recorder(db, batch, domain, env, extra)), daemon=True).start()
                now = time.time()
            for writer, sample in zip(writers, samples):
                writer.write(sample, timestamp=now)
            ticks_at.append(now)
            pause = start + (tick + 1) / rate - time.time()
            if pause > 0:
                time.sleep(pause)
        end = time.time()
        time.sleep(1.0)
    recorder.communicate(timeout=10)
    for _ in range(300):
        if "rec" in restarted:
            break
        time.sleep(0.1)
    second = restarted["rec"]
    second.send_signal(signal.SIGINT)
    out, _err = second.communicate(timeout=120)
    stats = json.loads(out.strip().splitlines()[-1])["done"]
    stored = [s for _o, _t, s, _r, _c, _f in read_rows(db, "Generator_Measurement", start=start - 0.1,
                                                        end=kill_time)]

    def missing(low: float, high: float) -> int:
        published = sum(objects for t in ticks_at if low < t <= high)
        return published - sum(1 for s in stored if low < s <= high)
    return {"db": _kind(db),
            "batch": batch, "offered_per_s": round(len(ticks_at) * objects / (end - start)),
            "published_before_kill": sum(objects for t in ticks_at if t <= kill_time),
            "stored_before_kill": len(stored), "lost_last_1s_before_kill": missing(kill_time - 1.0, kill_time),
            "lost_in_the_second_before_that": missing(kill_time - 2.0, kill_time - 1.0),
            "lost_last_100ms": missing(kill_time - 0.1, kill_time),
            "recovered_at_restart": stats.get("recovered")}


def _kind(db: str) -> str:
    """How a result names its database: the URL without password or parameters, or sqlite / csv."""
    if db.startswith("postgres"):
        return redact(db).split("?")[0]
    return "csv" if db.endswith(".csv") else "sqlite"


def print_results(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title="historian ingest and delay (created - source time)")
    columns = ("db", "batch", "offered_per_s", "received", "stored", "stored_per_s", "delay_mean_ms",
               "delay_p50_ms", "delay_p90_ms", "delay_p99_ms", "delay_max_ms")
    for column in columns:
        table.add_column(column.replace("_per_s", "/s").replace("delay_", "").replace("_ms", " ms"), justify="right")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    Console(width=max(140, Console().width)).print(table)
