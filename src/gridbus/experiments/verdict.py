"""Did a run reproduce the paper?  One check per expected outcome of each case.

The verdict is computed from ``summary.json``'s own figures, so it can be
re-judged from the file alone, and it is the one source of truth for the
checks: ``gridbus experiment`` prints it and exits 1 when a check fails, and
the test suite asserts it.  All times are simulated seconds (the testbed's
own clock, read from its data), so a machine that is merely busy cannot fail
a check that the physics passed.

Each check is ``{"name", "expected", "measured", "pass"}``.  The bounds are
the paper's (section 7: 700 W slack limit, 114 V minimum load voltage, load
steps and outage times) and this project's synchronizer limits and limiter
reaction time, written next to each check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Summary = dict[str, Any]


def check(name: str, expected: str, measured: Any, passed: bool) -> dict[str, Any]:
    """One expected outcome: ``measured`` is a number or a short text, ``passed`` a plain bool."""
    if isinstance(measured, float) and not math.isfinite(measured):
        measured, passed = None, False  # a figure the run never produced
    return {"name": name, "expected": expected, "measured": measured, "pass": bool(passed)}


def judge(summary: Summary) -> list[dict[str, Any]]:
    """Every check of ``summary``'s case: the common ones, then the case's own."""
    own: dict[str, Callable[[Summary], list[dict[str, Any]]]] = {
        "sync": _sync,
        "load-sharing": _load_sharing,
        "reconfig": _reconfig,
        "synchrophasor": _synchrophasor,
    }
    return _common(summary) + own[summary["case"]](summary)


def reproduced(verdict: list[dict[str, Any]]) -> bool:
    return bool(verdict) and all(c["pass"] for c in verdict)


def failures(verdict: list[dict[str, Any]]) -> list[str]:
    """The failed checks, one readable line each (for an assertion message or a log)."""
    return [f"{c['name']}: expected {c['expected']}, measured {c['measured']}" for c in verdict if not c["pass"]]


# -- checks every case makes -----------------------------------------------------------------
def _common(s: Summary) -> list[dict[str, Any]]:
    faulted = sorted(f"{cid}: {c['reason']}" for cid, c in s["controllers"].items() if c["stage"] == "FAULT")
    ran = (s["ended_at"] - s["ready_at"]) if s["ready_at"] is not None else math.nan
    return [
        check("no controller stopped in FAULT", "none", "; ".join(faulted) or "none", not faulted),
        check("the timeline ran to its end", f">= {s['duration']:g} s after READY", _num(ran), ran >= s["duration"]),
        _closures_within_limits(s),
    ]


def _closures_within_limits(s: Summary) -> dict[str, Any]:
    lim = s["sync_limits"]
    closures = [c for c in s["closures"] if c["breaker"].startswith("CB_G")]
    worst = {key: max((abs(c[key]) for c in closures), default=math.nan) for key in ("df", "dV", "dphi_deg")}
    ok = (
        bool(closures)
        and all(c["fault"] == "NO_FAULT" for c in closures)
        and worst["df"] <= lim["df"]
        and worst["dV"] <= lim["dV"]
        and worst["dphi_deg"] <= lim["dphi_deg"]
    )
    measured = (
        (
            f"{len(closures)} closures, worst |df| {worst['df']:.3f} Hz, |dV| {worst['dV']:.2f} V, "
            f"|dphi| {worst['dphi_deg']:.1f} deg"
        )
        if closures
        else "no generator closure"
    )
    return check(
        "generator closures within the sync limits",
        f"|df| <= {lim['df']:g} Hz, |dV| <= {lim['dV']:g} V, |dphi| <= {lim['dphi_deg']:g} deg",
        measured,
        ok,
    )


# -- case 1: synchronization ---------------------------------------------------------------
def _sync(s: Summary) -> list[dict[str, Any]]:
    order = [c["breaker"] for c in s["closures"] if c["breaker"].startswith("CB_G")]
    faults = [f"{t['breaker']} {t['fault']}" for t in s["trips"] if t["fault"] != "NO_FAULT"]
    return [
        check(
            "G_2, G_3, G_4 synchronized in order",
            "CB_G2 CB_G3 CB_G4",
            " ".join(order) or "none",
            order == ["CB_G2", "CB_G3", "CB_G4"],
        ),
        check(
            "every generator reached READY",
            "G1 G2 G3 G4",
            " ".join(sorted(s["generators_ready_at"])) or "none",
            set(s["generators_ready_at"]) == {"G1", "G2", "G3", "G4"},
        ),
        check("no protective trip", "none", "; ".join(faults) or "none", not faults),
        check("safe shutdown completed", "main controller OFF", s["main_controller"]["stage"], s["shutdown_completed"]),
        check(
            "every breaker open at the end",
            "none closed",
            " ".join(s["breakers_closed_at_end"]) or "none",
            s["breakers_closed_at_end"] == [],
        ),
    ]


# -- case 2: load sharing ------------------------------------------------------------------
def _load_sharing(s: Summary) -> list[dict[str, Any]]:
    limit = s["slack_limit"]
    return [
        check(
            "slack over its limit at 1500 W demand (paper: 900 W)",
            f"peak > {limit:g} W",
            _num(s["slack_peak"]),
            s["slack_peak"] > limit,
        ),
        check(
            "slack above its limit no longer than the reaction time",
            f"<= {s['reaction_time']:g} s",
            _num(s["slack_above_limit_longest"]),
            s["slack_above_limit_longest"] <= s["reaction_time"],
        ),
        check(
            "G_4 injected power at peak demand",
            "> 200 W",
            _num(s["reserve_peak_injection"]),
            s["reserve_peak_injection"] > 200.0,
        ),
        check(
            "G_4 back in reserve after demand fell",
            "|P| < 30 W",
            _num(s["reserve_after_demand_fell"]),
            abs(s["reserve_after_demand_fell"]) < 30.0,
        ),
        check(
            "slack in reverse power no longer than the reaction time",
            f"<= {s['reaction_time']:g} s below 0 W",
            _num(s["slack_reverse_longest"]),
            s["slack_reverse_longest"] <= s["reaction_time"],
        ),
        check(
            "load still supplied after the G_3 outage",
            "900 +/- 20 W",
            _num(s["demand_after_outage"]),
            abs(s["demand_after_outage"] - 900.0) <= 20.0,
        ),
        check(
            "G_3 disconnected at its outage",
            "CB_G3 opened",
            "CB_G3 opened" if any(t["breaker"] == "CB_G3" for t in s["trips"]) else "no",
            any(t["breaker"] == "CB_G3" for t in s["trips"]),
        ),
        check(
            "slack under its limit after the outage (no injection needed)",
            f"< {limit:g} W",
            _num(s["slack_after_outage"]),
            s["slack_after_outage"] < limit,
        ),
        check(
            "frequency held after the outage",
            "min f > 59.5 Hz",
            _num(s["frequency_after_outage_min"], 3),
            s["frequency_after_outage_min"] > 59.5,
        ),
    ]


# -- case 3: reconfiguration ---------------------------------------------------------------
def _reconfig(s: Summary) -> list[dict[str, Any]]:
    limit = s["voltage_limit"]
    before = s.get("load_voltage_before", math.nan)
    after = s.get("load_voltage_after_min", math.nan)
    closed, since = s["ring_closed_at"], s["undervoltage_since"]
    waited = closed - since if closed is not None and since is not None else math.nan
    ring = any(c["breaker"] == "CB_1-6" for c in s["closures"])
    return [
        check("load 4 reached 1700 W", "1700 +/- 20 W", _num(s["load_4_peak"]), abs(s["load_4_peak"] - 1700.0) <= 20.0),
        check("the radial feeder sagged below the limit", f"< {limit:g} V", _num(before), before < limit),
        check("ring closed after 10 s under the limit", ">= 10 s", _num(waited), waited >= 10.0),
        check("TL 1-6 closed (radial to ring)", "CB_1-6 closure", "CB_1-6 closed" if ring else "no", ring),
        check(
            "load voltage at or above the limit after the ring closed",
            f"min >= {limit:g} V",
            _num(after),
            after >= limit,
        ),
    ]


# -- the synchrophasor case ----------------------------------------------------------------
def _synchrophasor(s: Summary) -> list[dict[str, Any]]:
    streams = s["pmu_streams"]
    live = {pmu: v for pmu, v in streams.items() if v["live_at_end"]}
    worst = min((v["completeness"] or 0.0 for v in live.values()), default=math.nan)
    dip = s.get("pmu_f_before", math.nan) - s.get("pmu_f_min_after_step", math.nan)
    recovered = abs(s.get("pmu_f_end", math.nan) - s.get("pmu_f_before", math.nan))
    agree = s.get("pmu_vs_generator_f_p95", math.nan)
    failed = [f"{r['condition']} {r['check']}" for r in s["compliance"]["checks"] if not r["pass"]]
    return [
        check(
            "live PMUs streamed at their rate",
            ">= 2 PMUs, each >= 95 % of frames",
            _num(worst, 1),
            len(live) >= 2 and worst >= 95.0,
        ),
        check("the PMU saw the load step (frequency dip)", "> 0.05 Hz", _num(dip, 3), dip > 0.05),
        check("frequency back after the load returned", "within 0.02 Hz", _num(recovered, 4), recovered <= 0.02),
        check("PMU frequency follows the generator's (p95)", "<= 0.05 Hz", _num(agree, 4), agree <= 0.05),
        check(
            "frame time (SOC/FRACSEC) is the source timestamp",
            "spread <= 1e-4 s",
            _num(s["frame_time_spread"], 7),
            s["frame_time_spread"] <= 1e-4,
        ),
        check(
            "ROCOF sequence compliance (P class, 50 Hz)",
            "TVE <= 1 %, FE <= 0.01 Hz, RFE <= 0.1 Hz/s",
            "; ".join(failed) or "all pass",
            s["compliance"]["pass"],
        ),
    ]


def _num(value: float | None, digits: int = 2) -> float:
    return math.nan if value is None else round(float(value), digits)
