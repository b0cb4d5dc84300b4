"""Weighted least squares state estimation with bad-data detection.

Gauss-Newton on ``J(x) = Σ ((z - h(x)) / σ)²``.  Bad data: ``J`` above the
chi-square quantile for the redundancy (``m - n`` degrees of freedom) says
*something* is wrong; the largest normalised residual
``r_i / sqrt(Ω_ii)`` (``Ω = R - H G⁻¹ Hᵀ``, the residual covariance) says
*what* (Abur & Expósito, ch. 5).  A measurement whose residual cannot be
tested (``Ω_ii ≈ 0``: a critical measurement) is never blamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np

from .model import MeasurementModel

CONFIDENCE = 0.99
LNR_LIMIT = 3.0  # a normalised residual above this is bad data


@dataclass
class Estimate:
    """What one estimation found."""

    x: np.ndarray
    V: np.ndarray  # complex per-unit voltages
    converged: bool
    iterations: int
    residuals: np.ndarray  # z - h(x), in the measurements' units
    normalized: np.ndarray  # r / sqrt(Omega_ii) (0 where not testable)
    objective: float
    dof: int
    chi2_limit: float
    bad: int | None  # index of the largest normalised residual when bad data is detected
    removed: list[int] = field(default_factory=list)  # bad measurements left out of this estimate
    largest: float = 0.0  # |r_N| that named the first bad measurement (else the largest one)

    @property
    def bad_data(self) -> bool:
        return self.bad is not None


def chi2_quantile(p: float, dof: int) -> float:
    """The chi-square quantile (Wilson-Hilferty: within 1 % for the redundancies of a network)."""
    z = NormalDist().inv_cdf(p)
    c = 2.0 / (9.0 * dof)
    return float(dof * (1.0 - c + z * c**0.5) ** 3)


def estimate(
    model: MeasurementModel, z: np.ndarray, sigma: np.ndarray, x0: np.ndarray, tol: float = 1e-6, max_iter: int = 20
) -> Estimate:
    """Estimate the state from measurements ``z`` with standard deviations ``sigma``."""
    W = 1.0 / sigma**2
    x = x0.copy()
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        r = z - model.h(x)
        H = model.H(x)
        G = H.T @ (W[:, None] * H)
        dx = np.linalg.solve(G, H.T @ (W * r))
        x += dx
        if np.max(np.abs(dx)) < tol:
            converged = True
            break
    r = z - model.h(x)
    H = model.H(x)
    G = H.T @ (W[:, None] * H)
    omega = sigma**2 - np.einsum("ij,ji->i", H, np.linalg.solve(G, H.T))
    testable = omega > 1e-6 * sigma**2
    normalized = np.where(testable, r / np.sqrt(np.where(testable, omega, 1.0)), 0.0)
    J = float(np.sum(W * r**2))
    dof = max(1, len(z) - model.n_states)
    limit = chi2_quantile(CONFIDENCE, dof)
    worst = int(np.argmax(np.abs(normalized)))
    # detection by the chi-square test, identification by the largest normalised residual
    bad = worst if J > limit and abs(normalized[worst]) > LNR_LIMIT else None
    return Estimate(
        x=x,
        V=model.voltage(x),
        converged=converged,
        iterations=iterations,
        residuals=r,
        normalized=normalized,
        objective=J,
        dof=dof,
        chi2_limit=limit,
        bad=bad,
    )


def estimate_clean(
    model: MeasurementModel, z: np.ndarray, sigma: np.ndarray, x0: np.ndarray, max_removals: int = 3
) -> Estimate:
    """Estimate, and while bad data is detected, leave the named measurement out and estimate again.

    The result is the last (clean) estimate; ``bad`` and ``removed`` name what was
    left out (the first one is the worst), and its residual shows by how much it
    was wrong.
    """
    sigma = sigma.copy()
    result = estimate(model, z, sigma, x0)
    first = result
    removed: list[int] = []
    while result.bad is not None and len(removed) < max_removals:
        removed.append(result.bad)
        sigma[result.bad] = 1e6  # no weight: out of the estimate, still shown with its residual
        result = estimate(model, z, sigma, result.x)
    worst = first.bad if first.bad is not None else int(np.argmax(np.abs(first.normalized)))
    return replace(
        result,
        bad=removed[0] if removed else None,
        removed=removed,
        largest=float(abs(first.normalized[worst])) if len(first.normalized) else 0.0,
    )
