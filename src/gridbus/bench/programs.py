"""Whole programs as a user runs them: the DAQ agent, the virtual testbed, the historian.

Each program is started as its own ``gridbus`` process on a domain and
partition of its own; once it says ``ready`` (and ``warmup`` s more, for
discovery and first allocations) its CPU time is read from ``/proc/PID/stat``,
again ``seconds`` later, and the difference over the wall time is its share of
one core; its peak RSS is ``VmHWM``.  The historian case reuses
``gridbus bench historian`` (:func:`gridbus.historian.bench.ingest`): a fast
writer in this process, ``gridbus record`` at batch 1000 into SQLite; the
recorder process is watched from here the same way.

``paths`` runs each program once per codec path: ``fast`` (gridbus's
generated codec) and ``binding`` (``GRIDBUS_CODEC=binding``, the binding's
serializer everywhere), the before and after of the codec, in one run.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import GridbusError
from .goals import goal
from .machine import Footprint, cpu_seconds, peak_rss_mb
from .peers import read_line

Row = dict[str, Any]
Progress = Callable[[Row], None]
CLI = [sys.executable, "-m", "gridbus.cli.main"]
PROGRAMS = ("daq", "testbed", "historian")
PATHS = ("fast", "binding")
CODEC_ENV = "GRIDBUS_CODEC"


def default_daq_config() -> Path | None:
    """``examples/daq-agent.toml`` of a source checkout (ten objects at 100 Hz), if there is one."""
    path = Path(__file__).resolve().parents[3] / "examples" / "daq-agent.toml"
    return path if path.is_file() else None


def _env(domain: int, path: str) -> dict[str, str]:
    env = dict(os.environ, GRIDBUS_DOMAIN=str(domain))
    env.pop("CYCLONEDDS_URI", None)  # the shipped loopback configuration, whatever the user has set
    if path == "binding":
        env[CODEC_ENV] = "binding"
    else:
        env.pop(CODEC_ENV, None)
    return env


@contextmanager
def _codec_path(path: str) -> Iterator[None]:
    """This process (the historian's writer) and its children on codec ``path``, for a while."""
    before = os.environ.get(CODEC_ENV)
    if path == "binding":
        os.environ[CODEC_ENV] = "binding"
    else:
        os.environ.pop(CODEC_ENV, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CODEC_ENV, None)
        else:
            os.environ[CODEC_ENV] = before


def measure(command: Sequence[str], env: dict[str, str], seconds: float, warmup: float) -> Row:
    """Run ``command`` until ready, measure it for ``seconds``, stop it (SIGTERM); its footprint and report."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe no one drains while it runs
        return _measure(command, env, seconds, warmup, errors)


def _measure(command: Sequence[str], env: dict[str, str], seconds: float, warmup: float, errors: Any) -> Row:
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    try:
        line = read_line(proc, 60.0)
        if not line or not line.startswith('{"ready"'):
            proc.kill()
            proc.communicate(timeout=30)
            errors.seek(0)
            err = errors.read()
            raise GridbusError(f"{' '.join(command[3:])} did not start: {((line or '') + err).strip()[-300:]}")
        time.sleep(warmup)
        footprint = Footprint(proc.pid)
        footprint.begin()
        time.sleep(seconds)
        figures = footprint.end()
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    done: Row = {}
    for text in reversed(out.splitlines()):
        if text.startswith('{"done"'):
            done = json.loads(text)["done"]
            break
    return {**figures, "report": done}


def daq(domain: int, partition: str, seconds: float, warmup: float, path: str, config: Path | None) -> Row:
    """The DAQ agent of ``config`` (default: examples/daq-agent.toml, 10 objects at 100 Hz)."""
    config = config or default_daq_config()
    if config is None:
        raise GridbusError("bench programs: no DAQ agent configuration; give --daq-config FILE")
    command = [*CLI, "daq", "--config", str(config), "--partition", partition]
    row = measure(command, _env(domain, path), seconds, warmup)
    return {"program": "daq", "path": path, "setup": f"{config.name}", **row}


def testbed(domain: int, partition: str, seconds: float, warmup: float, path: str, speed: float = 10.0) -> Row:
    """The virtual testbed with the shipped system (every object) at ``speed``."""
    command = [*CLI, "testbed", "--speed", f"{speed:g}", "--partition", partition]
    row = measure(command, _env(domain, path), seconds, warmup)
    return {"program": "testbed", "path": path, "setup": f"shipped system, --speed {speed:g}", **row}


class _ChildWatch:
    """Samples this process's ``gridbus record`` child every 0.25 s: (time, CPU s, peak RSS MB)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ChildWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _recorder(self) -> int | None:
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for pid in map(int, children):
                try:
                    if b"record" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                        return pid
                except OSError:
                    continue
        return None

    def _run(self) -> None:
        pid = None
        while not self._stop.wait(0.25):
            pid = pid or self._recorder()
            if pid is None:
                continue
            try:
                self.samples.append((time.monotonic(), cpu_seconds(pid), peak_rss_mb(pid)))
            except OSError:  # it ended
                pid = None

    def footprint(self, seconds: float) -> Row:
        """CPU share over the last ``seconds`` observed, and the peak RSS."""
        if len(self.samples) < 2:
            return {"cpu_percent": None, "rss_mb": None, "seconds": None}
        last = self.samples[-1]
        first = next((s for s in self.samples if s[0] >= last[0] - seconds), self.samples[0])
        wall = last[0] - first[0]
        return {
            "cpu_percent": round(100 * (last[1] - first[1]) / wall, 1) if wall > 0 else None,
            "rss_mb": round(max(s[2] for s in self.samples), 1),
            "seconds": round(wall, 1),
        }


def historian(domain: int, partition: str, seconds: float, path: str, objects: int, rate: float) -> Row:
    """``gridbus record`` at batch 1000 into SQLite, fed ``objects`` x ``rate`` samples/s from here."""
    from ..historian.bench import ingest

    db = str(Path(tempfile.mkdtemp(prefix="gridbus-bench-programs-")) / "bench.sqlite")
    with _codec_path(path), _ChildWatch() as watch:
        result = ingest([db], [1000], objects, rate, seconds, domain, partition)[0]
    figures = watch.footprint(seconds)
    report = {k: result[k] for k in ("offered_per_s", "received", "stored", "dropped")}
    return {
        "program": "historian",
        "path": path,
        "setup": f"SQLite, batch 1000, {objects} objects x {rate:g} Hz",
        **figures,
        "report": report,
        "samples_per_s": result["stored_per_s"],
        "delay_p99_ms": result["delay_p99_ms"],
    }


def programs(
    domain: int,
    partition: str,
    which: Sequence[str],
    paths: Sequence[str],
    seconds: float,
    warmup: float = 2.0,
    daq_config: Path | None = None,
    historian_objects: int = 100,
    historian_rate: float = 330.0,
    repeat: int = 2,
    progress: Progress | None = None,
) -> list[Row]:
    """One row per (program, codec path), over ``repeat`` runs each.

    The paths of a program alternate ABBA (fast, binding, binding, fast...), so a change of load
    during the runs weighs on both alike.
    """
    rows = []
    for program in which:
        runs: dict[str, list[Row]] = {path: [] for path in paths}
        for rep in range(repeat):
            for path in paths if rep % 2 == 0 else list(reversed(paths)):
                tag = f"{partition}-{program}-{path}-{rep}"
                if program == "daq":
                    row = daq(domain, tag, seconds, warmup, path, daq_config)
                elif program == "testbed":
                    row = testbed(domain, tag, seconds, warmup, path)
                else:
                    row = historian(domain, tag, seconds, path, historian_objects, historian_rate)
                runs[path].append(row)
                if progress is not None:
                    progress(row)
        rows += [_combined(runs[path]) for path in paths]
    return rows


def _combined(runs: list[Row]) -> Row:
    """The runs of one program and path as one row: mean CPU %, peak RSS, median rate and delay."""

    def values(key: str) -> list[float]:
        return [r[key] for r in runs if r.get(key) is not None]

    row = {k: v for k, v in runs[0].items() if k != "report"}
    cpu, rss = values("cpu_percent"), values("rss_mb")
    row["cpu_percent"] = round(sum(cpu) / len(cpu), 1) if cpu else None
    row["rss_mb"] = max(rss) if rss else None
    row["seconds"] = round(sum(values("seconds")), 1)
    for key in ("samples_per_s", "delay_p99_ms"):
        if key in row:
            row[key] = round(statistics.median(values(key)), 1) if values(key) else None
    row["runs"] = [
        {k: r.get(k) for k in ("cpu_percent", "rss_mb", "samples_per_s", "delay_p99_ms", "report")} for r in runs
    ]
    return row


def goals(rows: list[Row]) -> list[Row]:
    """DAQ <= 6 % and <= 50 MB; testbed <= 25 %; historian >= 30k samples/s with p99 <= 200 ms."""
    out = []
    for r in rows:
        where = {"program": r["program"], "path": r["path"]}
        if r["program"] == "daq":
            out.append(goal("DAQ agent CPU % of a core", r["cpu_percent"], 6, **where))
            out.append(goal("DAQ agent peak RSS MB", r["rss_mb"], 50, **where))
        elif r["program"] == "testbed":
            out.append(goal("testbed CPU % of a core", r["cpu_percent"], 25, **where))
        else:
            out.append(goal("historian samples/s stored", r["samples_per_s"], 30_000, at_least=True, **where))
            out.append(goal("historian p99 delay ms", r["delay_p99_ms"], 200, **where))
    return out
