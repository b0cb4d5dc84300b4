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

import contextlib
import json
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..bus import Bus
from ..errors import GridbusError
from ..stats import summary
from .sinks import read_rows, redact

CLI = [sys.executable, "-m", "gridbus.cli.main"]


def parse_batches(text: str) -> list[int]:
    """``--batches 1,100,1000`` as numbers, or an error naming the bad one."""
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise GridbusError(f"--batches expects whole numbers separated by commas, not {text!r}") from None


def check_arguments(
    batches: list[int], objects: int, rate: float, seconds: float, kill_at: float | None = None
) -> None:
    """Refuse numbers the bench cannot run with, before any process starts."""
    problems = [f"--batches needs whole numbers >= 1, not {b}" for b in batches if b < 1]
    if objects < 1:
        problems.append(f"--objects must be >= 1, not {objects}")
    for name, value in (("--rate", rate), ("--seconds", seconds)):
        if not (math.isfinite(value) and value > 0):
            problems.append(f"{name} must be a positive finite number, not {value}")
    if kill_at is not None and not (math.isfinite(kill_at) and 0 < kill_at < seconds):
        problems.append(f"--kill-at must be between 0 and --seconds ({seconds}), not {kill_at}")
    if problems:
        raise GridbusError("; ".join(problems))


def ingest(
    dbs: list[str],
    batches: list[int],
    objects: int,
    rate: float,
    seconds: float,
    domain: int,
    partition: str | None = None,
) -> list[dict[str, Any]]:
    check_arguments(batches, objects, rate, seconds)
    results = []
    for db in dbs:
        for batch in batches:
            results.append(_one(db, batch, objects, rate, seconds, domain, partition))
    return results


@contextlib.contextmanager
def _recorder(
    db: str, batch: int, domain: int, env: dict[str, str] | None = None, extra: list[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A ``gridbus record`` process that is always gone afterwards (killed if still running)."""
    recorder = _start_recorder(db, batch, domain, env, extra or [])
    try:
        yield recorder
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate(timeout=30)


def _stop(recorder: subprocess.Popen[str]) -> dict[str, Any]:
    recorder.send_signal(signal.SIGINT)
    out, err = recorder.communicate(timeout=120)
    try:
        done: dict[str, Any] = json.loads(out.strip().splitlines()[-1])["done"]
        return done
    except (IndexError, ValueError, KeyError):
        raise GridbusError(f"the recorder ended without its statistics: {err.strip()[-300:]}") from None


def _stream(
    domain: int,
    partition: str | None,
    objects: int,
    rate: float,
    seconds: float,
    on_tick: Callable[[float], None] | None = None,
) -> tuple[float, float, list[float]]:
    """Publish ``objects`` generators at ``rate`` Hz for ``seconds``; (start, end, tick times)."""
    ticks_at: list[float] = []
    with Bus(domain, partition=partition) as bus:
        writers = [bus.writer(f"G_{n + 1}") for n in range(objects)]
        writers[0].wait_for_readers(1)
        time.sleep(0.3)  # the recorder's side of discovery completes too
        samples = [w.build(Va=120.0, Vb=120.0, Vc=120.0, f=60.0, P=float(n)) for n, w in enumerate(writers)]
        start = time.time()
        for tick in range(int(seconds * rate)):
            now = time.time()
            if on_tick is not None:
                on_tick(now - start)
                now = time.time()
            for writer, sample in zip(writers, samples, strict=True):
                writer.write(sample, timestamp=now)
            ticks_at.append(now)
            pause = start + (tick + 1) / rate - time.time()
            if pause > 0:
                time.sleep(pause)
        end = time.time()
        time.sleep(0.5)
    return start, end, ticks_at


def _one(
    db: str, batch: int, objects: int, rate: float, seconds: float, domain: int, partition: str | None
) -> dict[str, Any]:
    with _recorder(db, batch, domain, extra=_partition(partition)) as recorder:
        start, end, ticks_at = _stream(domain, partition, objects, rate, seconds)
        stats = _stop(recorder)
    rows = [(s, c) for _o, _t, s, _r, c, _f in read_rows(db, "Generator_Measurement", start=start - 0.1, end=end + 0.1)]
    delays_ms = [(c - s) * 1000.0 for s, c in rows]
    delay = summary(delays_ms, (50, 90, 99), digits=1)
    created = [c for _s, c in rows]
    span = (max(created) - min(created)) if len(created) > 1 else float("nan")
    return {
        "db": _kind(db),
        "batch": batch,
        "offered_per_s": round(len(ticks_at) * objects / (end - start)),
        "received": stats["received"],
        "stored": len(delays_ms),
        "dropped": stats["dropped"],
        "stored_per_s": round(len(delays_ms) / span) if span > 0 else None,
        **{f"delay_{k}_ms": delay[k] for k in ("p50", "p90", "p99", "max")},
        "delay_mean_ms": delay["mean"],
    }


def _start_recorder(
    db: str, batch: int, domain: int, env: dict[str, str] | None, extra: list[str]
) -> subprocess.Popen[str]:
    recorder = subprocess.Popen(
        [
            *CLI,
            "record",
            "G",
            "--role",
            "Measurement",
            "--db",
            db,
            "--domain",
            str(domain),
            "--batch",
            str(batch),
            "--flush-interval",
            "1.0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert recorder.stdout is not None
    line = recorder.stdout.readline()
    if not line.startswith('{"ready"'):
        recorder.kill()
        _out, err = recorder.communicate(timeout=30)
        raise GridbusError(f"the recorder did not start: {(line + err).strip()[-300:]}")
    return recorder


def _partition(partition: str | None) -> list[str]:
    return ["--partition", partition] if partition else []


def crash(
    db: str,
    batch: int,
    objects: int,
    rate: float,
    seconds: float,
    kill_at: float,
    domain: int,
    env: dict[str, str] | None = None,
    spool: str | None = "",
    partition: str | None = None,
) -> dict[str, Any]:
    """Samples lost when the recorder is killed (SIGKILL) ``kill_at`` s into a stream, then restarted.

    ``env`` runs the recorder with another environment (e.g. another gridbus on PYTHONPATH);
    ``spool=None`` passes no ``--spool`` (a recorder without one).
    """
    check_arguments([batch], objects, rate, seconds, kill_at)
    extra = _partition(partition) + (
        [] if spool is None else ["--spool", spool or tempfile.mkdtemp(prefix="gridbus-bench-spool-")]
    )
    restarted: dict[str, Any] = {}

    def restart() -> None:
        try:
            restarted["rec"] = _start_recorder(db, batch, domain, env, extra)
        except GridbusError as exc:
            restarted["error"] = exc

    thread = threading.Thread(target=restart, daemon=True)
    try:
        with _recorder(db, batch, domain, env, extra) as first:

            def on_tick(elapsed: float) -> None:
                if "kill" not in restarted and elapsed >= kill_at:
                    first.send_signal(signal.SIGKILL)
                    restarted["kill"] = time.time()
                    thread.start()

            start, end, ticks_at = _stream(domain, partition, objects, rate, seconds, on_tick)
            first.communicate(timeout=30)
        thread.join(timeout=60)
        if "rec" not in restarted:
            raise restarted.get("error") or GridbusError("the restarted recorder did not start")
        stats = _stop(restarted["rec"])
    finally:
        if thread.ident is not None:
            thread.join(timeout=60)
        if "rec" in restarted and restarted["rec"].poll() is None:
            restarted["rec"].kill()
            restarted["rec"].communicate(timeout=30)
    kill_time = restarted["kill"]
    stored = [s for _o, _t, s, _r, _c, _f in read_rows(db, "Generator_Measurement", start=start - 0.1, end=kill_time)]

    def missing(low: float, high: float) -> int:
        published = sum(objects for t in ticks_at if low < t <= high)
        return published - sum(1 for s in stored if low < s <= high)

    return {
        "db": _kind(db),
        "batch": batch,
        "offered_per_s": round(len(ticks_at) * objects / (end - start)),
        "published_before_kill": sum(objects for t in ticks_at if t <= kill_time),
        "stored_before_kill": len(stored),
        "lost_last_1s_before_kill": missing(kill_time - 1.0, kill_time),
        "lost_in_the_second_before_that": missing(kill_time - 2.0, kill_time - 1.0),
        "lost_last_100ms": missing(kill_time - 0.1, kill_time),
        "recovered_at_restart": stats.get("recovered"),
    }


def _kind(db: str) -> str:
    """How a result names its database: the URL without password or parameters, or sqlite / csv."""
    if db.startswith("postgres"):
        return redact(db).split("?")[0]
    return "csv" if db.endswith(".csv") else "sqlite"
