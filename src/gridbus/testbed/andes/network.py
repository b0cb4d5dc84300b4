"""The network model of an ANDES case as matrices: branch admittances, Ybus, flows.

The engine needs line currents and flows (ANDES keeps bus voltages, not branch flows)
and the EMS needs the same model a control centre has (its measurement
functions).  Both read it from here, built from the case's ``Line`` and
``Shunt`` parameters with ANDES's own π model: a series admittance ``y``,
shunt halves ``gh + j bh`` (from side, divided by tap²) and ``gk + j bk``, and
an off-nominal tap ``t·e^{jφ}`` on the from side — so flows computed here
from ANDES's voltages match ANDES's equations exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Network:
    """Per-unit (system base) branch and bus admittances of a case, in bus order."""

    bus_idx: list[Any]  # ANDES bus idx, in matrix order
    f: np.ndarray  # from-bus position of each line
    t: np.ndarray  # to-bus position
    Yff: np.ndarray  # complex, per line
    Yft: np.ndarray
    Ytf: np.ndarray
    Ytt: np.ndarray
    shunt: np.ndarray  # complex shunt admittance per bus (g + jb)
    in_service: np.ndarray  # bool per line
    kv: np.ndarray  # nominal kV per bus
    mva: float

    @property
    def n(self) -> int:
        return len(self.bus_idx)

    def ybus(self) -> np.ndarray:
        """The bus admittance matrix (dense: the cases are small)."""
        Y = np.diag(self.shunt.astype(complex))
        on = self.in_service
        f, t = self.f[on], self.t[on]
        np.add.at(Y, (f, f), self.Yff[on])
        np.add.at(Y, (f, t), self.Yft[on])
        np.add.at(Y, (t, f), self.Ytf[on])
        np.add.at(Y, (t, t), self.Ytt[on])
        return Y

    def currents(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Complex per-unit currents into each line at its from and to ends (0 when out)."""
        If = self.Yff * V[self.f] + self.Yft * V[self.t]
        It = self.Ytf * V[self.f] + self.Ytt * V[self.t]
        return np.where(self.in_service, If, 0), np.where(self.in_service, It, 0)

    def flows(self, V: np.ndarray) -> np.ndarray:
        """Complex per-unit power P + jQ into each line at its from end (0 when out).

        S = V_from · conj(I_from) on the system base, so P > 0 when power leaves
        the from bus into the line; ANDES's balanced network makes this the
        three-phase power.
        """
        If, _ = self.currents(V)
        out: np.ndarray = V[self.f] * np.conj(If)
        return out

    def amps(self, per_unit: np.ndarray, bus: np.ndarray) -> np.ndarray:
        """Per-unit currents at buses ``bus`` (positions) in A (RMS, per phase)."""
        out: np.ndarray = np.abs(per_unit) * self.mva * 1e6 / (np.sqrt(3) * self.kv[bus] * 1e3)
        return out

    def volts(self, v: np.ndarray) -> np.ndarray:
        """Per-unit bus voltage magnitudes in V (RMS, phase to neutral)."""
        out: np.ndarray = np.asarray(v) * self.kv * 1e3 / np.sqrt(3)
        return out


def network_of(ss: Any) -> Network:
    """The network of a set-up ANDES system (line status as it stands)."""
    buses = list(ss.Bus.idx.v)
    pos = {b: n for n, b in enumerate(buses)}
    line = ss.Line
    f = np.array([pos[b] for b in line.bus1.v], dtype=int)
    t = np.array([pos[b] for b in line.bus2.v], dtype=int)
    y = 1 / ((line.r.v + 1e-8) + 1j * (line.x.v + 1e-8))
    yh = (line.g1.v + 0.5 * line.g.v) + 1j * (line.b1.v + 0.5 * line.b.v)
    yk = (line.g2.v + 0.5 * line.g.v) + 1j * (line.b2.v + 0.5 * line.b.v)
    tap = line.tap.v * np.exp(1j * line.phi.v)
    shunt = np.zeros(len(buses), dtype=complex)
    shunts = getattr(ss, "Shunt", None)
    if shunts is not None and shunts.n:
        for bus, g, b, u in zip(shunts.bus.v, shunts.g.v, shunts.b.v, shunts.u.v, strict=True):
            shunt[pos[bus]] += u * (g + 1j * b)
    return Network(
        bus_idx=buses,
        f=f,
        t=t,
        Yff=(y + yh) / np.abs(tap) ** 2,
        Yft=-y / np.conj(tap),
        Ytf=-y / tap,
        Ytt=y + yk,
        shunt=shunt,
        in_service=np.asarray(line.u.v, dtype=float) > 0.5,
        kv=np.asarray(ss.Bus.Vn.v, dtype=float),
        mva=float(ss.config.mva),
    )
