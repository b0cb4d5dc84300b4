"""``gridbus bench programs``: real programs measured from /proc, with tiny durations (no speed asserted)."""

from __future__ import annotations

import math
import sys

import pytest
from helpers import gridbus
from test_bench import lines


def _sane(row: dict) -> None:
    for key in ("cpu_percent", "rss_mb", "seconds"):
        assert isinstance(row[key], (int, float)) and math.isfinite(row[key]) and row[key] >= 0, (key, row)
    assert row["rss_mb"] > 5  # a Python process with cyclonedds loaded


@pytest.mark.integration
def test_bench_programs_daq_and_testbed(env):
    args = ["--programs", "daq,testbed", "--paths", "fast", "--seconds", "1", "--repeat", "1", "--warmup", "0.5"]
    proc = gridbus("bench", "programs", *args, "--json", env=env, timeout=120, check=True)
    _machine, rows, goals = lines(proc.stdout)
    assert [(r["program"], r["path"]) for r in rows] == [("daq", "fast"), ("testbed", "fast")]
    for row in rows:
        _sane(row)
    assert rows[0]["runs"][0]["report"]["published"] > 0  # the DAQ agent's own report, after SIGTERM
    assert {g["goal"] for g in goals} == {
        "DAQ agent CPU % of a core",
        "DAQ agent peak RSS MB",
        "testbed CPU % of a core",
    }


@pytest.mark.integration
def test_bench_programs_historian_both_codec_paths(env):
    args = [
        "--programs",
        "historian",
        "--paths",
        "fast,binding",
        "--seconds",
        "1.5",
        "--historian-objects",
        "5",
        "--repeat",
        "1",
    ]
    proc = gridbus("bench", "programs", *args, "--historian-rate", "20", "--json", env=env, timeout=120, check=True)
    _machine, rows, goals = lines(proc.stdout)
    assert [r["path"] for r in rows] == ["fast", "binding"]
    for row in rows:
        _sane(row)
        assert row["runs"][0]["report"]["stored"] > 0 and row["samples_per_s"] > 0 and row["delay_p99_ms"] >= 0
    assert {g["goal"] for g in goals} == {"historian samples/s stored", "historian p99 delay ms"}


@pytest.mark.integration
def test_bench_programs_repeats_each_path(env):
    """--repeat 2 runs each codec path twice (ABBA) and gives one row per path with both runs."""
    args = ["--programs", "daq", "--paths", "fast,binding", "--seconds", "0.5", "--warmup", "0.2", "--repeat", "2"]
    proc = gridbus("bench", "programs", *args, "--json", env=env, timeout=120, check=True)
    _machine, rows, _goals = lines(proc.stdout)
    assert [r["path"] for r in rows] == ["fast", "binding"]
    for row in rows:
        _sane(row)
        assert len(row["runs"]) == 2 and row["rss_mb"] == max(run["rss_mb"] for run in row["runs"])


CHATTY = r"""
import signal, sys, json, time
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
for _ in range(256):  # 256 KB of log before it is ready: far more than a pipe holds
    sys.stderr.write("x" * 1023 + "\n")
sys.stderr.flush()
print('{"ready": {}}', flush=True)
while not stop:
    time.sleep(0.05)
print(json.dumps({"done": {"logged": 256 * 1024}}), flush=True)
"""


def test_a_measured_program_that_logs_a_lot_does_not_block(env):
    """Its stderr goes to a file, not to a pipe no one drains during the measurement."""
    from gridbus.bench.programs import measure

    row = measure([sys.executable, "-c", CHATTY], env, seconds=0.2, warmup=0.0)
    assert row["report"] == {"logged": 256 * 1024}


def test_a_measured_program_that_fails_to_start_says_why(env):
    from gridbus.bench.programs import measure
    from gridbus.errors import GridbusError

    code = "import sys; sys.stderr.write('no such bus\\n'); sys.exit(3)"
    with pytest.raises(GridbusError, match="did not start: no such bus"):
        measure([sys.executable, "-c", code, "x", "y"], env, seconds=0.1, warmup=0.0)
