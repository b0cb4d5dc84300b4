"""The protocol translator: one serial device on the bus (``gridbus translate``).

It subscribes to its object's Command topic, keeps the *desired* device
settings (the newest value of each command wins; commands keep their order of
arrival), writes them to the device, polls the device's status and publishes
it on the object's State/Measurement topics, and publishes the link's health
on ``Link_State`` (``LINK_<object>``).  Faults never stop it: a timeout or a
garbled reply is retried, a rejected command is reported and dropped, a lost
port is reopened, and after every reconnect all desired settings are written
again.
"""
from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from typing import Any, Callable

from ..bus import Bus
from ..errors import GridbusError
from .link import DeviceRejected, LinkError, PortLost, SerialLink
from .profile import Profile
from .protocols import client_for, is_set

RECONNECT_INTERVAL = 0.25        # s between attempts to reopen a lost port


class Translator:
    def __init__(self, bus: Bus, profile: Profile, port: str, object_id: str, *, publish_state: bool = True,
                 publish_measurement: bool = True, emulate_line: bool | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        obj = bus.registry.parse_id(object_id)
        if obj.prefix != profile.object:
            raise GridbusError(f"profile {profile.name} serves {profile.object}_x objects, not {object_id}")
        self.bus, self.profile, self.object_id = bus, profile, object_id
        self.link = SerialLink(port, profile.serial, emulate_line)
        self.client = client_for(self.link, profile)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.commands = bus.reader(object_id, "Command")
        self.state_writer = bus.writer(object_id, "State") if publish_state and "State" in obj.topics else None
        self.measurement_writer = (bus.writer(object_id, "Measurement")
                                   if publish_measurement and "Measurement" in obj.topics else None)
        self.link_id = f"LINK_{object_id.replace('_', '')}"
        self.health_writer = bus.writer(self.link_id, "State")
        self.desired: OrderedDict[str, float | None] = OrderedDict()   # command name -> value
        self.pending: OrderedDict[str, int] = OrderedDict()            # names to write -> attempts
        self.health: dict[str, Any] = {"object": object_id, "port": port[-127:], "profile": profile.name[:31],
                                       "connected": False, "last_error": "", "commands_applied": 0,
                                       "commands_rejected": 0, "retries": 0, "errors": 0, "reconnects": 0,
                                       "poll_rate": 0.0}
        self.status: dict[str, float] = {}
        self._published_health: dict[str, Any] = {}
        self._health_at = 0.0
        self._next_poll = 0.0
        self._next_connect = 0.0
        self._polls: list[float] = []
        self._last_state: str | None = None
        self._ever_connected = False

    # -- bus side ---------------------------------------------------------------------
    def accept(self, fields: dict[str, Any]) -> None:
        """Take one bus command into the desired settings (newest wins, arrival order kept)."""
        action = fields.get("action")
        if action in ("START", "STOP") and action.lower() in self.profile.commands:
            self._want(action.lower(), None)
            self.desired.pop("stop" if action == "START" else "start", None)
            self.pending.pop("stop" if action == "START" else "start", None)
        for name in self.profile.commands:
            if name not in ("start", "stop") and is_set(fields.get(name)):
                self._want(name, float(fields[name]))

    def _want(self, name: str, value: float | None) -> None:
        self.desired[name] = value
        self.desired.move_to_end(name)
        self.pending[name] = 0
        self.pending.move_to_end(name)

    # -- the loop ---------------------------------------------------------------------
    def run(self, duration: float | None = None) -> None:
        start = time.monotonic()
        try:
            while duration is None or time.monotonic() - start < duration:
                self.step()
        finally:
            self.link.close()
            self.health["connected"] = False
            self._publish_health(force=True)

    def step(self) -> None:
        for sample in self.commands.take(0):
            self.accept(sample.fields())
        now = time.monotonic()
        if not self.link.is_open:
            if now >= self._next_connect:
                self._connect()
            else:
                time.sleep(0.005)
        elif self.pending:
            self._apply_next()
        elif now >= self._next_poll:
            self._poll()
        else:
            time.sleep(min(0.002, self._next_poll - now))
        self._publish_health()

    def _connect(self) -> None:
        try:
            self.link.open()
        except PortLost as exc:
            self._next_connect = time.monotonic() + RECONNECT_INTERVAL
            self._fault(str(exc))
            return
        if self._ever_connected:
            self.health["reconnects"] += 1
            self.log(f"translate: {self.link.port} back; re-applying {len(self.desired)} setting(s)")
        self._ever_connected = True
        self.health["connected"] = True
        for name in self.desired:                        # the device may have lost everything
            self.pending[name] = 0

    def _apply_next(self) -> None:
        name = next(iter(self.pending))
        try:
            self.client.apply(self.profile.commands[name], self.desired.get(name))
        except DeviceRejected as exc:
            self.pending.pop(name)
            self.desired.pop(name, None)
            self.health["commands_rejected"] += 1
            self._fault(f"{name} rejected: {exc}")
            return
        except LinkError as exc:
            self._line_fault(exc, name)
            return
        self.pending.pop(name)
        self.health["commands_applied"] += 1
        value = self.desired.get(name)
        self.log(f"translate: {self.object_id} {name}{'' if value is None else f'={value:g}'} applied")
        self._next_poll = 0.0                            # confirm the change at once

    def _poll(self) -> None:
        try:
            self.status = self.client.read_status()
        except DeviceRejected as exc:
            self._fault(f"status query rejected: {exc}")
            self._next_poll = time.monotonic() + self.profile.serial.poll_interval
            return
        except LinkError as exc:
            self._line_fault(exc, None)
            return
        now = time.monotonic()
        self._next_poll = now + self.profile.serial.poll_interval
        self._polls = [t for t in self._polls if now - t < 1.0] + [now]
        self.health["poll_rate"] = float(len(self._polls))
        self._publish_status()

    def _line_fault(self, exc: LinkError, name: str | None) -> None:
        self.health["errors"] += 1
        self._fault(f"{exc.kind}: {exc}")
        if isinstance(exc, PortLost):
            self._drop_link()
            return
        attempts = self.pending.get(name, 0) + 1 if name else 0
        if name:
            self.pending[name] = attempts
        self.health["retries"] += 1
        if attempts > self.profile.serial.retries or (name is None and exc.kind == "timeout"
                                                       and self._silent_too_long()):
            self._drop_link()

    def _silent_too_long(self) -> bool:
        return not self._polls or time.monotonic() - self._polls[-1] > 1.0

    def _drop_link(self) -> None:
        self.link.close()
        self.health["connected"] = False
        self._next_connect = time.monotonic() + RECONNECT_INTERVAL

    def _fault(self, text: str) -> None:
        if text != self.health["last_error"]:
            self.log(f"translate: {self.object_id} on {self.link.port}: {text}")
        self.health["last_error"] = text[:127]

    # -- publishing -------------------------------------------------------------------
    def _publish_status(self) -> None:
        if self.state_writer is not None and "status" in self.state_writer.topic.fields:
            running, fault = self.status.get("running", 0.0), self.status.get("fault", 0.0)
            state = "FAULT" if fault else "RUNNING" if running else "OFF"
            if state != self._last_state:
                self.state_writer.write(status=state)
                self._last_state = state
        if self.measurement_writer is not None:
            fields = {k: v for k, v in self.status.items()
                      if k in self.measurement_writer.topic.fields and math.isfinite(v)}
            if fields:
                self.measurement_writer.write(**fields)

    def _publish_health(self, force: bool = False) -> None:
        now = time.monotonic()
        changed = {k: v for k, v in self.health.items() if k != "poll_rate"} != \
            {k: v for k, v in self._published_health.items() if k != "poll_rate"}
        if force or changed or now - self._health_at >= 1.0:
            self.health_writer.write(**self.health)
            self._published_health = dict(self.health)
            self._health_at = now
