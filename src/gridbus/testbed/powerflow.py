"""AC power flow (Newton-Raphson, polar form) for one electrical island, in numpy.

The network is a balanced three-phase system solved per phase in per unit.
Buses are of three kinds: the reference bus (voltage magnitude and angle
fixed; it takes the power mismatch), PV buses (a machine holding its terminal
voltage and delivering a given active power) and PQ buses (loads, converters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REF, PV, PQ = 0, 1, 2


@dataclass
class PowerFlowResult:
    V: np.ndarray  # complex bus voltages, pu
    S: np.ndarray  # complex power injected at each bus, pu
    converged: bool
    iterations: int


def solve(
    Y: np.ndarray, kind: np.ndarray, P: np.ndarray, Q: np.ndarray, V0: np.ndarray, tol: float = 1e-9, max_iter: int = 20
) -> PowerFlowResult:
    """Solve for the bus voltages given the admittance matrix ``Y`` (pu).

    ``P``/``Q`` are the specified injections (generation minus load, pu) at PV/PQ
    buses; ``V0`` holds the starting point and, at REF/PV buses, the magnitudes
    to hold (and the angle of the REF bus).
    """
    pv_pq = np.flatnonzero(kind != REF)
    pq = np.flatnonzero(kind == PQ)
    Vm = np.abs(V0).astype(float)
    Va = np.angle(V0).astype(float)
    n_a = len(pv_pq)
    for iteration in range(max_iter + 1):
        V = Vm * np.exp(1j * Va)
        current = Y @ V
        S = V * np.conj(current)
        mismatch = np.concatenate([P[pv_pq] - S.real[pv_pq], Q[pq] - S.imag[pq]])
        if mismatch.size == 0 or np.max(np.abs(mismatch)) < tol:
            return PowerFlowResult(V, S, True, iteration)
        if iteration == max_iter:
            break
        dS_dVm, dS_dVa = _derivatives(Y, V, current)
        J = np.block(
            [
                [dS_dVa.real[np.ix_(pv_pq, pv_pq)], dS_dVm.real[np.ix_(pv_pq, pq)]],
                [dS_dVa.imag[np.ix_(pq, pv_pq)], dS_dVm.imag[np.ix_(pq, pq)]],
            ]
        )
        try:
            step = np.linalg.solve(J, mismatch)
        except np.linalg.LinAlgError:
            break
        Va[pv_pq] += step[:n_a]
        Vm[pq] += step[n_a:]
    V = Vm * np.exp(1j * Va)
    return PowerFlowResult(V, V * np.conj(Y @ V), False, max_iter)


def _derivatives(Y: np.ndarray, V: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """∂S/∂|V| and ∂S/∂θ (the MATPOWER formulation)."""
    diag_V = np.diag(V)
    diag_I = np.diag(current)
    diag_Vn = np.diag(V / np.abs(V))
    dS_dVm = diag_V @ np.conj(Y @ diag_Vn) + np.conj(diag_I) @ diag_Vn
    dS_dVa = 1j * diag_V @ np.conj(diag_I - Y @ diag_V)
    return dS_dVm, dS_dVa
