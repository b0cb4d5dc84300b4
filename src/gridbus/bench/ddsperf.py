"""Cyclone DDS's C benchmark tool ``ddsperf`` as the floor of the latency table, where installed.

``ddsperf pong`` runs for the whole bench; each segment is ``ddsperf -D 1 ping
RATE size S``, whose one report line gives that second's one-way latency
(ddsperf, too, halves the round trip) as mean, p50, p90, p99 and count.  Both
processes get gridbus's loopback-only Cyclone configuration through
``CYCLONEDDS_URI`` (interface ``lo``, multicast off, unicast discovery on
127.0.0.1), a domain id of their own and best effort (``-u``), like the
``bench`` QoS profile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import numpy as np

from ..config import LOOPBACK_CONFIG

_LINE = re.compile(
    r"size (?P<size>\d+) mean (?P<mean>[\d.]+)us min [\d.]+us 50% (?P<p50>[\d.]+)us "
    r"90% (?P<p90>[\d.]+)us 99% (?P<p99>[\d.]+)us max [\d.]+us cnt (?P<cnt>\d+)"
)


def available() -> str | None:
    """The ddsperf executable, or None when it is not installed (apt-get install cyclonedds-tools)."""
    return shutil.which("ddsperf")


def environment() -> dict[str, str]:
    """This environment with gridbus's loopback configuration for Cyclone (never the user's)."""
    return dict(os.environ, CYCLONEDDS_URI=f"file://{LOOPBACK_CONFIG}")


def parse(text: str) -> list[dict[str, float]]:
    """The latency windows of ddsperf ping's output: mean, p50, p90, p99 (µs) and cnt each."""
    return [{k: float(v) for k, v in m.groupdict().items()} for m in _LINE.finditer(text)]


class Ddsperf:
    """A ``ddsperf pong`` on ``domain``, and ping segments against it."""

    def __init__(self, domain: int) -> None:
        exe = available()
        if exe is None:
            raise RuntimeError("ddsperf is not installed")
        self.exe, self.domain = exe, domain
        self._pong = subprocess.Popen(
            [exe, "-u", "-i", str(domain), "-D", "3600", "pong"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment(),
        )

    def segment(self, size: int, rate: float, seconds: int = 1) -> list[dict[str, float]]:
        """One ping run of ``seconds`` (waits for the pong first): its latency windows."""
        spec = [f"{rate:g}Hz", "size", str(size)]
        proc = subprocess.run(
            [self.exe, "-u", "-i", str(self.domain), "-D", str(seconds), "-Qminmatch:1", "ping", *spec],
            capture_output=True,
            text=True,
            timeout=seconds + 20,
            env=environment(),
        )
        return parse(proc.stdout)

    def close(self) -> None:
        self._pong.terminate()
        try:
            self._pong.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._pong.kill()
            self._pong.wait()


def row(windows: list[dict[str, float]], size: int, rate: float) -> dict[str, Any]:
    """The latency table's ddsperf row: each percentile is the median over its 1-s windows."""

    def median(key: str) -> float | None:
        values = [w[key] for w in windows if w["cnt"] > 0]
        return round(float(np.median(values)), 1) if values else None

    return {
        "system": "ddsperf",
        "mode": "wait",
        "label": "C ddsperf (listener)",
        "size": size,
        "rate": rate,
        "rounds": len(windows),
        "count": int(sum(w["cnt"] for w in windows)),
        "lost": None,
        **{f"{k}_us": median(k) for k in ("mean", "p50", "p90", "p99")},
        "p50_ratio": None,
        "p90_ratio": None,
    }
