"""The reference: the same case and scenario run by ANDES alone, in one call.

The offline run builds the same :class:`~.case.AndesCase` (same events
compiled into the same ANDES models) and lets ANDES integrate to the end by
itself; its stored trajectories are the reference of the closed-loop
experiment and show that stepping in chunks integrates the same model.  It
shares gridbus's scenario compilation, so it cannot catch a wrong event
mapping: the validation of issue 14, item 6 (tests/test_andes_engine.py)
compares the bus with events written for ANDES by hand instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .case import AndesCase
from .scenario import Scenario


@dataclass
class Trajectories:
    """Time series of one run, in SI units: bus voltages (V, phase RMS) and machine frequencies (Hz)."""

    t: np.ndarray
    bus_ids: list[str]
    V: np.ndarray  # (time, bus)
    gen_ids: list[str]
    f: np.ndarray  # (time, machine)

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Voltages and frequencies at ``t`` (linear interpolation between stored steps)."""
        V = np.array([np.interp(t, self.t, self.V[:, n]) for n in range(self.V.shape[1])])
        f = np.array([np.interp(t, self.t, self.f[:, n]) for n in range(self.f.shape[1])])
        return V, f


def run_offline(scenario: Scenario, duration: float, step: float = 1 / 30) -> Trajectories:
    """Run ``scenario`` to ``duration`` with ANDES alone; its trajectories."""
    case = AndesCase(scenario, step=step)
    ss = case.ss
    ss.TDS.config.tf = duration
    ss.TDS.run(no_summary=True)
    ts = ss.dae.ts
    t = np.asarray(ts.t, dtype=float)
    kv = np.asarray(ss.Bus.Vn.v, dtype=float) * 1e3 / np.sqrt(3)
    V = np.asarray(ts.y)[:, ss.Bus.v.a] * kv
    gens = list(case.ids.gen.items())
    f = (
        np.column_stack(
            [
                np.asarray(ts.x)[:, getattr(ss, model).omega.a[getattr(ss, model).idx2uid(idx)]]
                for _, (model, idx) in gens
            ]
        )
        * case.f0
    )
    # a machine out of service reads 0 Hz on the bus (the engine's convention)
    for n, (_, (model, idx)) in enumerate(gens):
        for event in scenario.events:
            if event.kind == "generator_trip" and case.ids.gen.get(event.object) == (model, idx):
                f[t >= event.t, n] = 0.0
    return Trajectories(t=t, bus_ids=list(case.ids.bus), V=V, gen_ids=[g for g, _ in gens], f=f)
