"""What a reader of the figures needs to know about the machine, and one process's footprint.

The machine is shared and noisy, so every benchmark starts by recording the
load average: a figure measured at load 3 on 2 cores means something else
than one measured at load 0.1.  A program's footprint is read from outside,
in ``/proc/PID`` (utime + stime over wall time, VmHWM), so the program is
measured the same way whatever it reports about itself.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    """Load average (1, 5, 15 min), CPU count, Python and cyclonedds versions, now."""
    try:
        cyclonedds = metadata.version("cyclonedds")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        cyclonedds = "?"
    return {
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cyclonedds": cyclonedds,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe(info: dict[str, Any]) -> str:
    """One line for a table's caption: ``load average 0.52 0.61 0.70 on 2 CPUs``."""
    one, five, fifteen = info["loadavg"]
    return f"load average {one} {five} {fifteen} on {info['cpus']} CPUs at start ({info['time']})"


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` so far, in seconds (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of proc(5)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of process ``pid``, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Footprint:
    """CPU and memory of one process over a window: ``begin()``, later ``end()``."""

    pid: int
    _cpu: float = 0.0
    _wall: float = 0.0

    def begin(self) -> None:
        self._cpu, self._wall = cpu_seconds(self.pid), time.monotonic()

    def end(self) -> dict[str, float]:
        """``cpu_percent`` (of one core) since ``begin()``, ``rss_mb`` peak so far, ``seconds``."""
        cpu, wall = cpu_seconds(self.pid) - self._cpu, time.monotonic() - self._wall
        return {
            "cpu_percent": round(100.0 * cpu / wall, 1) if wall > 0 else float("nan"),
            "rss_mb": round(peak_rss_mb(self.pid), 1),
            "seconds": round(wall, 1),
        }
