"""Run one experiment end to end: testbed process, controllers, recorder, outputs.

The testbed runs in its own process (``gridbus testbed``) and everything here
talks to it over DDS only, exactly as it would to the lab.  Both sides share
the simulated clock through ``--epoch`` and ``--speed``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..bus import Bus
from ..control.main import MainController
from ..control.view import GridView
from ..errors import GridbusError
from ..testbed.service import SimClock
from .cases import CASES, Case

RECORDED = [("G", "Measurement"), ("L", "Measurement"), ("Bus", "Measurement"), ("PMU", "Measurement"),
            ("G", "State"), ("CB", "State"), ("CB", "Protection"), ("CTRL", "State")]
STARTUP_LIMIT = 240.0            # simulated seconds for the startup sequence


class ExperimentError(GridbusError):
    """An experiment could not run (the testbed did not start, a controller faulted…)."""


@dataclass
class Recording:
    """Every recorded sample: per topic, rows of (simulated time, id, fields)."""
    rows: dict[str, list[tuple[float, str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, t: float, topic: str, object_id: str, fields: dict[str, Any]) -> None:
        self.rows[topic].append((t, object_id, fields))

    def series(self, topic: str, object_id: str, name: str) -> tuple[list[float], list[Any]]:
        points = [(t, f[name]) for t, i, f in self.rows.get(topic, []) if i == object_id]
        return [t for t, _ in points], [v for _, v in points]


@dataclass
class Result:
    case: Case
    speed: float
    recording: Recording
    main: MainController
    controllers: list
    ready_at: float | None
    ended_at: float
    events: list[tuple[float, str]]


def run_case(case: Case, speed: float = 10.0, domain: int | None = None, partition: str | None = None,
             system: str | None = None, progress: Callable[[float, float, str], None] | None = None) -> Result:
    with Bus(domain, partition=partition) as bus:
        epoch = time.time() + 2.0
        clock = SimClock(epoch, speed)
        testbed = _start_testbed(bus.domain_id, partition, system, clock, case)
        try:
            return _drive(bus, clock, case, progress)
        finally:
            testbed.terminate()
            try:
                testbed.wait(timeout=10)
            except subprocess.TimeoutExpired:
                testbed.kill()


def _start_testbed(domain: int, partition: str | None, system: str | None, clock: SimClock,
                   case: Case) -> subprocess.Popen:
    total = case.start_at + STARTUP_LIMIT + case.duration + 120.0
    cmd = [sys.executable, "-m", "gridbus.cli.main", "testbed", "--domain", str(domain),
           "--speed", str(clock.speed), "--epoch", repr(clock.epoch), "--duration", str(total)]
    if partition:
        cmd += ["--partition", partition]
    if system:
        cmd += ["--system", system]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith('{"ready"'):
        proc.kill()
        raise ExperimentError(f"the testbed did not start: {line.strip()} {proc.stderr.read().strip()}")
    return proc


def _drive(bus: Bus, clock: SimClock, case: Case, progress: Callable | None) -> Result:
    readers = [bus.reader(prefix, role) for prefix, role in RECORDED]
    view = GridView(clock)
    recording = Recording()
    main = MainController(bus, clock, case.plan)
    controllers = case.controllers(bus, clock)
    events: list[tuple[float, str]] = []
    pending = sorted(case.timeline, key=lambda a: a.at)
    ready_at: float | None = None
    shutting_down = False
    tick = 0.02

    def poll() -> None:
        for reader in readers:
            for sample in reader.take(0):
                view.ingest(sample)
                recording.add(view.sim_time(sample), sample.topic, sample.id,
                              {k: v for k, v in sample.fields().items() if k != "id"})

    clock.sleep_until(case.start_at)
    poll()
    main.start()
    while True:
        poll()
        now = clock.now()
        main.tick(view)
        if main.stage == "FAULT":
            events.append((now, f"main controller fault: {main.reason}"))
            break
        if ready_at is None and main.stage == "READY":
            ready_at = now
            events.append((now, "testbed ready"))
            for controller in controllers:
                controller.start()
        if ready_at is None and now > case.start_at + STARTUP_LIMIT:
            events.append((now, f"startup did not finish in {STARTUP_LIMIT:g} s (stage {main.stage})"))
            break
        if ready_at is not None:
            while pending and now >= ready_at + pending[0].at:
                action = pending.pop(0)
                bus.command(action.object_id, **action.fields)
                events.append((now, action.text))
            for controller in controllers:
                controller.tick(view)
            if now >= ready_at + case.duration:
                if case.shutdown and not shutting_down:
                    shutting_down = True
                    main.shutdown()
                    events.append((now, "shutdown"))
                elif not case.shutdown or main.stage in ("OFF", "FAULT"):
                    break
                elif now > ready_at + case.duration + 120:
                    events.append((now, f"shutdown did not finish (stage {main.stage})"))
                    break
        if progress:
            total = (ready_at or now) + case.duration if ready_at else case.start_at + 60 + case.duration
            progress(now, total, main.stage)
        time.sleep(tick)
    time.sleep(0.2)
    poll()
    return Result(case, clock.speed, recording, main, controllers, ready_at, clock.now(), events)


def run_experiment(name: str, out: Path, speed: float = 10.0, domain: int | None = None,
                   partition: str | None = None, system: str | None = None,
                   progress: Callable | None = None) -> dict[str, Any]:
    """Run case ``name`` and write its CSVs, plots and ``summary.json`` into ``out``."""
    from .report import summarize, write_csv, write_plots
    if name not in CASES:
        raise ExperimentError(f"unknown experiment {name!r}; known: {', '.join(CASES)}")
    result = run_case(CASES[name](), speed, domain, partition, system, progress)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    summary["files"] = {"csv": write_csv(result, out), "plots": write_plots(result, out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary
