"""An experiment's outputs: CSV per topic, figures like the paper's, and the summary."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..extras import require
from . import synchrophasor
from .cases import SlackLimiter, VoltageReconfiguration
from .result import Recording, Result
from .verdict import judge, reproduced

if TYPE_CHECKING:  # matplotlib is an extra: imported where plots are drawn
    from matplotlib.figure import Figure


# -- CSV ----------------------------------------------------------------------------------
def write_csv(result: Result, out: Path) -> list[str]:
    """One CSV per recorded topic: t (simulated s), id, then the topic's fields."""
    written = []
    for topic, rows in sorted(result.recording.rows.items()):
        if not rows:
            continue
        names = list(rows[0][2])
        path = out / f"{topic}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["t", "id", *names])
            for t, object_id, fields in rows:
                writer.writerow([f"{t:.4f}", object_id, *(_cell(fields.get(n)) for n in names)])
        written.append(path.name)
    return written


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


# -- summary ------------------------------------------------------------------------------
def summarize(result: Result) -> dict[str, Any]:
    rec = result.recording
    limits = result.case.plan.limits
    protection = rec.rows.get("Breaker_Protection", [])
    closures = [
        {
            "breaker": i,
            "t": round(t, 2),
            "df": f["df"],
            "dV": f["dV"],
            "dphi_deg": math.degrees(f["dphi"]),
            "fault": f["fault"],
        }
        for t, i, f in protection
        if not f["trip"]
    ]
    trips = [
        {"breaker": i, "t": round(t, 2), "fault": f["fault"], "detail": f["detail"]}
        for t, i, f in protection
        if f["trip"]
    ]
    controllers: dict[str, dict[str, Any]] = {}
    for _t, i, f in rec.rows.get("Controller_State", []):
        entry = controllers.setdefault(i, {"transitions": 0})
        entry.update(transitions=entry["transitions"] + 1, stage=f["stage"], reason=f["reason"])
    summary: dict[str, Any] = {
        "case": result.case.name,
        "title": result.case.title,
        "figures": result.case.figures,
        "speed": result.speed,
        "effective_speed": _round(result.effective_speed),
        "wall_seconds": _round(result.wall_seconds, 1),
        "duration": result.case.duration,
        "partition": result.partition,
        "ready_at": _round(result.ready_at),
        "ended_at": round(result.ended_at, 2),
        "main_controller": {"stage": result.main.stage, "reason": result.main.reason},
        "sync_limits": {"df": limits.df, "dV": limits.dV, "dphi_deg": limits.dphi},
        "closures": closures,
        "trips": trips,
        "closures_within_limits": all(
            abs(c["df"]) <= limits.df and abs(c["dV"]) <= limits.dV and abs(c["dphi_deg"]) <= limits.dphi
            for c in closures
            if c["breaker"].startswith("CB_G")
        ),
        "controllers": controllers,
        "events": [{"t": round(t, 2), "event": text} for t, text in result.events],
    }
    extra = {
        "sync": _sync,
        "load-sharing": _load_sharing,
        "reconfig": _reconfig,
        "synchrophasor": synchrophasor.summarize,
    }[result.case.name]
    summary.update(extra(result))
    summary["verdict"] = judge(summary)
    summary["reproduced"] = reproduced(summary["verdict"])
    return summary


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _window(rec: Recording, topic: str, object_id: str, name: str, start: float, end: float) -> np.ndarray:
    times, values = rec.series(topic, object_id, name)
    t, v = np.array(times), np.array(values, dtype=float)
    return v[(t >= start) & (t <= end)] if len(t) else np.array([])


def _sync(result: Result) -> dict[str, Any]:
    rec = result.recording
    ready: dict[str, float] = {}
    for t, i, f in rec.rows.get("Controller_State", []):
        if f["stage"] == "READY" and i.startswith("CTRL_G"):
            ready.setdefault(i.removeprefix("CTRL_"), round(t, 2))
    final: dict[str, str] = {}
    for _t, i, f in rec.rows.get("Breaker_State", []):
        final[i] = f["status"]
    return {
        "generators_ready_at": ready,
        "shutdown_completed": result.main.stage == "OFF",
        "breakers_closed_at_end": sorted(cb for cb, s in final.items() if s == "CLOSED"),
    }


def _load_sharing(result: Result) -> dict[str, Any]:
    rec, r0 = result.recording, result.ready_at or 0.0
    limiter = next(c for c in result.controllers if isinstance(c, SlackLimiter))
    times, powers = rec.series("Generator_Measurement", "G_1", "P")
    t, p = np.array(times), np.array(powers, dtype=float)
    after = t >= r0
    t, p = t[after], p[after]
    episodes = _episodes(t, p > limiter.limit)
    reverse = _episodes(t, p < 0.0)
    end = result.ended_at
    p4_peak = _window(rec, "Generator_Measurement", "G_4", "P", r0 + 115, r0 + 215)
    p4_reserve = _window(rec, "Generator_Measurement", "G_4", "P", r0 + 245, r0 + 290)
    demand = (
        (
            _window(rec, "Load_Measurement", "L_1", "P", r0 + 305, end).mean()
            + _window(rec, "Load_Measurement", "L_3", "P", r0 + 305, end).mean()
        )
        if end > r0 + 305
        else math.nan
    )
    f_after = _window(rec, "Generator_Measurement", "G_1", "f", r0 + 305, end)
    slack_after = _window(rec, "Generator_Measurement", "G_1", "P", r0 + 305, end)
    return {
        "slack_limit": limiter.limit,
        "slack_peak": float(p.max()) if len(p) else math.nan,
        "slack_above_limit_longest": max(episodes, default=0.0),
        "slack_above_limit_total": float(sum(episodes)),
        "slack_above_limit_episodes": len(episodes),
        "reaction_time": limiter.reaction_time,
        "slack_min": float(p.min()) if len(p) else math.nan,
        "slack_reverse_longest": max(reverse, default=0.0),
        "reserve_peak_injection": float(p4_peak.max()) if len(p4_peak) else math.nan,
        "reserve_after_demand_fell": float(np.mean(p4_reserve)) if len(p4_reserve) else math.nan,
        "demand_after_outage": float(demand),
        "slack_after_outage": float(np.mean(slack_after)) if len(slack_after) else math.nan,
        "frequency_after_outage_min": float(f_after.min()) if len(f_after) else math.nan,
    }


def _episodes(t: np.ndarray, above: np.ndarray) -> list[float]:
    """Durations of the runs where ``above`` holds (each at least one sample spacing)."""
    spans, start = [], None
    spacing = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    for n, flag in enumerate(above):
        if flag and start is None:
            start = n
        if start is not None and (not flag or n == len(above) - 1):
            last = n - 1 if not flag else n
            spans.append(float(t[last] - t[start]) + spacing)
            start = None
    return spans


def _reconfig(result: Result) -> dict[str, Any]:
    rec = result.recording
    ctrl = next(c for c in result.controllers if isinstance(c, VoltageReconfiguration))
    out: dict[str, Any] = {
        "voltage_limit": ctrl.limit,
        "ring_closed_at": _round(ctrl.closed_at),
        "undervoltage_since": _round(ctrl.triggered_at),
    }
    if ctrl.closed_at is not None:
        before = _window(rec, "Busbar_Measurement", "Bus_7", "Va", ctrl.closed_at - ctrl.hold, ctrl.closed_at - 0.2)
        after = _window(rec, "Busbar_Measurement", "Bus_7", "Va", ctrl.closed_at + 2.0, result.ended_at)
        out |= {
            "load_voltage_before": float(before.mean()),
            "load_voltage_before_min": float(before.min()),
            "load_voltage_after": float(after.mean()),
            "load_voltage_after_min": float(after.min()),
        }
    load = _window(rec, "Load_Measurement", "L_4", "P", 0, result.ended_at)
    out["load_4_peak"] = float(load.max()) if len(load) else math.nan
    return out


# -- figures ------------------------------------------------------------------------------
def write_plots(result: Result, out: Path) -> list[str]:
    matplotlib = require("matplotlib", "the experiment's figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    draw = {
        "sync": _plot_sync,
        "load-sharing": _plot_load_sharing,
        "reconfig": _plot_reconfig,
        "synchrophasor": synchrophasor.plot,
    }
    names = draw[result.case.name](result, out, plt)
    plt.close("all")
    return names


def _finish(fig: Figure, out: Path, name: str, result: Result) -> None:
    """Show simulated time from 0 to the end of the run, and save."""
    for ax in fig.axes:
        ax.set_xlim(0.0, result.ended_at)
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)


def _plot_sync(result: Result, out: Path, plt: ModuleType) -> list[str]:
    rec = result.recording
    fig, axes = plt.subplots(5, 1, figsize=(10, 13), sharex=True)
    for n, gid in enumerate(("G_1", "G_2", "G_3", "G_4")):
        ax = axes[n]
        t, v = rec.series("Generator_Measurement", gid, "Va")
        ax.plot(t, v, color="tab:blue", label="voltage (V)")
        ax.set_ylabel(f"{gid}  V (V)")
        twin = ax.twinx()
        t, f = rec.series("Generator_Measurement", gid, "f")
        twin.plot(t, f, color="tab:orange", label="frequency (Hz)")
        twin.set_ylabel("f (Hz)")
        t, s = rec.series("Breaker_State", f"CB_{gid.replace('_', '')}", "status")
        if t:
            ax.step(
                t,
                [130 if x == "CLOSED" else 0 for x in s],
                where="post",
                color="tab:green",
                label="sync switch (closed)",
            )
        ax.legend(loc="lower right", fontsize=7)
    for gid in ("G_1", "G_2", "G_3", "G_4"):
        axes[4].plot(*rec.series("Generator_Measurement", gid, "P"), label=gid)
    axes[4].set_ylabel("P (W)")
    axes[4].set_xlabel("time (s)")
    axes[4].legend(fontsize=7)
    fig.suptitle("Case 1: generator synchronization (cf. Figure 16)")
    _finish(fig, out, "sync.png", result)
    fig, ax = plt.subplots(figsize=(10, 4))
    for gid in ("G_1", "G_2", "G_3", "G_4"):
        ax.plot(*rec.series("Generator_Measurement", gid, "f"), label=gid)
    ax.set_ylim(59.0, 61.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.legend()
    ax.set_title("Generator frequencies (cf. Figure 17)")
    _finish(fig, out, "frequencies.png", result)
    return ["sync.png", "frequencies.png"]


def _plot_load_sharing(result: Result, out: Path, plt: ModuleType) -> list[str]:
    rec = result.recording
    fig, axes = plt.subplots(5, 1, figsize=(10, 12), sharex=True)
    t1, p1 = rec.series("Load_Measurement", "L_1", "P")
    t3, p3 = rec.series("Load_Measurement", "L_3", "P")
    if t1:
        axes[0].plot(t1, np.array(p1) + np.interp(t1, t3, p3) if t3 else p1)
    axes[0].set_ylabel("load (W)")
    for n, gid in enumerate(("G_1", "G_2", "G_3", "G_4"), start=1):
        axes[n].plot(*rec.series("Generator_Measurement", gid, "P"))
        axes[n].set_ylabel(f"{gid} P (W)")
    axes[1].axhline(700.0, color="red", linestyle="--", linewidth=0.8, label="slack limit")
    axes[1].legend(fontsize=7)
    axes[4].set_xlabel("time (s)")
    fig.suptitle("Case 2: load sharing (cf. Figure 18)")
    _finish(fig, out, "load-sharing.png", result)
    return ["load-sharing.png"]


def _plot_reconfig(result: Result, out: Path, plt: ModuleType) -> list[str]:
    rec = result.recording
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for gid in ("G_1", "G_2"):
        axes[0].plot(*rec.series("Generator_Measurement", gid, "P"), label=gid)
    axes[0].set_ylabel("P (W)")
    axes[0].legend()
    axes[1].plot(*rec.series("Load_Measurement", "L_4", "P"))
    axes[1].set_ylabel("load 4 P (W)")
    axes[2].plot(*rec.series("Busbar_Measurement", "Bus_7", "Va"))
    axes[2].axhline(114.0, color="red", linestyle="--", linewidth=0.8, label="114 V limit")
    axes[2].set_ylim(108.0, 122.0)
    axes[2].set_ylabel("load 4 voltage (V)")
    axes[2].set_xlabel("time (s)")
    axes[2].legend()
    fig.suptitle("Case 3: topology reconfiguration (cf. Figure 19)")
    _finish(fig, out, "reconfig.png", result)
    return ["reconfig.png"]
