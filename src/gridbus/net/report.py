"""Tables and figures of ``gridbus net bench`` rows (see :mod:`gridbus.net.bench`).

Figures like the paper's 7 and 8 (latency per size, unicast and multicast,
the paper's 32 B / 1000 msg/s figures beside ours), wire bytes per sample
against reader hosts, and per scenario the one-way delay histogram and CDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..extras import require

Row = dict[str, Any]

COLUMNS: dict[str, tuple[str, ...]] = {
    "latency": ("transport", "size", "rate", "count", "lost", "mean_us", "p50_us", "p90_us", "p99_us", "paper_us"),
    "wire": ("transport", "readers", "matched", "bytes_per_sample", "delivered"),
    "stage": (
        "requested", "expect_p5_ms", "expect_mean_ms", "expect_p95_ms", "p5_ms", "mean_ms", "p95_ms", "max_ms",
        "late_us_mean", "arrived_per_s", "stage_cpu_us_per_frame",
    ),
    "impair": (
        "scenario", "topic", "written", "delivered", "lost", "deadline_missed", "p50_ms", "p90_ms", "p99_ms", "max_ms",
    ),
}  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "/".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tables(rows: Sequence[Row]) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """(title, columns, cells) per part present in ``rows``."""
    out = []
    for part, columns in COLUMNS.items():
        mine = [r for r in rows if r.get("part") == part]
        if mine:
            out.append((f"net bench: {part}", columns, [tuple(_cell(r.get(c)) for c in columns) for r in mine]))
    return out


def markdown(rows: Sequence[Row]) -> str:
    """The tables as Markdown (for docs/networking.md)."""
    parts = []
    for title, columns, cells in tables(rows):
        lines = [f"**{title}**", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def plot(rows: Sequence[Row], directory: str | Path) -> list[Path]:
    """PNG figures of the parts present; the paths written."""
    matplotlib = require("matplotlib", "the net bench figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    latency = [r for r in rows if r.get("part") == "latency"]
    if latency:
        rates = sorted({r["rate"] for r in latency})
        fig, axes = plt.subplots(1, len(rates), figsize=(6 * len(rates), 4.5), squeeze=False)
        for ax, rate in zip(axes[0], rates, strict=True):
            for transport, marker in (("unicast", "o"), ("multicast", "s")):
                mine = sorted(
                    (r for r in latency if r["rate"] == rate and r["transport"] == transport), key=lambda r: r["size"]
                )
                ax.plot(
                    [r["size"] for r in mine], [r["p50_us"] for r in mine], marker=marker, label=f"{transport} (p50)"
                )
                paper = [r for r in mine if r.get("paper_us")]
                for r in paper:
                    ax.scatter([r["size"]] * 2, r["paper_us"], marker="x", color="k", zorder=3)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("sample size (bytes)")
            ax.set_ylabel("one-way latency (µs)")
            ax.set_title(f"{rate:g} msg/s across two namespace hosts (x: the paper, 32 B)")
            ax.grid(True, alpha=0.3)
            ax.legend()
        written.append(_save(fig, out / "net-latency.png", plt))
    wire = [r for r in rows if r.get("part") == "wire"]
    if wire:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for transport, marker in (("unicast", "o"), ("multicast", "s")):
            mine = sorted((r for r in wire if r["transport"] == transport), key=lambda r: r["readers"])
            ax.plot([r["readers"] for r in mine], [r["bytes_per_sample"] for r in mine], marker=marker, label=transport)
        ax.set_xlabel("reader hosts")
        ax.set_ylabel("bytes on the writer's eth0 per sample")
        ax.set_title("Generator_Measurement: wire bytes per sample")
        ax.grid(True, alpha=0.3)
        ax.legend()
        written.append(_save(fig, out / "net-wire-bytes.png", plt))
    impaired = [r for r in rows if r.get("part") == "impair" and r.get("delays_ms")]
    if impaired:
        written.append(_delays(impaired, out / "net-impair-delays.png", plt))
    return written


def _delays(rows: Sequence[Row], path: Path, plt: Any) -> Path:
    """Histogram and CDF of the one-way delay, per topic and scenario."""
    import numpy as np

    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in rows:
        values = np.sort(np.array(r["delays_ms"], dtype=float))
        label = f"{r['scenario']}: {r['topic']} (n={values.size})"
        hist.hist(values, bins=60, alpha=0.5, label=label)
        cdf.plot(values, np.arange(1, values.size + 1) / max(1, values.size), label=label)
    hist.set_xlabel("one-way delay (ms)")
    hist.set_ylabel("samples")
    cdf.set_xlabel("one-way delay (ms)")
    cdf.set_ylabel("CDF")
    cdf.set_xscale("symlog", linthresh=1.0)
    for ax in (hist, cdf):
        ax.grid(True, alpha=0.3)
    cdf.legend(fontsize=7)
    fig.suptitle("What the link does to the data: writer host's link impaired")
    return _save(fig, path, plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
