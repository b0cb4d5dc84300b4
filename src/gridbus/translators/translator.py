"""The protocol translator: one serial device (one unit id of a line) on the bus.

It subscribes to its object's Command topic, keeps the *desired* device
settings (the newest value of each command wins; commands keep their order of
arrival), writes them to the device, polls the device's status and publishes
it on the object's State/Measurement topics, and publishes the link's health
on ``Link_State`` (``LINK_<object>``).  Faults never stop it: a timeout or a
garbled reply is retried, a rejected command is reported and dropped, a lost
port is reopened, and after every reconnect all desired settings are written
again.  A watchdog heartbeat is written where the profile names one, a pulse
(a fault reset bit) is cleared again after its time, and a device found to
have lost its settings (its set-point read-backs differ from what it was sent,
or it says so) gets them all again, counted in ``Link_State.resyncs``.  The
port and the order of transactions belong to :class:`~gridbus.translators.line.Line`,
which serves several translators (unit ids) on one RS-485 line.

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
from typing import TYPE_CHECKING, Any

from ..errors import DeviceRejected, FieldError, GridbusError, LinkError, PortLost
from ..events import EventLog
from .desired import DesiredSettings, unmapped_commands
from .link import SerialLink
from .modbus import ModbusClient
from .profile import Profile
from .protocols import OutOfRange, check_value, client_for, is_set
from .publishing import clip_utf8, publish_measurement, same, state_fields

if TYPE_CHECKING:  # not imported at run time: over Zenoh (gridbus.transport) a board has no cyclonedds
    from ..bus import Bus

log = logging.getLogger(__name__)

RECONNECT_INTERVAL = 0.25  # s between attempts to reopen a lost port
SILENT_UNIT_INTERVAL = 1.0  # s between polls of a unit that stopped answering (it must not eat a shared line)
RESYNC_INTERVAL = 1.0  # s: at most one resync per interval (a device that clamps a value)


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Translator:
    """One object (one unit id) served over a link that a :class:`Line` owns."""

    def __init__(
        self,
        bus: Bus,
        profile: Profile,
        link: SerialLink,
        object_id: str,
        *,
        unit: int | None = None,
        publish_state: bool = True,
        publish_measurement: bool = True,
    ) -> None:
        obj = bus.registry.parse_id(object_id)
        if obj.prefix != profile.object:
            raise GridbusError(f"profile {profile.name} serves {profile.object}_x objects, not {object_id}")
        self.bus, self.profile, self.object_id, self.link = bus, profile, object_id, link
        self.unit = profile.unit if unit is None else unit
        self.client = client_for(link, profile, self.unit, bus.registry)
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
        self.settings = DesiredSettings(profile, self.command_topic)
        self.releases: dict[str, float] = {}  # pulse commands -> when their bits are cleared
        self.unmapped = unmapped_commands(profile, self.command_topic)
        self.health: dict[str, Any] = {
            "object_id": object_id,
            "port": clip_utf8(link.port, 127, keep_end=True),
            "profile": clip_utf8(profile.name, 32),
            "connected": False,
            "last_error": "",
            "commands_applied": 0,
            "commands_rejected": 0,
            "retries": 0,
            "errors": 0,
            "reconnects": 0,
            "poll_rate": 0.0,
            "resyncs": 0,
            "heartbeats": 0,
        }
        self.status: dict[str, float] = {}
        self.reachable = False  # the port is open and the unit answers
        self._misses = 0  # transactions failed in a row
        self._error_ends_on = ""  # "transaction" (a line fault) or "apply" (a refused command)
        self._published_health: dict[str, Any] = {}
        self._health_at = 0.0
        self._next_poll = 0.0
        self._next_beat = 0.0
        self._resync_at = -math.inf
        self._polling = False  # a poll's status blocks are being read (commands go between them)
        self._applied_meanwhile = False
        self._polls: list[float] = []
        self._state: dict[str, Any] | None = None
        self._ever_connected = False
        self._down_reported = False

    # -- bus side ---------------------------------------------------------------------
    def take_commands(self) -> None:
        for sample in self.commands.take(0):
            self.receive(sample.data)

    def receive(self, data: Any) -> bool:
        """Check one received command sample; take it whole into the desired settings or refuse
        it whole.  True if taken."""
        problem = self.check(data)
        if problem is not None:
            self._reject(*problem)
            return False
        self.settings.accept(self.command_topic.to_dict(data))
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
            if spec.value is None and not spec.word and value is not None and is_set(value):
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

    # -- device side: what is due, one transaction at a time (the Line decides whose turn) --
    def urgent(self, now: float) -> bool:
        """A command, a pulse's end or a heartbeat is due (served before any poll)."""
        if not self.reachable:
            return False
        beat_due = self.profile.watchdog is not None and now >= self._next_beat
        return bool(self.settings.pending) or any(t <= now for t in self.releases.values()) or beat_due

    def poll_due(self, now: float) -> bool:
        return now >= self._next_poll

    def serve_urgent(self, now: float) -> None:
        if self.settings.pending:
            self._apply_next()
        elif any(t <= now for t in self.releases.values()):
            self._release(next(n for n, t in self.releases.items() if t <= now))
        else:
            self._heartbeat(now)

    def port_open(self) -> None:
        """The line's port was (re)opened: every desired setting is written again."""
        if self._ever_connected:
            self.health["reconnects"] += 1
            log.warning("translate: %s back; re-applying %d setting(s)", self.object_id, len(self.settings.desired))
            self.events.report(
                "LINK_UP",
                f"{self.link.port} unit {self.unit} back; re-applying {len(self.settings.desired)} setting(s)",
                severity="INFO",
                object=self.object_id,
            )
        self._ever_connected = True
        self._down_reported = False
        self.reachable = True
        self._misses = 0
        self.health["connected"] = True
        self._state = None  # publish the device's state afresh
        self.settings.requeue()

    def line_lost(self, error: str, why: str) -> None:
        """The whole line is gone (the port vanished or cannot be opened)."""
        self._fault(error, ends_on="transaction")
        self.port_lost(why)

    def port_lost(self, why: str) -> None:
        self.reachable = False
        self.health["connected"] = False
        self._link_down(why)

    def _apply_next(self) -> None:
        name = next(iter(self.settings.pending))
        value = self.settings.desired.get(name)
        command = self.profile.commands[name]
        try:
            self.client.apply(command, value)
        except (DeviceRejected, OutOfRange) as exc:  # OutOfRange: checked on arrival; a last guard
            self.settings.refused(name)
            why = f"the device refused it ({exc})" if isinstance(exc, DeviceRejected) else str(exc)
            self._reject(name, value, why)
            return
        except LinkError as exc:
            self._line_fault(exc, name)
            return
        self._answered()
        self._applied_meanwhile = self._applied_meanwhile or self._polling
        self.settings.applied(name, value)
        if command.pulse:
            self.releases[name] = time.monotonic() + command.pulse
        self.health["commands_applied"] += 1
        self._recovered("apply")
        log.info("translate: %s %s%s applied", self.object_id, name, "" if value is None else f"={value:g}")
        self._next_poll = 0.0  # confirm the change at once

    def _release(self, name: str) -> None:
        assert isinstance(self.client, ModbusClient)  # pulses are control-word bits
        try:
            self.client.release(self.profile.commands[name])
        except DeviceRejected as exc:
            self.releases.pop(name)
            self._fault(f"{name} pulse end refused: {exc}", ends_on="apply")
            return
        except LinkError as exc:
            self._line_fault(exc, None)
            return
        self._answered()
        self.releases.pop(name)

    def _heartbeat(self, now: float) -> None:
        assert isinstance(self.client, ModbusClient) and self.profile.watchdog is not None
        self._next_beat = now + self.profile.watchdog.interval
        try:
            self.client.heartbeat()
        except DeviceRejected as exc:
            self._fault(f"heartbeat refused: {exc}", ends_on="transaction")
            return
        except LinkError as exc:
            self._line_fault(exc, None)
            return
        self._answered()
        self.health["heartbeats"] += 1

    def poll(self) -> None:
        now = time.monotonic()
        try:
            status = self.client.read_step()
        except DeviceRejected as exc:
            self._fault(f"status query rejected: {exc}", ends_on="transaction")
            self._next_poll = now + self.profile.serial.poll_interval
            return
        except LinkError as exc:
            self._next_poll = now + (self.profile.serial.poll_interval if self.reachable else SILENT_UNIT_INTERVAL)
            self._line_fault(exc, None)
            return
        if not self.reachable:  # a silent unit answers again
            self.port_open()
        self._answered()
        if status is None:
            self._polling = True
            return  # more status blocks to read: the line may serve commands first
        self.status = status
        stale, self._polling, self._applied_meanwhile = self._applied_meanwhile, False, False
        self._next_poll = now + self.profile.serial.poll_interval
        self._polls = [t for t in self._polls if now - t < 1.0] + [now]
        self.health["poll_rate"] = float(len(self._polls))
        self._recovered("transaction")
        if not stale:  # a read-back from before a write made during this poll proves nothing
            self._check_settings(now)
        self._publish_status()

    def _check_settings(self, now: float) -> None:
        """A device that lost its settings (rebooted) gets every desired setting again."""
        why = self.settings_lost()
        if not why or self.settings.pending or now - self._resync_at < RESYNC_INTERVAL:
            return
        self._resync_at = now
        self.health["resyncs"] += 1
        text = f"unit {self.unit} lost its settings ({why}); writing {len(self.settings.desired)} setting(s) again"
        log.warning("translate: %s: %s", self.object_id, text)
        self.events.report("DEVICE_RESYNC", text, object=self.object_id)
        self.settings.requeue()

    def settings_lost(self) -> str:
        if self.status.get("settings_lost"):
            return "it says so"
        for name, value in self.settings.confirmed.items():
            item = self.profile.status.get(f"{name}_applied")
            applied = self.status.get(f"{name}_applied")
            if item is None or applied is None or value is None or name not in self.settings.desired:
                continue
            if abs(applied - value) > 0.5 / abs(item.scale) + 1e-9 * abs(value):
                return f"{name} reads back {applied:g}, not {value:g}"
        return ""

    # -- faults ---------------------------------------------------------------------------
    def _answered(self) -> None:
        self._misses = 0

    def _line_fault(self, exc: LinkError, name: str | None) -> None:
        """A failed transaction: retried up to the profile's ``retries``, then the unit is out of
        reach (polled every SILENT_UNIT_INTERVAL until it answers); a lost port goes to the Line."""
        self.health["errors"] += 1
        self._fault(f"{exc.kind}: {exc}", ends_on="transaction")
        if isinstance(exc, PortLost):
            raise exc
        self.health["retries"] += 1
        self._misses += 1
        if name:
            self.settings.pending[name] = self.settings.pending.get(name, 0) + 1
        if self._misses > self.profile.serial.retries and self.reachable:
            self.port_lost(str(exc))
            self._next_poll = time.monotonic() + SILENT_UNIT_INTERVAL

    def _link_down(self, why: str) -> None:
        """The device is out of reach: State says FAULT (its real state is unknown) and an
        event says why, once per outage."""
        self._set_state("FAULT", {})
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
    def _set_state(self, state: str, status: dict[str, float] | None = None) -> None:
        if self.state_writer is None:
            return
        fields = state_fields(self.state_writer.topic, self.status if status is None else status, state)
        if self._state is None or not same(fields, self._state):
            self.state_writer.write(**fields)
            self._state = fields

    def _publish_status(self) -> None:
        running, fault = self.status.get("running", 0.0), self.status.get("fault", 0.0)
        self._set_state("FAULT" if fault else "RUNNING" if running else "OFF")
        if self.measurement_writer is not None:
            publish_measurement(self.measurement_writer, self.status)

    def publish_health(self, force: bool = False) -> None:
        now = time.monotonic()
        changed = {k: v for k, v in self.health.items() if k != "poll_rate"} != {
            k: v for k, v in self._published_health.items() if k != "poll_rate"
        }
        if force or changed or now - self._health_at >= 1.0:
            self.health_writer.write(**self.health)
            self._published_health = dict(self.health)
            self._health_at = now

    def close(self) -> None:
        self.reachable = False
        self.health["connected"] = False
        self._set_state("FAULT", {})  # nobody watches the device any more
        self.publish_health(force=True)
