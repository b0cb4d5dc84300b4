"""The simulated device itself: what a drive or a load does with the commands it accepts.

Kept apart from the protocol responders (:mod:`gridbus.translators.responders`)
and the pty plumbing (:mod:`gridbus.translators.devices`), so the testbed can
hook a plant into the same model the simulator answers from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .profile import Profile

RAMP = 30.0  # Hz/s, the simulated drive's acceleration and deceleration
FORWARD, REVERSE = 1.0, 2.0  # Generator.Direction's members, as the status values carry them
COMM_LOSS = 7510  # the fault code a drive shows when its master's heartbeat stops


class Rejected(Exception):
    """The device refuses a command (value out of range, unknown command)."""


# -- the device model ---------------------------------------------------------------------
@dataclass
class DeviceModel:
    """What the device does, in bus units: a drive or a load."""

    profile: Profile
    values: dict[str, float] = field(default_factory=dict)
    on_command: Callable[[str, float | None], None] | None = None  # the testbed hooks its plant here
    read_values: Callable[[], dict[str, float]] | None = None
    last_beat: float | None = None  # monotonic time of the newest heartbeat (None: none yet)

    def __post_init__(self) -> None:
        self.power_on()

    def trip(self, code: int = 1) -> None:
        """A drive fault: it stops and stays faulted until a reset (or ``fault off``)."""
        self.values.update(fault=1.0, fault_code=float(code), running=0.0)

    def heartbeat(self) -> None:
        self.last_beat = time.monotonic()

    def power_on(self) -> None:
        """The settings a device has after power-up (a drive stopped, references at defaults)."""
        self.values = {
            "running": 0.0,
            "fault": 0.0,
            "f": 0.0,
            "speed": 0.0,
            "P": 0.0,
            "Q": 0.0,
            "f_ref": 60.0,
            "P_ref": 0.0,
            "Q_ref": 0.0,
            "V": 120.0,
            "fault_code": 0.0,
            "at_speed": 0.0,
            "direction": FORWARD,
            "settings_lost": 1.0,  # until the master writes something
        }
        self.last_beat = None

    def command(self, name: str, value: float | None) -> None:
        spec = self.profile.commands.get(name)
        if spec is None:
            raise Rejected(f"unknown command {name}")
        if value is not None and not (spec.min <= value <= spec.max):
            raise Rejected(f"{name}={value:g} out of range {spec.min:g}..{spec.max:g}")
        self.values["settings_lost"] = 0.0
        if self.on_command is not None:
            self.on_command(name, value)
            return
        if name == "reset":
            self.values.update(fault=0.0, fault_code=0.0)
            self.last_beat = None  # the watchdog re-arms at the next heartbeat
        elif name in ("forward", "reverse"):
            self.values["direction"] = FORWARD if name == "forward" else REVERSE
        elif name == "start":
            if self.values["fault"]:
                raise Rejected("device in fault")
            self.values["running"] = 1.0
        elif name == "stop":
            self.values["running"] = 0.0
        elif value is None:
            self.values["running"] = 1.0  # a value-less step such as "INP ON"
        else:
            self.values[name] = float(value)

    def step(self, dt: float) -> None:
        v = self.values
        watchdog = self.profile.watchdog
        if watchdog and watchdog.timeout and self.last_beat is not None:
            if time.monotonic() - self.last_beat > watchdog.timeout and not v["fault"]:
                self.trip(COMM_LOSS)  # the master went silent: trip, as drives do
        if self.profile.kind == "drive":
            target = v["f_ref"] if v["running"] and not v["fault"] else 0.0
            v["f"] += max(-RAMP * dt, min(RAMP * dt, target - v["f"]))
            v["speed"] = 30.0 * v["f"]
            v["P"] = v["P_ref"] if v["running"] and v["f"] > 0.9 * v["f_ref"] else 0.0
            v["at_speed"] = float(bool(v["running"]) and abs(v["f"] - v["f_ref"]) < 0.05)
        else:
            v["P"] = v["P_ref"] if v["running"] else 0.0
            v["Q"] = v["Q_ref"] if v["running"] else 0.0

    def status(self, name: str) -> float:
        values = self.read_values() if self.read_values is not None else self.values
        if name.endswith("_applied"):  # a read-back of a set-point: what the device holds
            name = name.removesuffix("_applied")
        return float(values.get(name, FORWARD if name == "direction" else 0.0))
