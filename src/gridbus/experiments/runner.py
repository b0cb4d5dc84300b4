"""Run one experiment end to end: testbed process, controllers, recorder, outputs.

The testbed runs in its own process (``gridbus testbed``) and everything here
talks to it over DDS only, exactly as it would to the lab.  Simulated time is
what the testbed's data says it is (:class:`~gridbus.control.clock.DataClock`,
given the time base ``--epoch``/``--speed``): a starved testbed slows the
experiment down instead of making its time jump under the controllers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bus import Bus
from ..control.clock import DataClock
from ..control.main import MainController
from ..control.view import GridView
from ..errors import ExperimentError
from ..extras import require
from ..steady import steady_loop
from .cases import CASES, Case
from .report import summarize, write_csv, write_plots
from .result import Recording, Result

Progress = Callable[[float, float, str], None]  # (simulated time, end time, what is happening)

RECORDED = [
    ("G", "Measurement"),
    ("L", "Measurement"),
    ("Bus", "Measurement"),
    ("PMU", "Measurement"),
    ("G", "State"),
    ("CB", "State"),
    ("CB", "Protection"),
    ("CTRL", "State"),
]
STARTUP_LIMIT = 240.0  # simulated seconds for the startup sequence
FIRST_DATA_LIMIT = 15.0  # wall seconds for the testbed's first measurement to arrive
SILENCE_LIMIT = 5.0  # wall seconds without data after which the run is abandoned


def run_case(
    case: Case,
    speed: float = 10.0,
    domain: int | None = None,
    partition: str | None = None,
    system: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Run ``case`` against a testbed process of its own.

    Without ``partition`` the run gets a DDS partition of its own: two runs on one
    domain (two ``make demo``, a test suite beside a demo) must neither obey each
    other's commands nor read each other's clock.
    """
    partition = partition or f"experiment-{uuid.uuid4().hex[:10]}"
    with Bus(domain, partition=partition) as bus:
        epoch = time.time() + 2.0  # simulated 0: once discovery has had a moment
        clock = DataClock(epoch, speed)
        testbed = _start_testbed(bus.domain_id, partition, system, clock, case)
        try:
            # a full collection of a heap the loop did not make would stall it (gridbus.steady)
            with steady_loop():
                result = _drive(bus, clock, case, progress, testbed)
            result.partition = partition
            return result
        finally:
            testbed.terminate()
            try:
                testbed.wait(timeout=10)
            except subprocess.TimeoutExpired:
                testbed.kill()


def _start_testbed(
    domain: int, partition: str | None, system: str | None, clock: DataClock, case: Case
) -> subprocess.Popen[str]:
    total = case.start_at + STARTUP_LIMIT + case.duration + 120.0
    cmd = [
        sys.executable,
        "-m",
        "gridbus.cli.main",
        "testbed",
        "--domain",
        str(domain),
        "--speed",
        str(clock.speed),
        "--epoch",
        repr(clock.epoch),
        "--duration",
        str(total),
    ]
    if partition:
        cmd += ["--partition", partition]
    if system:
        cmd += ["--system", system]
    # its log goes to a file, not a pipe nobody reads (a full pipe would stall the testbed)
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None  # stdout=PIPE
    line = proc.stdout.readline()
    if not line.startswith('{"ready"'):
        proc.kill()
        proc.wait()
        log.seek(0)
        raise ExperimentError(f"the testbed did not start: {line.strip()} {log.read().strip()}")
    return proc


def _drive(bus: Bus, clock: DataClock, case: Case, progress: Progress | None, testbed: subprocess.Popen[str]) -> Result:
    readers = [bus.reader(prefix, role) for prefix, role in RECORDED]
    # the testbed, the controllers and the recorder share this machine with whatever else runs: half
    # a second of wall time of one object's delivery jitter is scheduling, not a missed deadline (a
    # testbed that stopped or left is still caught at once by its silence and its writers leaving)
    view = GridView(clock, wall_jitter=0.5)
    recording = Recording()
    main = MainController(bus, clock, case.plan)
    controllers = case.controllers(bus, clock)
    events: list[tuple[float, str]] = []
    pending = sorted(case.timeline, key=lambda a: a.at)
    ready_at: float | None = None
    shutting_down = False
    tick = 0.02

    def poll() -> None:
        # take from every reader first, then ingest: the view's clock moves with every sample
        # ingested, so a pause between one reader's take and the next (a collection, a lost time
        # slice) must not make the first reader's objects look older than the others'
        batches = [(reader, reader.take(0)) for reader in readers]
        for reader, batch in batches:
            for sample in batch:
                view.ingest(sample)
                recording.add(
                    view.sim_time(sample),
                    sample.topic,
                    sample.id,
                    {k: v for k, v in sample.fields().items() if k != "id"},
                )
            view.collect_gone(reader)

    _wait_for_start(clock, case.start_at, poll, testbed, tick)
    main.start()
    while True:
        poll()
        now = clock.now()
        gone = _testbed_gone(testbed, clock)
        if gone:
            events.append((now, gone))
            break
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
    return Result(
        case,
        clock.speed,
        recording,
        main,
        controllers,
        ready_at,
        clock.now(),
        events,
        wall_seconds=time.time() - clock.epoch,
    )


def _wait_for_start(
    clock: DataClock, start_at: float, poll: Callable[[], None], testbed: subprocess.Popen[str], tick: float
) -> None:
    """Take the testbed's data until its simulated time reaches ``start_at``."""
    deadline = time.monotonic() + FIRST_DATA_LIMIT + start_at / clock.speed
    while clock.now() < start_at:
        poll()
        gone = _testbed_gone(testbed, clock)
        if gone or time.monotonic() > deadline:
            raise ExperimentError(
                gone
                or f"the testbed's simulated time did not reach {start_at:g} s "
                f"within {FIRST_DATA_LIMIT + start_at / clock.speed:g} s"
            )
        time.sleep(tick)


def _testbed_gone(testbed: subprocess.Popen[str], clock: DataClock) -> str | None:
    """Why the run cannot go on: the testbed process ended, or its data stopped; None if neither."""
    code = testbed.poll()
    if code is not None:
        return f"testbed gone: its process exited with status {code}"
    if clock.started and clock.silent_for() > SILENCE_LIMIT:
        return f"testbed silent: no data for {clock.silent_for():.1f} s (wall)"
    return None


def run_experiment(
    name: str,
    out: Path,
    speed: float = 10.0,
    domain: int | None = None,
    partition: str | None = None,
    system: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run case ``name`` and write its CSVs, plots and ``summary.json`` into ``out``."""
    if name not in CASES:
        raise ExperimentError(f"unknown experiment {name!r}; known: {', '.join(CASES)}")
    require("matplotlib", "the experiment's figures")  # before a run of minutes, not after it
    result = run_case(CASES[name](), speed, domain, partition, system, progress)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    summary["files"] = {"csv": write_csv(result, out), "plots": write_plots(result, out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary
