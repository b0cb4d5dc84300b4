"""``gridbus testbed-bench`` (``bench cosim``): how fast the closed loop runs, and how long it takes.

Three figures for a case (ieee14, ieee39):

* **speed-up**: simulated seconds per wall second when the testbed steps ANDES
  as fast as it can and publishes *every* measurement at 30 Hz of simulated
  time (every object, every step of 1/30 s, PMU frames included) — the
  testbed's throughput, with an AGC and an EMS reading the bus;
* **CPU per process**: the testbed's (this process), the AGC's and the EMS's
  share of one core over the same window (``/proc/PID/stat``);
* **loop latency**, paced at real time: a generator trips in ANDES; the first
  published measurement that shows the frequency outside the AGC's deadband;
  the AGC's first set-point applied by the engine.  ``loop_ms`` (measurement
  published → set-point applied) is what the bus and the AGC add; the goal is
  two reporting periods plus the sensors' delay (0 here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ...bench.peers import read_line
from ...bus import Bus
from ...timebase import SimClock
from ..service import TestbedService
from . import open_engine
from .engine import AndesEngine

DEADBAND = 0.005  # Hz, the AGC's
TRIPS = {"ieee14": "CB_G2", "ieee39": "CB_G2"}
READY_TIMEOUT = 60.0  # s a peer gets to say it is ready (the EMS loads its case first)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peer(args: list[str], domain: int, partition: str | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "gridbus.cli.main", *args, "--domain", str(domain)]
    cmd += ["--partition", partition] if partition else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = read_line(proc, READY_TIMEOUT)  # {"ready": ...}; bounded, so a hung peer cannot hang the bench
    if line is None or not line.startswith('{"ready"'):
        _end(proc)
        raise RuntimeError(f"gridbus {args[0]} did not start within {READY_TIMEOUT:g} s")
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    """Stop a peer: SIGTERM, then SIGKILL if it has not gone within 10 s."""
    proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def bench_cosim(
    case: str = "ieee14", seconds: float = 10.0, domain: int = 0, partition: str | None = None
) -> dict[str, Any]:
    """Throughput, CPU per process and loop latency of the closed loop on ``case``."""
    engine = open_engine(case)
    step = engine.case.step
    with Bus(domain, partition=partition) as bus:
        service = TestbedService(bus, engine.system, rate=1 / step, clock=SimClock(time.time(), 1.0), engine=engine)
        service.publish_states()
        peers: dict[str, subprocess.Popen[str]] = {}
        try:  # peers started so far are ended even if a later one fails to start
            peers["agc"] = _peer(["agc", "--period", str(step), "--deadband", str(DEADBAND)], domain, partition)
            peers["ems"] = _peer(["ems", "--case", case, "--period", "0.5"], domain, partition)
            figures = _throughput(engine, service, seconds, peers)
            figures |= _latency(engine, service, step)
        finally:
            for proc in peers.values():
                _end(proc)
    objects = len(service._measure) + len(service.pmus.ids)
    return {"case": case, "objects": objects, "rate_hz": round(1 / step, 1), **figures}


def _publish(engine: AndesEngine, service: TestbedService) -> None:
    service._publish_events()
    service._publish_measurements(service.clock.stamp(engine.t))


def _throughput(
    engine: AndesEngine, service: TestbedService, seconds: float, peers: dict[str, subprocess.Popen[str]]
) -> dict[str, Any]:
    steps = round(seconds / engine.case.step)
    cpu0 = {name: _cpu_seconds(p.pid) for name, p in peers.items()}
    own0, wall0, sent0 = time.process_time(), time.perf_counter(), service.published
    for _ in range(steps):
        engine.step()
        _publish(engine, service)
    wall = time.perf_counter() - wall0
    cpu = {"testbed": (time.process_time() - own0) / wall}
    cpu |= {name: (_cpu_seconds(p.pid) - cpu0[name]) / wall for name, p in peers.items()}
    return {
        "simulated_s": round(steps * engine.case.step, 2),
        "wall_s": round(wall, 2),
        "times_real_time": round(steps * engine.case.step / wall, 2),
        "samples_per_s": round((service.published - sent0) / wall),
        "cpu_share": {k: round(v, 2) for k, v in cpu.items()},
    }


def _latency(engine: AndesEngine, service: TestbedService, step: float, settle: float = 3.0) -> dict[str, Any]:
    """Paced at real time: trip a machine, time the loop until the AGC's first set-point is applied."""
    start_wall, start_t = time.perf_counter(), engine.t
    tripped = seen = applied = None
    first: Any = None  # the AGC's first set-point after the excursion (its stamps: time.time())
    trip = TRIPS.get(engine.system.name.split("_")[0], next(iter(engine.ids.breaker)))
    while engine.t - start_t < settle + 5.0 and applied is None:
        for sample in service.commands.take(0):
            if sample.topic == "Generator_Command" and seen is not None and applied is None:
                service._obey(sample)
                applied, first = time.time(), sample
            else:
                service._obey(sample)
        if tripped is None and engine.t - start_t >= settle:
            engine.command(trip, {"status": "OPEN"})
            tripped = time.time()
        engine.step()
        _publish(engine, service)
        if tripped is not None and seen is None:
            # what the AGC acts on: the running machines' mean frequency, outside its deadband
            running = [f for f in (engine.measurements()[g]["f"] for g in engine.ids.gen) if f > 1.0]
            if abs(sum(running) / len(running) - engine.case.f0) > DEADBAND:
                seen = time.time()
        pause = start_wall + (engine.t - start_t) - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    if tripped is None or seen is None or applied is None:
        return {"loop_ms": None, "detect_ms": None, "event_to_applied_ms": None}
    return {
        "detect_ms": round(1e3 * (seen - tripped), 1),
        "loop_ms": round(1e3 * (applied - seen), 1),
        "event_to_applied_ms": round(1e3 * (applied - tripped), 1),
        # where the loop's time goes: the AGC's reaction (bus in, compute, write), the bus back,
        # and the wait for the engine's next step (commands are applied between steps)
        "agc_reaction_ms": round(1e3 * (first.source_time - seen), 1),
        "bus_back_ms": round(1e3 * (first.reception_time - first.source_time), 1),
        "wait_for_step_ms": round(1e3 * (applied - first.reception_time), 1),
        "reporting_period_ms": round(1e3 * step, 1),
    }
