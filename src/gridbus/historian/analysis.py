"""Delay analysis (the PMU seed's "row created time − measurement time") and series access."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GridbusError
from ..extras import require
from ..stats import percentile
from .sinks import read_rows, redact


def series(
    url: str, object_id: str, field: str, topic: str | None = None, start: float | None = None, end: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A recorded field of one object as (source times, values) numpy arrays."""
    times, values = [], []
    for _o, _t, source, _r, _c, fields in read_rows(url, topic, object_id, start, end):
        data = json.loads(fields)
        if field in data:
            times.append(source)
            values.append(np.nan if data[field] is None else data[field])
    if not times:
        raise GridbusError(f"no {field!r} of {object_id} in {redact(url)}" + (f" ({topic})" if topic else ""))
    return np.array(times), np.array(values)


def delays(url: str, topic: str | None = None, by_object: bool = False) -> dict[str, dict[str, Any]]:
    """Per topic (or per ``topic object`` with ``by_object``, e.g. one row per PMU):
    created − source time (ms) — count, mean, p50, p90, p99, max.

    For synchrophasors the source time is the frame's measurement time (SOC + FRACSEC), so
    this is the PMU seed's "measurement time → database row" delay.
    """
    per_topic: dict[str, list[float]] = defaultdict(list)
    for obj, name, source, _r, created, _f in read_rows(url, topic):
        per_topic[f"{name} {obj}" if by_object else name].append(created - source)
    out = {}
    for name, values in sorted(per_topic.items()):
        ms = np.array(values) * 1000.0
        out[name] = {
            "count": int(ms.size),
            "mean_ms": float(ms.mean()),
            **{f"p{q}_ms": percentile(ms, q) for q in (50, 90, 99)},
            "max_ms": float(ms.max()),
            "_values": ms,
        }
    if not out:
        raise GridbusError(f"{redact(url)}: no recorded samples" + (f" of {topic}" if topic else ""))
    return out


def histogram(stats: dict[str, dict[str, Any]], path: Path, title: str = "created - source time") -> None:
    matplotlib = require("matplotlib", "the delay histogram")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, entry in stats.items():
        ax.hist(entry["_values"], bins=60, alpha=0.6, label=f"{name} (n={entry['count']})")
    ax.set_xlabel("delay (ms)")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
