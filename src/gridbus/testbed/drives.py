"""The testbed's prime-mover drives on serial lines (``gridbus testbed --serial-drives DIR``).

In the lab the generators' prime movers are commanded over RS-485 through a
protocol translator (Figure 4 of the paper).  Here each generator gets a
pseudo-terminal at ``DIR/G_x`` speaking a drive profile (Modbus RTU by
default): what a translator writes there starts, stops and sets the speed or
power of the simulated machine, and the status it polls is the machine's.  The
path is then controller → bus → ``gridbus translate`` → serial line → drive,
as in the lab.  The lines are served on their own thread; commands reach the
plant through a queue the testbed's loop drains, and the drives read a
snapshot the loop refreshes, so the plant is only ever touched by one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import GridbusError
from .devices import RATED_RPM, CommandRejected
from .plant import Plant

# what the drive's commands mean to the plant's generator
_COMMANDS = {"start": {"action": "START"}, "stop": {"action": "STOP"}}


class SerialDrives:
    def __init__(
        self,
        plant: Plant,
        directory: str | Path,
        profile: str = "vfd-modbus",
        on_reject: Callable[[CommandRejected], None] | None = None,
    ) -> None:
        from ..translators.devices import DeviceModel, Simulator
        from ..translators.profile import load_profile

        self.profile = load_profile(profile)
        if self.profile.kind != "drive":
            raise GridbusError(f"profile {self.profile.name} is a {self.profile.kind}, not a drive")
        self.plant = plant
        self.on_reject = on_reject
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.commands: queue.SimpleQueue[tuple[str, str, float | None]] = queue.SimpleQueue()
        self.snapshot: dict[str, dict[str, float]] = {gid: {} for gid in plant.machines}
        self.simulators = {}
        for gid in plant.machines:
            model = DeviceModel(
                self.profile, on_command=partial(self._command, gid), read_values=partial(self._values, gid)
            )
            self.simulators[gid] = Simulator(self.profile, link=str(self.directory / gid), model=model)
        self.update(plant)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="gridbus-serial-drives", daemon=True)
        self._thread.start()

    def paths(self) -> dict[str, str]:
        return {gid: sim.path for gid, sim in self.simulators.items()}

    def _command(self, gid: str, name: str, value: float | None) -> None:
        self.commands.put((gid, name, value))

    def _values(self, gid: str) -> dict[str, float]:
        return self.snapshot[gid]

    def _serve(self) -> None:
        while not self._stop.is_set():
            for sim in self.simulators.values():
                sim.poll(0.001)

    def apply(self, plant: Plant) -> None:
        """Hand the commands received on the lines to the plant (testbed loop only)."""
        while True:
            try:
                gid, name, value = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                plant.command(gid, dict(_COMMANDS.get(name, {name: value})))
            except CommandRejected as exc:  # beyond the machine's rating: the old setting stays
                if self.on_reject is not None:
                    self.on_reject(exc)

    def update(self, plant: Plant) -> None:
        """Refresh what the drives report (testbed loop only)."""
        for gid, m in plant.machines.items():
            self.snapshot[gid] = {
                "running": float(m.status in ("STARTING", "RUNNING")),
                "fault": float(m.status == "FAULT"),
                "f": m.omega * plant.f0,
                "speed": m.omega * RATED_RPM,
                "P": max(0.0, m.P),
                "f_ref": m.f_ref,
                "P_ref": m.P_ref,
            }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for sim in self.simulators.values():
            sim.port.close()

    def filter_bus_command(self, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Generator commands from the bus keep only what the drive does not own (AVR, mode)."""
        if object_id not in self.simulators:
            return fields
        owned = {"action", *self.profile.commands}
        return {k: v for k, v in fields.items() if k not in owned}
