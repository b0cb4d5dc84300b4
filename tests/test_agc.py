"""AGC (issue 14, item 5): three processes — ANDES testbed, `gridbus agc`, this observer — restore 60 Hz."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from gridbus import Bus

pytest.importorskip("andes")

from gridbus.testbed.andes import Event, empty_scenario  # noqa: E402
from gridbus.testbed.andes.offline import run_offline  # noqa: E402

SCENARIO = """[scenario]
case = "ieee14"
duration = 16.0

[[event]]
t = 1.0
kind = "generator_trip"
object = "G_2"
"""


def test_droop_alone_leaves_an_offset():
    """ANDES alone: the governors stop the decline ~0.25 Hz low and stay there (what AGC must fix)."""
    scenario = empty_scenario("ieee14")
    scenario.events = [Event(t=1.0, kind="generator_trip", object="G_2")]
    ref = run_offline(scenario, 12.0)
    running = [n for n, g in enumerate(ref.gen_ids) if g != "G_2"]
    final = float(np.mean(ref.f[-1, running]))
    assert 59.6 < final < 59.9


@pytest.mark.integration
def test_agc_process_restores_nominal_frequency(tmp_path, env, domain):
    path = tmp_path / "trip.toml"
    path.write_text(SCENARIO)
    speed = "3"
    testbed = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "testbed", "--engine", "andes", "--scenario", str(path),
         "--speed", speed],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    agc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "agc", "--speed", speed, "--gain", "0.4", "--duration", "12"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with Bus(domain) as bus:
            machines = bus.reader("G")
            assert json.loads(testbed.stdout.readline())["ready"]
            newest: dict[str, float] = {}
            lowest = 60.0
            deadline = time.monotonic() + 30
            while testbed.poll() is None and time.monotonic() < deadline:
                for s in machines.take(0.1):
                    newest[s.id] = s.f
                running = [f for g, f in newest.items() if f > 1.0]
                if running:
                    lowest = min(lowest, sum(running) / len(running))
        agc.terminate()  # the plant's run is over: the rest of its --duration would watch nothing
        done = json.loads(agc.communicate(timeout=20)[0].splitlines()[-1])["done"]
    finally:
        for proc in (testbed, agc):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
    final = sum(f for f in newest.values() if f > 1.0) / len([f for f in newest.values() if f > 1.0])
    assert lowest < 59.85  # the trip was felt
    assert abs(final - 60.0) < 0.03, final  # and the AGC brought the frequency back
    assert done["commands"] > 0 and newest.get("G_2", 0.0) == 0.0


@pytest.mark.integration
def test_closed_loop_case_figures_and_verdict(tmp_path, domain):
    """The demo's case on a short scenario: the AGC run on the bus, the droop run from ANDES alone."""
    from gridbus.control.agc import AgcSettings
    from gridbus.experiments.closed_loop import Run, judge_loop, run_once

    path = tmp_path / "trip.toml"
    path.write_text(SCENARIO)
    agc = run_once(path, agc=True, speed=3.0, domain=domain, partition=None, settings=AgcSettings(gain=0.4))
    scenario = empty_scenario("ieee14")
    scenario.events = [Event(t=1.0, kind="generator_trip", object="G_2")]
    ref = run_offline(scenario, 16.0)
    running = [n for n, g in enumerate(ref.gen_ids) if g != "G_2"]
    droop = Run(agc=False, t=ref.t.tolist(), f=np.mean(ref.f[:, running], axis=1).tolist())
    summary = {"droop": droop.figures(1.0), "agc": agc.figures(1.0)}
    verdict = judge_loop(summary)
    assert all(c["pass"] for c in verdict), verdict
    assert summary["agc"]["agc_commands"] > 0 and summary["agc"]["settling_s"] < 15
