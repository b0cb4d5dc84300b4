"""``gridbus bench serial``: command latency and poll rate through a translator.

For each baud rate a device simulator (``--trace``: it stamps every request it
receives) and a translator run as separate processes on a pty.  This process
alternately commands START and STOP on the bus and times three instants:
the command written on the bus, its bytes arriving at the device, and the
device's new status coming back on the bus (the translator's State sample).
The pty carries bytes instantly, so both ends wait each frame's time on a
real line; the figures are therefore those of a real link at that baud rate
plus the software's own delay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..bus import Bus, Reader, Sample
from ..errors import GridbusError
from ..stats import mean, summary
from .profile import load_profile

CLI = [sys.executable, "-m", "gridbus.cli.main"]


def serial_latency(
    profile_name: str, bauds: list[int], count: int, domain: int, drives: list[int] | None = None
) -> list[dict[str, Any]]:
    """One row per baud rate and number of drives on the line (``drives``: 1, 2, 4...; several
    drives only for a Modbus profile, as unit ids 1..n of one simulator on one pty)."""
    profile = load_profile(profile_name)
    if profile.kind != "drive":
        raise GridbusError("gridbus bench serial times START/STOP of a drive profile")
    counts = drives or [1]
    if profile.protocol != "modbus-rtu":
        counts = [1]  # only Modbus drives share a line (unit ids)
    return [_one_baud(profile_name, profile.object, baud, count, domain, n) for n in counts for baud in bauds]


def _one_baud(profile: str, prefix: str, baud: int, count: int, domain: int, drives: int = 1) -> dict[str, Any]:
    objects = [f"{prefix}_{9 + i}" for i in range(drives)]
    obj = objects[0]
    work = Path(tempfile.mkdtemp(prefix="gridbus-bench-serial-"))
    units = ["--units", ",".join(str(i + 1) for i in range(drives))] if drives > 1 else []
    sim = subprocess.Popen(
        [*CLI, "device-sim", profile, "--trace", "--baud", str(baud), "--link", str(work / "tty"), *units],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None and sim.stdin is not None
    sim_out = sim.stdout
    port = json.loads(sim_out.readline())["port"]
    commands: list[float] = []
    lock = threading.Lock()

    def collect() -> None:
        for line in sim_out:
            event = json.loads(line)
            if event.get("kind") == "command":
                with lock:
                    commands.append(event["rx"])

    threading.Thread(target=collect, daemon=True).start()
    translator = subprocess.Popen(
        [
            *CLI,
            "translate",
            profile,
            "--port",
            port,
            *(a for i, o in enumerate(objects) for a in ("--object", f"{o}:unit={i + 1}" if drives > 1 else o)),
            "--baud",
            str(baud),
            "--domain",
            str(domain),
            "--no-measurement",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert translator.stdout is not None
    translator.stdout.readline()
    to_line, to_confirm, poll_rates = [], [], []
    try:
        with Bus(domain) as bus:
            state = bus.reader(obj, "State")
            healths = [bus.reader(f"LINK_{o.replace('_', '')}", "State") for o in objects]
            bus.writer(obj, "Command").wait_for_readers(1)
            _expect(state, "OFF", 5.0)
            for n in range(count):
                action, expected = ("START", "RUNNING") if n % 2 == 0 else ("STOP", "OFF")
                with lock:
                    seen = len(commands)
                t0 = time.time()
                bus.command(obj, action=action)
                sample = _expect(state, expected, 5.0)
                with lock:
                    arrived = [t for t in commands[seen:] if t >= t0]
                if sample is None or not arrived:
                    continue
                to_line.append(arrived[0] - t0)
                to_confirm.append(sample.reception_time - t0)
                time.sleep(0.05)
            # each drive's own poll rate: the line's polls shared among the drives on it
            poll_rates = [s.poll_rate for h in healths for s in h.take(0.5) if s.poll_rate > 0]
    finally:
        translator.terminate()
        translator.wait(timeout=10)
        sim.stdin.write("quit\n")
        sim.stdin.flush()
        sim.wait(timeout=10)
    return {
        "profile": profile,
        "drives": drives,
        "baud": baud,
        "commands": count,
        "confirmed": len(to_confirm),
        **_stats("bus_to_line_ms", to_line),
        **_stats("bus_to_confirmed_ms", to_confirm),
        "poll_rate_hz": mean(poll_rates, digits=1),  # per drive
    }


def _expect(reader: Reader, status: str, timeout: float) -> Sample | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sample in reader.take(0.1):
            if sample.status.name == status:
                return sample
    return None


def _stats(name: str, values: list[float]) -> dict[str, float | None]:
    """Mean, p50, p90 and max of ``values`` (seconds) in ms, keyed ``{name}_mean`` etc."""
    return {f"{name}_{k}": v for k, v in summary(values, (50, 90), digits=2, scale=1000.0).items()}
