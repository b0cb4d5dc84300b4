"""A compliance report on disk: ``report.json`` and the seed's Figure 14 (frequency and ROCOF vs reference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..extras import require
from .suite import Condition, TestReport


def write_report(report: TestReport, out: Path) -> list[Path]:
    """Write ``report.json`` and ``<test>.png`` into ``out`` (created); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / f"{report.test}.png"]
    paths[0].write_text(json.dumps(report.to_json(), indent=2) + "\n")
    plot_condition(report, report.conditions[-1], paths[1])
    return paths


def plot_condition(report: TestReport, condition: Condition, path: Path) -> None:
    """Frequency and ROCOF of one condition's frames against the exact reference (two panels)."""
    matplotlib = require("matplotlib", "the compliance figure")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = condition.series
    _, f_ref, r_ref = condition.signal.reference(series.times)
    fig: Any
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5.5))
    top.plot(series.times, f_ref, "k-", lw=2.5, alpha=0.35, label="reference")
    top.plot(series.times, series.freq, ".-", ms=2, lw=0.8, label=f"{report.pmu} (vPMU, {report.pmu_class} class)")
    top.set_ylabel("frequency (Hz)")
    top.legend(loc="best", fontsize=8)
    bottom.plot(series.times, r_ref, "k-", lw=2.5, alpha=0.35, label="reference")
    bottom.plot(series.times, series.rocof, ".-", ms=2, lw=0.8, label="measured")
    bottom.set_ylabel("ROCOF (Hz/s)")
    bottom.set_xlabel("time (s)")
    verdict = "pass" if condition.passed else "FAIL"
    fig.suptitle(f"{report.test} test, {condition.name}: {verdict} ({report.rate:g} frames/s, {report.f0:g} Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
