"""The paper's three experiments end to end, judged by their verdict (gridbus.experiments.verdict).

The checks themselves live in one place, the verdict that ``summary.json``
carries and ``gridbus experiment`` prints; these tests run the cases and
require every check to pass, and check that the verdict judges what it
should (a run where the limiter faulted, as it did on a busy machine, fails).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import gridbus

from gridbus.experiments import run_experiment
from gridbus.experiments.verdict import failures, judge
from gridbus.testbed.system import load_system

SPEED = 10.0

CHECKS = {
    "sync": {
        "G_2, G_3, G_4 synchronized in order",
        "every generator reached READY",
        "no protective trip",
        "safe shutdown completed",
        "every breaker open at the end",
    },
    "load-sharing": {
        "slack above its limit no longer than the reaction time",
        "G_4 back in reserve after demand fell",
        "load still supplied after the G_3 outage",
        "slack in reverse power no longer than the reaction time",
        "frequency held after the outage",
    },
    "reconfig": {
        "the radial feeder sagged below the limit",
        "ring closed after 10 s under the limit",
        "load voltage at or above the limit after the ring closed",
    },
}
COMMON = {"no controller stopped in FAULT", "the timeline ran to its end", "generator closures within the sync limits"}


def check_outputs(out, plots):
    summary = json.loads((out / "summary.json").read_text())
    for name in plots:
        assert (out / name).stat().st_size > 10_000, name
    for topic in ("Generator_Measurement", "Breaker_State", "Controller_State"):
        with (out / f"{topic}.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert rows and {"t", "id"} <= set(rows[0])
    return summary


def assert_reproduced(summary):
    names = {c["name"] for c in summary["verdict"]}
    assert COMMON | CHECKS[summary["case"]] <= names
    assert not failures(summary["verdict"]), failures(summary["verdict"])
    assert summary["reproduced"] is True


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_case_2_load_sharing(tmp_path, domain):
    # x5, not x10: its checks time the limiter's reaction (<= 2 simulated s), and at x10 a delivery
    # hiccup of 0.3 s of wall time on this shared 2-core machine is already 3 simulated seconds
    run_experiment("load-sharing", tmp_path, speed=SPEED / 2, domain=domain)
    assert_reproduced(check_outputs(tmp_path, ["load-sharing.png"]))


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_case_3_reconfiguration(tmp_path, domain):
    run_experiment("reconfig", tmp_path, speed=SPEED, domain=domain)
    assert_reproduced(check_outputs(tmp_path, ["reconfig.png"]))


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_case_1_synchronization_reproduces_beside_two_cpu_hogs(tmp_path, domain):
    """Case 1, and issue 10: on a busy machine the run gets slower, not different.

    Two CPU-bound processes beside the testbed and the controllers (on 2 cores)
    starve them; simulated time, read from the testbed's data, slows down with
    them and every check still passes.  Case 1 takes about 25 s this way; case 2,
    the one of the issue, about 95 s (`make demo`'s figures are in the README).
    The same case without the hogs was a test of its own, with a subset of these
    checks: one run of case 1 (16 s) is all the suite's time budget allows.
    """
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        run_experiment("sync", tmp_path, speed=SPEED, domain=domain)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    summary = check_outputs(tmp_path, ["sync.png", "frequencies.png"])
    assert_reproduced(summary)
    assert 0 < summary["effective_speed"] <= SPEED * 1.05


# -- the verdict judges what it should (no DDS: a summary is data) ---------------------------
def load_sharing_summary(**changes):
    """A summary with the figures of a good load-sharing run (from a real one), then ``changes``."""
    summary = {
        "case": "load-sharing",
        "duration": 340.0,
        "ready_at": 41.1,
        "ended_at": 383.4,
        "main_controller": {"stage": "READY", "reason": "all generators running"},
        "controllers": {
            "CTRL_main": {"stage": "READY", "reason": "", "transitions": 20},
            "CTRL_limiter": {"stage": "RESERVE", "reason": "", "transitions": 6},
        },
        "sync_limits": {"df": 0.1, "dV": 3.0, "dphi_deg": 10.0},
        "closures": [
            {"breaker": b, "t": t, "df": 0.01, "dV": 0.01, "dphi_deg": -4.5, "fault": "NO_FAULT"}
            for b, t in (("CB_G2", 19.6), ("CB_G3", 29.8), ("CB_G4", 39.6))
        ],
        "trips": [{"breaker": "CB_G3", "t": 334.2, "fault": "NO_FAULT", "detail": "generator stopped"}],
        "slack_limit": 700.0,
        "slack_peak": 823.7,
        "slack_above_limit_longest": 1.11,
        "reaction_time": 2.0,
        "slack_min": 25.9,
        "slack_reverse_longest": 0.0,
        "reserve_peak_injection": 441.1,
        "reserve_after_demand_fell": -0.02,
        "demand_after_outage": 899.8,
        "slack_after_outage": 605.4,
        "frequency_after_outage_min": 59.99,
    }
    return summary | changes


def verdict_of(summary):
    return {c["name"]: c for c in judge(summary)}


def test_the_verdict_passes_a_good_run_and_names_every_check():
    verdict = verdict_of(load_sharing_summary())
    assert COMMON | CHECKS["load-sharing"] <= set(verdict)
    assert all(c["pass"] for c in verdict.values()), [c for c in verdict.values() if not c["pass"]]
    assert verdict["slack above its limit no longer than the reaction time"] == {
        "name": "slack above its limit no longer than the reaction time",
        "expected": "<= 2 s",
        "measured": 1.11,
        "pass": True,
    }


def test_the_verdict_fails_the_busy_machine_run_of_issue_10():
    """The run that ended with exit 0: limiter faulted on 'stale' data, G_4 stuck, G_1 in reverse."""
    bad = load_sharing_summary(
        controllers={
            "CTRL_limiter": {
                "stage": "FAULT",
                "transitions": 3,
                "reason": "stopped: G_1 measurement is 2.7 s old (limit 2 s): deadline missed",
            }
        },
        slack_above_limit_longest=94.6,
        reserve_after_demand_fell=376.0,
        slack_min=-60.0,
        slack_reverse_longest=80.0,
    )
    verdict = verdict_of(bad)
    failed = {name for name, c in verdict.items() if not c["pass"]}
    assert failed == {
        "no controller stopped in FAULT",
        "slack above its limit no longer than the reaction time",
        "G_4 back in reserve after demand fell",
        "slack in reverse power no longer than the reaction time",
    }
    stopped = verdict["no controller stopped in FAULT"]["measured"]
    assert "CTRL_limiter: stopped: G_1 measurement is 2.7 s old" in stopped
    assert verdict["G_4 back in reserve after demand fell"]["measured"] == 376.0


def test_a_figure_the_run_never_produced_fails_its_check():
    """A run cut short (testbed gone) has no figures after the outage: those checks fail, never pass."""
    verdict = verdict_of(
        load_sharing_summary(ended_at=200.0, demand_after_outage=float("nan"), frequency_after_outage_min=float("nan"))
    )
    assert not verdict["the timeline ran to its end"]["pass"]
    assert verdict["load still supplied after the G_3 outage"] == {
        "name": "load still supplied after the G_3 outage",
        "expected": "900 +/- 20 W",
        "measured": None,
        "pass": False,
    }
    assert not verdict["frequency held after the outage"]["pass"]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_run_that_does_not_reproduce_the_paper_prints_its_failed_checks_and_exits_1(tmp_path, env):
    """Case 1 on a plant without G_4: the startup stops in FAULT, and the command says so."""
    text = Path(load_system().path).read_text()
    start = text.index('[[generator]]\nid = "G_4"')
    system = tmp_path / "no-g4.toml"
    system.write_text(text[:start] + text[text.index("[[microgrid]]", start) :])
    proc = gridbus(
        "experiment",
        "sync",
        "--speed",
        "10",
        "--system",
        str(system),
        "--out",
        str(tmp_path / "out"),
        env=env,
        timeout=55,
    )
    assert proc.returncode == 1, proc.stderr
    assert "sync: did NOT reproduce the paper" in proc.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    failed = {c["name"]: c for c in summary["verdict"] if not c["pass"]}
    assert "no measurement received from G_4" in failed["no controller stopped in FAULT"]["measured"]
    assert {"the timeline ran to its end", "every generator reached READY"} <= set(failed)
    assert summary["reproduced"] is False
