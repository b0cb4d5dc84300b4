"""Big samples (a DAQ board's raw cycles, 16 and 64 KB): gridbus and raw cyclonedds beside ZeroMQ.

The same interleaved ping-pong as :mod:`.latency`, with a ``Bench_Ping``
whose ``sequence<octet>`` payload makes the sample the given size, and a
ZeroMQ PAIR socket over TCP on 127.0.0.1 as the yardstick of a plain
brokerless message library (when pyzmq, the ``zmq`` extra, is installed).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from .endpoints import BusOptions
from .goals import goal
from .latency import Progress, System, interleaved

Row = dict[str, Any]
SIZES = (16384, 65536)


def zmq_available() -> bool:
    return importlib.util.find_spec("zmq") is not None


def waveform(
    options: BusOptions,
    sizes: Sequence[int],
    rate: float,
    rounds: int,
    per_round: int,
    modes: Sequence[str] = ("wait",),
    progress: Progress | None = None,
) -> tuple[list[Row], str | None]:
    """Rows per (system, size), and a note when ZeroMQ had to be left out."""
    systems = [System("cyclonedds"), *(System("gridbus", m) for m in modes)]
    note = None
    if zmq_available():
        systems.append(System("zmq"))
    else:
        note = "ZeroMQ left out: pyzmq is not installed (pip install 'gridbus[zmq]')"
    return interleaved(options, systems, sizes, rate, rounds, per_round, progress), note


def goals(rows: list[Row]) -> list[Row]:
    """gridbus (wait) p50 within 2x of ZeroMQ's, per size."""
    out = []
    for size in sorted({r["size"] for r in rows}):
        by = {(r["system"], r["mode"]): r for r in rows if r["size"] == size}
        mine, zmq = by.get(("gridbus", "wait")), by.get(("zmq", "wait"))
        if mine and zmq and mine["p50_us"] and zmq["p50_us"]:
            out.append(goal("gridbus wait p50 / ZeroMQ p50", round(mine["p50_us"] / zmq["p50_us"], 2), 2.0, size=size))
    return out
