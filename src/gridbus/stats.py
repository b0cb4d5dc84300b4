"""Summary statistics of measured delays, the one place that computes percentiles.

The benchmarks (``gridbus bench latency|serial|historian``) and the delay
analysis (``gridbus delays``) all report percentiles of a list of times.  They
share this helper so that every figure is computed the same way: numpy's
linear interpolation between the closest ranks (``np.percentile``'s default),
with NaN entries (a lost ping) left out and ``None`` for an empty list, which
JSON and the tables show as ``null`` / ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt


def as_array(values: Iterable[float] | npt.NDArray[np.float64], scale: float = 1.0) -> npt.NDArray[np.float64]:
    """``values`` times ``scale`` (e.g. 1000 for s -> ms) as floats, NaN entries dropped."""
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64) * scale
    return array[~np.isnan(array)]


def percentile(values: Iterable[float] | npt.NDArray[np.float64], q: float, digits: int | None = None) -> float | None:
    """The ``q``-th percentile (0..100) of ``values``, rounded to ``digits``; None when empty."""
    array = as_array(values)
    if not array.size:
        return None
    value = float(np.percentile(array, q))
    return value if digits is None else round(value, digits)


def mean(values: Iterable[float] | npt.NDArray[np.float64], digits: int | None = None) -> float | None:
    """The mean of ``values``, rounded to ``digits``; None when empty."""
    array = as_array(values)
    if not array.size:
        return None
    value = float(array.mean())
    return value if digits is None else round(value, digits)


def summary(
    values: Iterable[float] | npt.NDArray[np.float64],
    quantiles: Sequence[float],
    digits: int | None = None,
    scale: float = 1.0,
) -> dict[str, float | None]:
    """``{"mean": .., "p50": .., ..., "max": ..}`` of ``values`` times ``scale``.

    ``quantiles`` names the percentiles wanted (``(50, 90, 99)``); ``max`` is the 100th.
    Every entry is None when there are no values.
    """
    array = as_array(values, scale)
    out: dict[str, float | None] = {"mean": mean(array, digits)}
    out.update({f"p{q:g}": percentile(array, q, digits) for q in quantiles})
    out["max"] = percentile(array, 100, digits)
    return out
