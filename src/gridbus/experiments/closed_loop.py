"""The closed loop on ANDES (issue 14): a generator trip on IEEE 14 with and without AGC.

LTB's Figure 4 loop, peer to peer: ``gridbus testbed --engine andes`` runs the
scenario and publishes through its sensors; an AGC (:class:`gridbus.control.agc.AGC`)
reads the machines' frequency from the bus and sends governor set-points back.
The case runs the scenario twice — droop only, then droop + AGC — and
compares the frequency nadir, the settling time (to within ``BAND`` of
nominal, for good) and the final frequency, with a plot and a verdict.

Times are simulated seconds read from the samples' source timestamps.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bus import Bus
from ..control.agc import AGC, AgcSettings
from ..errors import ExperimentError
from ..extras import require
from ..jsonsafe import finite
from ..testbed.andes.scenario import Scenario, load_scenario, scenario_file
from .verdict import check, reproduced

SCENARIO = "ieee14-gen-trip.toml"
BAND = 0.02  # Hz: "back at nominal" for the settling time
OFFSET = 0.1  # Hz: droop alone must leave at least this much (the problem AGC solves)


@dataclass
class Run:
    """The system frequency seen on the bus during one run."""

    agc: bool
    t: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)
    commands: int = 0

    def figures(self, event_t: float) -> dict[str, Any]:
        t, f = np.array(self.t), np.array(self.f)
        after = t >= event_t
        if not after.any():
            return {"nadir_Hz": math.nan, "nadir_at_s": math.nan, "settling_s": math.nan, "final_Hz": math.nan}
        k = int(np.argmin(np.where(after, f, np.inf)))
        tail = t >= t[-1] - 2.0
        final = float(np.mean(f[tail]))
        outside = np.flatnonzero(after & (np.abs(f - 60.0) > BAND))
        settled = outside.size and outside[-1] + 1 < len(t)
        return {
            "nadir_Hz": round(float(f[k]), 4),
            "nadir_at_s": round(float(t[k]), 3),
            "settling_s": round(float(t[outside[-1] + 1] - event_t), 2) if settled else math.inf,
            "final_Hz": round(final, 4),
            "agc_commands": self.commands,
        }


def run_once(
    scenario: Path, agc: bool, speed: float, domain: int, partition: str | None, settings: AgcSettings | None = None
) -> Run:
    """One run of the scenario on the bus (the testbed in its own process), AGC in this one."""
    cmd = [sys.executable, "-m", "gridbus.cli.main", "testbed", "--engine", "andes", "--scenario", str(scenario)]
    cmd += ["--speed", str(speed), "--domain", str(domain)] + (["--partition", partition] if partition else [])
    run = Run(agc=agc)
    with Bus(domain, partition=partition) as bus:
        machines = bus.reader("G")
        controller = AGC(bus, speed=speed, settings=settings) if agc else None
        log = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith('{"ready"'):
                log.seek(0)
                raise ExperimentError(f"the ANDES testbed did not start: {line.strip()} {log.read().strip()[-500:]}")
            epoch = json.loads(line)["ready"]["epoch"]
            _record(run, machines, controller, proc, epoch, speed)
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
        if controller is not None:
            run.commands = controller.status.commands
    return run


def _record(
    run: Run, machines: Any, controller: AGC | None, proc: subprocess.Popen[str], epoch: float, speed: float
) -> None:
    """Average the running machines' f at each report instant, until the testbed ends."""
    by_stamp: dict[float, list[float]] = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = proc.poll() is not None
        samples = machines.take(0.02)
        if controller is not None:
            controller.ingest(samples)
            controller.ingest(controller.states.take(0))
            if controller.due():
                controller.update(controller.newest)
        for s in samples:
            if s.f > 1.0:  # a stopped machine reads 0 Hz (plus sensor noise)
                by_stamp.setdefault(round(s.source_time, 6), []).append(float(s.f))
        if done:
            break
    for stamp in sorted(by_stamp):
        run.t.append((stamp - epoch) * speed)
        run.f.append(sum(by_stamp[stamp]) / len(by_stamp[stamp]))


def sensor_effect(droop: Run, scenario: Scenario) -> dict[str, float]:
    """How far the bus's frequency (sensors: noise, delay, loss) is from ANDES alone, droop run.

    With perfect sensors the two agree (the validation test); what is left here is the
    configured sensors' effect: noise (RMS where the frequency is steady) and delay (the
    worst difference, during the fall).
    """
    from ..testbed.andes.offline import run_offline

    ref = run_offline(scenario, max(droop.t[-1], 1.0) if droop.t else scenario.duration)
    running = [
        n for n, g in enumerate(ref.gen_ids) if not any(e.object == g and "trip" in e.kind for e in scenario.events)
    ]
    exact = np.interp(droop.t, ref.t, np.mean(ref.f[:, running], axis=1))
    diff = np.array(droop.f) - exact
    steady = np.array(droop.t) > (droop.t[-1] - 5.0)
    return {
        "rms_Hz": round(float(np.sqrt(np.mean(diff**2))), 5),
        "max_Hz": round(float(np.max(np.abs(diff))), 5),
        "steady_rms_Hz": round(float(np.sqrt(np.mean(diff[steady] ** 2))), 5),
    }


def judge_loop(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The closed loop's checks: droop leaves an offset, AGC removes it, the nadir is the droop's."""
    droop, agc = summary["droop"], summary["agc"]
    return [
        check(
            "droop alone leaves a frequency offset",
            f"|60 - final| > {OFFSET} Hz",
            droop["final_Hz"],
            abs(60 - droop["final_Hz"]) > OFFSET,
        ),
        check("AGC restores 60 Hz", f"|60 - final| < {BAND} Hz", agc["final_Hz"], abs(60 - agc["final_Hz"]) < BAND),
        check(
            "AGC settles within the run",
            f"within {BAND} Hz for good",
            agc["settling_s"],
            math.isfinite(agc["settling_s"]),
        ),
        check(
            "AGC does not deepen the nadir (it acts after the governors)",
            "nadir(AGC) >= nadir(droop) - 0.02 Hz",
            agc["nadir_Hz"],
            agc["nadir_Hz"] >= droop["nadir_Hz"] - 0.02,
        ),
    ]


def run_closed_loop(
    out: Path, speed: float = 4.0, domain: int = 0, partition: str | None = None, scenario: Path | None = None
) -> dict[str, Any]:
    """Both runs, the CSV, the plot and ``summary.json`` (with its verdict) in ``out``."""
    path = scenario or scenario_file(SCENARIO)
    chosen: Scenario = load_scenario(path)
    event_t = chosen.events[0].t if chosen.events else 0.0
    out.mkdir(parents=True, exist_ok=True)
    runs = {name: run_once(path, name == "agc", speed, domain, partition) for name in ("droop", "agc")}
    summary: dict[str, Any] = {
        "case": "closed-loop",
        "title": chosen.title or chosen.name,
        "scenario": str(path),
        "speed": speed,
        **{name: run.figures(event_t) for name, run in runs.items()},
    }
    summary["sensor_effect"] = sensor_effect(runs["droop"], chosen)
    summary["verdict"] = judge_loop(summary)
    summary["reproduced"] = reproduced(summary["verdict"])
    summary["files"] = [_write_csv(runs, out), _plot(runs, out, event_t, summary), "summary.json"]
    (out / "summary.json").write_text(json.dumps(finite(summary), indent=2) + "\n")
    return summary


def _write_csv(runs: dict[str, Run], out: Path) -> str:
    with (out / "frequency.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "t", "f"])
        for name, run in runs.items():
            writer.writerows([name, f"{t:.4f}", f"{f:.6f}"] for t, f in zip(run.t, run.f, strict=True))
    return "frequency.csv"


def _plot(runs: dict[str, Run], out: Path, event_t: float, summary: dict[str, Any]) -> str:
    require("matplotlib", "the closed-loop plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = {"droop": "governor droop only", "agc": "droop + AGC"}
    for name, run in runs.items():
        fig_ = summary[name]
        ax.plot(
            run.t, run.f, label=f"{labels[name]} (nadir {fig_['nadir_Hz']:.3f} Hz, final {fig_['final_Hz']:.3f} Hz)"
        )
    ax.axvline(event_t, color="grey", linestyle=":", label="generator trip")
    ax.axhspan(60 - BAND, 60 + BAND, color="green", alpha=0.1, label=f"60 Hz ± {BAND} Hz")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("system frequency (Hz)")
    ax.set_title(summary["title"])
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "frequency.png", dpi=120)
    plt.close(fig)
    return "frequency.png"
