"""Measurement functions of the state estimator: what each measurement is, given the state.

The state is every bus's voltage magnitude and angle (per unit, the angle of
the reference bus fixed at 0).  The measurements an EMS gets from the bus:

* ``V`` — a bus voltage magnitude (Busbar, a PMU's magnitude);
* ``A`` — a bus angle (a PMU's, relative to the reference PMU);
* ``P``/``Q`` — a bus injection (its machines minus its loads; a bus with
  neither is a zero injection, known exactly);
* ``I`` — a line current magnitude at its from end (Line);
* ``PF``/``QF`` — a line's power flow into it at its from end (Line ``P``/``Q``).

Derivatives are MATPOWER's (``dSbus_dV``, ``dIbr_dV``, ``dSbr_dV``), in polar coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..testbed.andes.network import Network

KINDS = ("V", "A", "P", "Q", "I", "PF", "QF")


@dataclass
class Measurements:
    """The measurement vector's layout: name, kind and where (bus or line position) of each entry."""

    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    where: list[int] = field(default_factory=list)

    def add(self, name: str, kind: str, where: int) -> None:
        self.names.append(name)
        self.kinds.append(kind)
        self.where.append(where)

    def __len__(self) -> int:
        return len(self.names)


class MeasurementModel:
    """``h(x)`` and its Jacobian ``H(x)`` for a network and a measurement layout."""

    def __init__(self, net: Network, layout: Measurements, reference: int) -> None:
        self.net, self.layout, self.reference = net, layout, reference
        self.Y = net.ybus()
        n, on = net.n, net.in_service
        self.Yf = np.zeros((len(net.f), n), dtype=complex)
        rows = np.arange(len(net.f))
        self.Yf[rows, net.f] += np.where(on, net.Yff, 0)
        self.Yf[rows, net.t] += np.where(on, net.Yft, 0)
        self.Cf = np.zeros((len(net.f), n))  # from-bus incidence
        self.Cf[rows, net.f] = 1.0
        kinds = np.array(layout.kinds)
        where = np.array(layout.where, dtype=int)
        self.sel = {k: np.flatnonzero(kinds == k) for k in KINDS}
        self.at = {k: where[self.sel[k]] for k in KINDS}
        # the reference angle is not a state: columns of every angle but the reference, then magnitudes
        self.angle_cols = np.array([b for b in range(n) if b != reference], dtype=int)

    @property
    def n_states(self) -> int:
        return len(self.angle_cols) + self.net.n

    def voltage(self, x: np.ndarray) -> np.ndarray:
        """Complex bus voltages of state ``x``."""
        theta = np.zeros(self.net.n)
        theta[self.angle_cols] = x[: len(self.angle_cols)]
        V: np.ndarray = x[len(self.angle_cols) :] * np.exp(1j * theta)
        return V

    def state_of(self, V: np.ndarray) -> np.ndarray:
        """The state vector of complex voltages ``V`` (angles taken relative to the reference)."""
        theta = np.angle(V * np.exp(-1j * np.angle(V[self.reference])))
        return np.concatenate([theta[self.angle_cols], np.abs(V)])

    def h(self, x: np.ndarray) -> np.ndarray:
        V = self.voltage(x)
        S = V * np.conj(self.Y @ V)
        out = np.empty(len(self.layout))
        out[self.sel["V"]] = np.abs(V[self.at["V"]])
        out[self.sel["A"]] = np.angle(V[self.at["A"]])
        out[self.sel["P"]] = S.real[self.at["P"]]
        out[self.sel["Q"]] = S.imag[self.at["Q"]]
        If = self.Yf @ V
        out[self.sel["I"]] = np.abs(If)[self.at["I"]]
        Sf = V[self.net.f] * np.conj(If)
        out[self.sel["PF"]] = Sf.real[self.at["PF"]]
        out[self.sel["QF"]] = Sf.imag[self.at["QF"]]
        return out

    def H(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian ``dh/dx`` (dense: the cases are small)."""
        V = self.voltage(x)
        Vm = np.abs(V)
        n = self.net.n
        Ibus = self.Y @ V
        dS_da = 1j * np.diag(V) @ np.conj(np.diag(Ibus) - self.Y @ np.diag(V))
        dS_dm = np.diag(V) @ np.conj(self.Y @ np.diag(V / Vm)) + np.conj(np.diag(Ibus)) @ np.diag(V / Vm)
        If = self.Yf @ V
        dI_da = self.Yf @ np.diag(1j * V)
        dI_dm = self.Yf @ np.diag(V / Vm)
        Imag = np.maximum(np.abs(If), 1e-9)
        dIm_da = np.real(np.conj(If)[:, None] * dI_da) / Imag[:, None]
        dIm_dm = np.real(np.conj(If)[:, None] * dI_dm) / Imag[:, None]
        dSf_da, dSf_dm = self._flow_derivatives(V, If)
        full = np.zeros((len(self.layout), 2 * n))
        eye = np.eye(n)
        full[self.sel["V"], n:] = eye[self.at["V"]]
        full[self.sel["A"], :n] = eye[self.at["A"]]
        full[self.sel["P"]] = np.hstack([dS_da.real, dS_dm.real])[self.at["P"]]
        full[self.sel["Q"]] = np.hstack([dS_da.imag, dS_dm.imag])[self.at["Q"]]
        full[self.sel["I"]] = np.hstack([dIm_da, dIm_dm])[self.at["I"]]
        full[self.sel["PF"]] = np.hstack([dSf_da.real, dSf_dm.real])[self.at["PF"]]
        full[self.sel["QF"]] = np.hstack([dSf_da.imag, dSf_dm.imag])[self.at["QF"]]
        return np.hstack([full[:, self.angle_cols], full[:, n:]])

    def _flow_derivatives(self, V: np.ndarray, If: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """∂S_from/∂θ and ∂S_from/∂|V| of every line's from-end flow (MATPOWER's ``dSbr_dV``)."""
        dV_da, dV_dm = 1j * V, V / np.abs(V)
        Vf = V[self.net.f][:, None]
        conj_If = np.conj(If)[:, None]
        dSf_da = conj_If * self.Cf * dV_da + Vf * np.conj(self.Yf * dV_da)
        dSf_dm = conj_If * self.Cf * dV_dm + Vf * np.conj(self.Yf * dV_dm)
        return dSf_da, dSf_dm
