"""The protocol translator: one serial device on the bus (``gridbus translate``).

It subscribes to its object's Command topic, keeps the *desired* device
settings (the newest value of each command wins; commands keep their order of
arrival), writes them to the device, polls the device's status and publishes
it on the object's State/Measurement topics, and publishes the link's health
on ``Link_State`` (``LINK_<object>``).  Faults never stop it: a timeout or a
garbled reply is retried, a rejected command is reported and dropped, a lost
port is reopened, and after every reconnect all desired settings are written
again.

Commands are checked here, where they are obeyed, because any process on the
domain can write one: against the IDL's ranges (``TopicType.check``), the
profile's limits and, for Modbus, the 16-bit register.  A command with one bad
field is refused *whole* (a START carrying f_ref=inf must not start the drive
at its last speed), reported on ``Link_State`` and as a ``COMMAND_REJECTED``
event (``EV_LINK-G2``), and the last good setting stays in force, also when it
is written again after a reconnect.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..errors import DeviceRejected, FieldError, GridbusError, LinkError, PortLost
from ..events import EventLog
from .link import SerialLink
from .profile import Profile
from .protocols import OutOfRange, check_value, client_for, is_set

if TYPE_CHECKING:  # not imported at run time: over Zenoh (gridbus.transport) a board has no cyclonedds
    from ..bus import Bus
    from ..model import TopicType

log = logging.getLogger(__name__)

RECONNECT_INTERVAL = 0.25  # s between attempts to reopen a lost port
TEXT_BOUND = 128  # bytes of Link_State's string<128> fields
_OPPOSITE = {"start": "stop", "stop": "start"}


def clip_utf8(text: str, bound: int = TEXT_BOUND, *, keep_end: bool = False) -> str:
    """``text`` in at most ``bound`` UTF-8 bytes, cut between characters (an ellipsis marks a
    cut; ``keep_end`` keeps the tail, as for a long port path)."""
    data = text.encode()
    if len(data) <= bound:
        return text
    if keep_end:
        return data[-bound:].decode(errors="ignore")
    return data[: bound - 3].decode(errors="ignore") + "\u2026"


def unmapped_commands(profile: Profile, topic: TopicType) -> list[str]:
    """The command fields (and actions) of ``topic`` that ``profile`` does not map to the device."""
    missing = []
    for name, info in topic.fields.items():
        if name == "id":
            continue
        if name == "action" and info.enum is not None:
            missing += [
                f"action={m.name}" for m in info.enum if m.name != "NONE" and m.name.lower() not in profile.commands
            ]
        elif name not in profile.commands:
            missing.append(name)
    return missing


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Translator:
    def __init__(
        self,
        bus: Bus,
        profile: Profile,
        port: str,
        object_id: str,
        *,
        publish_state: bool = True,
        publish_measurement: bool = True,
        emulate_line: bool | None = None,
    ) -> None:
        obj = bus.registry.parse_id(object_id)
        if obj.prefix != profile.object:
            raise GridbusError(f"profile {profile.name} serves {profile.object}_x objects, not {object_id}")
        self.bus, self.profile, self.object_id = bus, profile, object_id
        self.link = SerialLink(port, profile.serial, emulate_line)
        self.client = client_for(self.link, profile)
        self.command_topic = obj.topic("Command")
        self.commands = bus.reader(object_id, "Command")
        self.state_writer = bus.writer(object_id, "State") if publish_state and "State" in obj.topics else None
        self.measurement_writer = (
            bus.writer(object_id, "Measurement") if publish_measurement and "Measurement" in obj.topics else None
        )
        self.link_id = f"LINK_{object_id.replace('_', '')}"
        self.health_writer = bus.writer(self.link_id, "State")
        # EV_LINK-G2: an object index may not hold "_", so EV_LINK_G2 is not a valid id
        self.events = EventLog(bus, self.link_id.replace("_", "-"))
        self.desired: OrderedDict[str, float | None] = OrderedDict()  # command name -> value
        self.pending: OrderedDict[str, int] = OrderedDict()  # names to write -> attempts
        self.confirmed: dict[str, float | None] = {}  # what the device last accepted
        self.unmapped = unmapped_commands(profile, self.command_topic)
        self.health: dict[str, Any] = {
            "object_id": object_id,
            "port": clip_utf8(port, 127, keep_end=True),
            "profile": clip_utf8(profile.name, 32),
            "connected": False,
            "last_error": "",
            "commands_applied": 0,
            "commands_rejected": 0,
            "retries": 0,
            "errors": 0,
            "reconnects": 0,
            "poll_rate": 0.0,
        }
        self.status: dict[str, float] = {}
        self._error_ends_on = ""  # "transaction" (a line fault) or "apply" (a refused command)
        self._published_health: dict[str, Any] = {}
        self._health_at = 0.0
        self._next_poll = 0.0
        self._next_connect = 0.0
        self._polls: list[float] = []
        self._last_state: str | None = None
        self._ever_connected = False
        self._down_reported = False
        self._stopping = False

    def stop(self) -> None:
        """Ask :meth:`run` to finish its step and shut down cleanly (safe in a signal handler)."""
        self._stopping = True

    # -- bus side ---------------------------------------------------------------------
    def receive(self, data: Any) -> bool:
        """Check one received command sample; take it whole into the desired settings or refuse
        it whole.  True if taken."""
        problem = self.check(data)
        if problem is not None:
            self._reject(*problem)
            return False
        fields = self.command_topic.to_dict(data)
        self.accept(fields)
        return True

    def check(self, data: Any) -> tuple[str, Any, str] | None:
        """(field, value, reason) of the first thing wrong with a command, or None."""
        try:
            self.command_topic.check(data)
        except FieldError as exc:
            name = self._bad_field(data)
            return name, getattr(data, name, math.nan), str(exc)
        for name, spec in self.profile.commands.items():
            value = getattr(data, name, None) if name in self.command_topic.fields else None
            if spec.value is None and value is not None and is_set(value):
                try:
                    check_value(spec, float(value), self.profile.protocol)
                except OutOfRange as exc:
                    return name, value, str(exc)
        return None

    def _bad_field(self, data: Any) -> str:
        for name, info in self.command_topic.fields.items():
            try:
                info.coerce(getattr(data, name), name)
            except FieldError:
                return name
        return ""

    def accept(self, fields: dict[str, Any]) -> None:
        """Take one (checked) bus command into the desired settings (newest wins, arrival order kept)."""
        action = fields.get("action")
        if isinstance(action, str) and action != "NONE" and action.lower() in self.profile.commands:
            self._want(action.lower(), None)
            if action.lower() in _OPPOSITE:
                self.desired.pop(_OPPOSITE[action.lower()], None)
                self.pending.pop(_OPPOSITE[action.lower()], None)
        for name, spec in self.profile.commands.items():
            if spec.value is None and name in self.command_topic.fields and is_set(fields.get(name)):
                self._want(name, float(fields[name]))

    def _want(self, name: str, value: float | None) -> None:
        self.desired[name] = value
        self.desired.move_to_end(name)
        self.pending[name] = 0
        self.pending.move_to_end(name)

    def _reject(self, name: str, value: Any, reason: str) -> None:
        self.health["commands_rejected"] += 1
        what = name if value is None else f"{name}={_show(value)}"
        self._fault(f"{what} rejected: {reason}", ends_on="apply")
        self.events.rejected(
            self.object_id,
            self.command_topic.name,
            name,
            value if isinstance(value, (int, float)) else math.nan,
            reason,
        )

    def _keep_last_good(self, name: str) -> None:
        """The device refused ``name``: what it last accepted stays the desired setting, so a
        reconnect writes that again (not the refused value, and not nothing)."""
        self.desired.pop(name, None)
        for key in (name, _OPPOSITE.get(name)):
            if key in self.confirmed and key not in self.desired:
                self.desired[key] = self.confirmed[key]

    def report_unmapped(self) -> None:
        """Say once, at start, which commands this device will not obey (they are ignored)."""
        if not self.unmapped:
            return
        text = (
            f"profile {self.profile.name} maps no {', '.join(self.unmapped)}: "
            f"{self.command_topic.name} fields ignored for {self.object_id}"
        )
        log.warning("translate: %s", text)
        self.events.report("COMMANDS_UNMAPPED", text, object=self.object_id, topic=self.command_topic.name)

    # -- the loop ---------------------------------------------------------------------
    def run(self, duration: float | None = None) -> None:
        self.report_unmapped()
        start = time.monotonic()
        try:
            while not self._stopping and (duration is None or time.monotonic() - start < duration):
                self.step()
        finally:
            self.link.close()
            self.health["connected"] = False
            self._set_state("FAULT")  # nobody watches the device any more
            self._publish_health(force=True)

    def step(self) -> None:
        for sample in self.commands.take(0):
            self.receive(sample.data)
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
            self._fault(f"{exc.kind}: {exc}", ends_on="transaction")
            self._link_down(str(exc))
            return
        if self._ever_connected:
            self.health["reconnects"] += 1
            log.warning("translate: %s back; re-applying %d setting(s)", self.link.port, len(self.desired))
            self.events.report(
                "LINK_UP",
                f"{self.link.port} back; re-applying {len(self.desired)} setting(s)",
                severity="INFO",
                object=self.object_id,
            )
        self._ever_connected = True
        self._down_reported = False
        self.health["connected"] = True
        self._last_state = None  # publish the device's state afresh
        for name in self.desired:  # the device may have lost everything
            self.pending[name] = 0

    def _apply_next(self) -> None:
        name = next(iter(self.pending))
        value = self.desired.get(name)
        try:
            self.client.apply(self.profile.commands[name], value)
        except DeviceRejected as exc:
            self.pending.pop(name)
            self._keep_last_good(name)
            self._reject(name, value, f"the device refused it ({exc})")
            return
        except OutOfRange as exc:  # checked on arrival; kept as a last guard
            self.pending.pop(name)
            self._keep_last_good(name)
            self._reject(name, value, str(exc))
            return
        except LinkError as exc:
            self._line_fault(exc, name)
            return
        self.pending.pop(name)
        self.confirmed[name] = value
        self.confirmed.pop(_OPPOSITE.get(name, ""), None)
        self.health["commands_applied"] += 1
        self._recovered("apply")
        log.info("translate: %s %s%s applied", self.object_id, name, "" if value is None else f"={value:g}")
        self._next_poll = 0.0  # confirm the change at once

    def _poll(self) -> None:
        try:
            self.status = self.client.read_status()
        except DeviceRejected as exc:
            self._fault(f"status query rejected: {exc}", ends_on="transaction")
            self._next_poll = time.monotonic() + self.profile.serial.poll_interval
            return
        except LinkError as exc:
            self._line_fault(exc, None)
            return
        now = time.monotonic()
        self._next_poll = now + self.profile.serial.poll_interval
        self._polls = [t for t in self._polls if now - t < 1.0] + [now]
        self.health["poll_rate"] = float(len(self._polls))
        self._recovered("transaction")
        self._publish_status()

    def _line_fault(self, exc: LinkError, name: str | None) -> None:
        self.health["errors"] += 1
        self._fault(f"{exc.kind}: {exc}", ends_on="transaction")
        if isinstance(exc, PortLost):
            self._drop_link(str(exc))
            return
        attempts = self.pending.get(name, 0) + 1 if name else 0
        if name:
            self.pending[name] = attempts
        self.health["retries"] += 1
        if attempts > self.profile.serial.retries or (
            name is None and exc.kind == "timeout" and self._silent_too_long()
        ):
            self._drop_link(str(exc))

    def _silent_too_long(self) -> bool:
        return not self._polls or time.monotonic() - self._polls[-1] > 1.0

    def _drop_link(self, why: str) -> None:
        self.link.close()
        self.health["connected"] = False
        self._next_connect = time.monotonic() + RECONNECT_INTERVAL
        self._link_down(why)

    def _link_down(self, why: str) -> None:
        """The device is out of reach: State says FAULT (its real state is unknown) and an
        event says why, once per outage."""
        self._set_state("FAULT")
        if not self._down_reported:
            self._down_reported = True
            self.events.report("LINK_DOWN", f"{self.link.port}: {why}", severity="ERROR", object=self.object_id)

    def _fault(self, text: str, *, ends_on: str) -> None:
        """Record the newest problem in ``last_error`` (whole, up to its 128-byte bound)."""
        if text != self.health["last_error"]:
            log.warning("translate: %s on %s: %s", self.object_id, self.link.port, text)
        self.health["last_error"] = clip_utf8(text)
        self._error_ends_on = ends_on

    def _recovered(self, event: str) -> None:
        """Clear ``last_error`` once its problem is over: a line fault at the next good
        transaction, a refused command when a later command is applied."""
        if self.health["last_error"] and (event == "apply" or self._error_ends_on == "transaction"):
            log.warning("translate: %s on %s: recovered", self.object_id, self.link.port)
            self.health["last_error"] = ""
            self._error_ends_on = ""

    # -- publishing -------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        if self.state_writer is not None and "status" in self.state_writer.topic.fields and state != self._last_state:
            self.state_writer.write(status=state)
            self._last_state = state

    def _publish_status(self) -> None:
        running, fault = self.status.get("running", 0.0), self.status.get("fault", 0.0)
        self._set_state("FAULT" if fault else "RUNNING" if running else "OFF")
        if self.measurement_writer is not None:
            topic = self.measurement_writer.topic
            provided = {k: v for k, v in self.status.items() if k in topic.fields and math.isfinite(v)}
            if provided:
                # what the device does not measure is NaN ("not measured"), never 0 (a dead machine)
                absent = {n: math.nan for n, info in topic.fields.items() if info.kind == "float"}
                self.measurement_writer.write(**(absent | provided))

    def _publish_health(self, force: bool = False) -> None:
        now = time.monotonic()
        changed = {k: v for k, v in self.health.items() if k != "poll_rate"} != {
            k: v for k, v in self._published_health.items() if k != "poll_rate"
        }
        if force or changed or now - self._health_at >= 1.0:
            self.health_writer.write(**self.health)
            self._published_health = dict(self.health)
            self._health_at = now
