"""The synchrophasor case's figures, plot and compliance run (see :func:`.cases.synchrophasor`).

From the recorded ``PMU_Measurement`` frames (the testbed's PMUs) it reports,
per PMU, how complete the stream was at its reporting rate, what PMU_1 (the
slack's bus) saw of the load step (frequency dip and recovery, voltage, ROCOF), how
closely its frequency follows the slack generator's own measurement, and
whether every frame's SOC/FRACSEC is the instant its source timestamp carries.
Beside it, the compliance test of the seed (ROCOF sequence at 50 Hz, P class)
runs on a virtual PMU, and its report lands in ``compliance/``.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..c37time import from_soc_fracsec
from ..pmu.report import write_report
from ..pmu.suite import TestReport, run_test
from .result import Result

REFERENCE_PMU = "PMU_1"  # on Bus_1, the slack's bus
STEP_AT, STEP_END = 5.0, 15.0  # s after READY (the case's timeline)


def compliance() -> TestReport:
    """The seed's compliance run: 50 Hz, +2 Hz over 1 s, hold 10 s, -2 Hz over 1 s; P class, 50 frames/s."""
    return run_test("PMU_vpmu", "rocof", 50.0, 50.0, "P")


def _frames(result: Result) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    out: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for t, object_id, fields in result.recording.rows.get("PMU_Measurement", []):
        out.setdefault(object_id, []).append((t, fields))
    return out


def summarize(result: Result) -> dict[str, Any]:
    """The case's own figures for ``summary.json`` (the verdict judges them)."""
    r0 = result.ready_at if result.ready_at is not None else math.nan
    frames = _frames(result)
    streams: dict[str, dict[str, Any]] = {}
    offsets: list[float] = []
    for pmu, rows in sorted(frames.items()):
        t = np.array([row[0] for row in rows])
        live = [not (f["stat"] & 0xC000) for _, f in rows]
        spacing = float(np.median(np.diff(t))) if len(t) > 2 else math.nan
        window = t >= r0
        # frames come a window late (1.5 cycles): count up to the newest frame, not the run's end
        expected = (t[-1] - r0) / spacing + 1 if spacing > 0 and len(t) else math.nan
        streams[pmu] = {
            "frames": int(window.sum()),
            "rate": round(1 / spacing, 2) if spacing > 0 else None,
            "completeness": round(min(100.0, 100 * int(window.sum()) / expected), 1) if expected > 0 else None,
            "live_at_end": bool(live[-1]) if live else False,
        }
        # a frame's UTC time minus its simulated time / speed is the run's epoch: the same for every frame
        offsets += [from_soc_fracsec(f["soc"], f["fracsec"]) - tt / result.speed for tt, f in rows]
    out: dict[str, Any] = {
        "pmu_streams": streams,
        "frame_time_spread": float(np.ptp(offsets)) if offsets else math.nan,
    }
    out |= _step_seen(result, frames.get(REFERENCE_PMU, []), r0)
    report = compliance()
    out["compliance"] = {"test": report.test, "pass": report.passed, "checks": report.rows()}
    return out


def _step_seen(result: Result, rows: list[tuple[float, dict[str, Any]]], r0: float) -> dict[str, Any]:
    """What the reference PMU saw of the step, and its frequency against the slack generator's."""
    if not rows:
        return {"reference_pmu": REFERENCE_PMU}
    t = np.array([row[0] for row in rows])
    f = np.array([row[1]["freq"] for row in rows])
    v = np.array([row[1]["magnitude"][0] if row[1]["magnitude"] else math.nan for row in rows])
    rocof = np.array([row[1]["rocof"] for row in rows])
    before = (t >= r0 + 1.0) & (t < r0 + STEP_AT)
    during = (t >= r0 + STEP_AT) & (t < r0 + STEP_END)
    tg, fg = result.recording.series("Generator_Measurement", "G_1", "f")
    settled = (t >= r0 + 1.0) & (t <= result.ended_at)
    agree = np.abs(f[settled] - np.interp(t[settled], tg, fg)) if len(tg) and settled.any() else np.array([])
    return {
        "reference_pmu": REFERENCE_PMU,
        "pmu_f_before": _mean(f[before]),
        "pmu_f_min_after_step": float(f[during].min()) if during.any() else math.nan,
        "pmu_f_end": _mean(f[t >= r0 + STEP_END + 5.0]),
        "pmu_V_before": _mean(v[before]),
        "pmu_V_during": _mean(v[during & (t >= r0 + STEP_AT + 2.0)]),
        "pmu_rocof_min_after_step": float(rocof[during].min()) if during.any() else math.nan,
        "pmu_vs_generator_f_p95": float(np.percentile(agree, 95)) if len(agree) else math.nan,
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def plot(result: Result, out: Path, plt: ModuleType) -> list[str]:
    """``synchrophasor.png`` (PMU frequency, VA magnitude, ROCOF) and ``compliance/`` (report.json, PNG)."""
    frames = _frames(result)
    start = (result.ready_at or 0.0) + 1.0  # from READY on: the energising transients would dwarf the step
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for pmu, rows in sorted(frames.items()):
        live = [(t, f) for t, f in rows if not f["stat"] & 0xC000 and t >= start]
        if not live:
            continue
        t = [row[0] for row in live]
        axes[0].plot(t, [f["freq"] for _, f in live], lw=0.8, label=pmu)
        axes[1].plot(t, [f["magnitude"][0] for _, f in live], lw=0.8, label=pmu)
        axes[2].plot(t, [f["rocof"] for _, f in live], lw=0.6, label=pmu)
    tg, fg = result.recording.series("Generator_Measurement", "G_1", "f")
    keep = [n for n, t in enumerate(tg) if t >= start]
    axes[0].plot([tg[n] for n in keep], [fg[n] for n in keep], "k--", lw=0.8, label="G_1 (generator measurement)")
    axes[0].set_ylabel("frequency (Hz)")
    axes[1].set_ylabel("VA magnitude (V)")
    axes[2].set_ylabel("ROCOF (Hz/s)")
    axes[2].set_xlabel("time (s)")
    if result.ready_at is not None:
        for ax in axes:
            for at in (STEP_AT, STEP_END):
                ax.axvline(result.ready_at + at, color="grey", lw=0.6, ls=":")
    for ax in axes:
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Synchrophasors: load 1 600 -> 1500 -> 600 W seen by the testbed's PMUs (C37.118 frames)")
    fig.tight_layout()
    fig.savefig(out / "synchrophasor.png", dpi=90)
    written = write_report(compliance(), out / "compliance")
    return ["synchrophasor.png", *(str(p.relative_to(out)) for p in written)]
