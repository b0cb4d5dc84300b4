"""``gridbus testbed``: the simulated plant, on the bus like the lab's hardware.

Every object of the system publishes its measurements (through the sensor
models) at its rate with source timestamps, state topics are written when
they change (and once at start, transient-local, for late joiners), breaker
closures and trips go out on the Protection topic, and every Command topic
is obeyed.

Time: the plant aims at ``speed`` simulated seconds per wall second from
``epoch``, but simulated time only advances by the steps the plant actually
computes.  A starved testbed never sprints to catch up: the time it could not
compute is lost, and simulated time slows for everybody.  Every sample it
writes is stamped ``epoch + t / speed`` (:meth:`SimClock.stamp`), so its
source timestamps *are* simulated time: a reader that knows epoch and speed
gets ``t`` back from any sample (:class:`gridbus.control.clock.DataClock`),
and never needs the wall clock to agree.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bus import Bus, Sample, Writer
from ..errors import FieldError, GridbusError, UnknownObjectError
from ..events import EventLog
from ..model import TopicType
from ..pmu.testbed import TestbedPMUs
from ..timebase import SimClock  # its home is gridbus.timebase; importable from here too
from .engine import Engine
from .plant import CommandRejected, Plant
from .sensors import Sensors
from .system import System

_log = logging.getLogger(__name__)


class TestbedService:
    """Runs an :class:`~.engine.Engine` in (scaled) real time on a :class:`Bus`.

    The engine is the lab :class:`Plant` of ``system`` unless another is given.
    """

    def __init__(
        self,
        bus: Bus,
        system: System,
        rate: float = 100.0,
        clock: SimClock | None = None,
        log: Callable[[str], None] | None = None,
        serial_drives: str | Path | None = None,
        drive_profile: str = "vfd-modbus",
        engine: Engine | None = None,
    ) -> None:
        self.bus = bus
        self.system = system
        self.plant: Engine = Plant(system) if engine is None else engine
        self.sensors = Sensors(system)
        self.rate = rate
        self.clock = clock or SimClock(time.time())
        self.log = log or _log.warning  # an ignored command, a trip: worth a warning
        self.commands = bus.reader("*", "Command")
        self.events = EventLog(bus, "testbed")
        self._command_types = {t.name: t for t in bus.registry.topics() if t.role == "Command"}
        self._measure: dict[str, Writer] = {}
        self._state: dict[str, Writer] = {}
        self._protection: dict[str, Writer] = {}
        self._period: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self.published = 0
        self.lag_steps = 0  # ticks that ended behind the wall-clock schedule
        self._stopping = False
        self.lost = 0.0  # simulated s the schedule went on without the plant
        # PMUs publish C37.118 frames estimated from waveforms, at their own reporting rate
        # (an engine that solves phasors itself brings its own PMUs: ``pmu_publisher``)
        make_pmus = getattr(self.plant, "pmu_publisher", None)
        self.pmus = (
            make_pmus(bus, self.clock)
            if make_pmus is not None
            else TestbedPMUs(bus, list(system.pmus), system.frequency, self.clock, system.rates.get("PMU"))
        )
        for object_id in system.object_ids():
            obj = bus.registry.parse_id(object_id)
            if "Measurement" in obj.topics and object_id not in system.pmus:
                period = 1.0 / system.rates.get(object_id, system.rates.get(obj.prefix, rate))
                # offer the publishing period as deadline, so readers may ask for a tight one
                self._measure[object_id] = bus.writer(object_id, "Measurement", deadline=period)
                self._period[object_id] = period
                self._due[object_id] = 0.0
        for object_id in self.plant.stateful():
            self._state[object_id] = bus.writer(object_id, "State")
        for cb in system.breakers:
            self._protection[cb] = bus.writer(cb, "Protection")
        self.drives = None
        if serial_drives is not None:
            from .drives import SerialDrives

            if not isinstance(self.plant, Plant):
                raise GridbusError("serial drives need the lab plant as the testbed's engine")
            self.drives = SerialDrives(self.plant, serial_drives, drive_profile, on_reject=self._drive_command_rejected)

    def publish_states(self) -> None:
        for object_id in self._state:
            self._publish_state(object_id)

    def _publish_state(self, object_id: str) -> None:
        self._state[object_id].write(**self.plant.state(object_id), timestamp=self._stamp())

    def _stamp(self) -> float:
        """Source timestamp of the plant's present instant: simulated time, in the time base."""
        return self.clock.stamp(self.plant.t)

    def stop(self) -> None:
        """Ask :meth:`run` to end after this tick (a flag: safe from any thread)."""
        self._stopping = True

    def run(self, duration: float | None = None, ready: Callable[[], None] | None = None) -> None:
        """Run until ``duration`` simulated seconds have passed (forever if None) or :meth:`stop`."""
        self.clock.sleep_until(0.0)
        self.plant.start()
        self.publish_states()
        if ready:
            ready()
        tick = 1.0 / self.rate
        wall_next = time.time()
        try:
            # half a step of slack: t is a sum of float steps (300 x 0.01 = 2.99999999999998)
            while not self._stopping and (duration is None or self.plant.t + self.system.step / 2 < duration):
                self._tick(duration)
                wall_next += tick
                pause = wall_next - time.time()
                if pause > 0:
                    time.sleep(pause)
                else:
                    wall_next = time.time()
        finally:
            if self.drives is not None:
                self.drives.close()

    def _tick(self, duration: float | None) -> None:
        self._apply_commands()
        if self.drives is not None:
            self.drives.apply(self.drives.plant)
        target = self.clock.now() - self.lost
        self._advance(target if duration is None else min(target, duration))
        if self.drives is not None:
            self.drives.update(self.drives.plant)
        self._publish_events()
        self._publish_measurements(self._stamp())

    def _apply_commands(self) -> None:
        for sample in self.commands.take(0):
            self._obey(sample)

    def _obey(self, sample: Sample) -> None:
        """Apply one received command, or refuse it whole and say so on the bus.

        Two checks come first: the IDL's types and ranges (``TopicType.check``:
        any process can write a command, bypassing the sender's checks) and the
        device's rating from the system file (``Plant.check_command``).  A command
        that fails either is refused whole, the last good setting stays in force,
        and the refusal goes out on ``Event_Log`` (``EV_testbed``, COMMAND_REJECTED),
        where a feeder's voltage collapse and its end are reported too.
        """
        topic = self._command_types.get(sample.topic)
        if topic is not None:
            try:
                topic.check(sample.data)
            except FieldError as exc:
                name, value = _first_bad_field(topic, sample)
                reason = str(exc).removeprefix(f"{sample.id}.{name} ({sample.topic}): ")
                self.events.rejected(sample.id, sample.topic, name, value, f"IDL: {reason}")
                return
        fields = sample.fields()
        fields.pop("id", None)
        if self.drives is not None:
            fields = self.drives.filter_bus_command(sample.id, fields)
        try:
            self.plant.command(sample.id, fields)
        except CommandRejected as exc:
            self.events.rejected(exc.object_id, sample.topic, exc.field, exc.value, exc.reason)
        except UnknownObjectError as exc:
            self.log(f"testbed: ignored {sample.topic} for {sample.id}: {exc}")

    def _drive_command_rejected(self, exc: CommandRejected) -> None:
        self.events.rejected(exc.object_id, "serial drive", exc.field, exc.value, exc.reason)

    def _advance(self, target: float) -> None:
        """Step the plant towards simulated time ``target``, at most two ticks' worth per tick.

        What is still missing after that is not made up later: it goes to
        :attr:`lost`, so a starved testbed runs slower instead of sprinting
        (or jumping) to catch up while its readers wait.
        """
        dt = self.system.step
        budget = max(1, math.ceil(2 * self.clock.speed / self.rate / dt))
        steps = 0
        while self.plant.t + dt / 2 <= target and steps < budget:
            self.plant.step()
            steps += 1
        if self.plant.t + dt / 2 <= target:
            self.lag_steps += 1
            self.lost += target - self.plant.t

    def _publish_events(self) -> None:
        seen = set()
        for kind, payload in self.plant.take_events():
            if kind == "state" and payload not in seen:
                seen.add(payload)
                self._publish_state(payload)
            elif kind == "protection":
                self._protection[payload["id"]].write(
                    **{k: v for k, v in payload.items() if k != "id"}, timestamp=self._stamp()
                )
                if payload["trip"]:
                    self.log(f"testbed: {payload['id']} tripped: {payload['fault']} {payload['detail']}")
            elif kind in ("collapse", "restored"):
                self.events.report(
                    "FEEDER_COLLAPSE" if kind == "collapse" else "FEEDER_RESTORED",
                    payload["detail"],
                    severity="ERROR" if kind == "collapse" else "INFO",
                    object=payload["object"],
                    topic="Load_Measurement",
                    field="P",
                    value=payload["value"],
                )

    def _publish_measurements(self, now: float) -> None:
        true = self.plant.measurements()
        self.published += self.pmus.publish(self.plant.t, true) * len(self.pmus.ids)
        for object_id, writer in self._measure.items():
            if now < self._due[object_id]:
                continue
            self._due[object_id] = max(self._due[object_id] + self._period[object_id], now)
            values = self.sensors.read(self.plant.t, object_id, writer.topic, true[object_id])
            if self.sensors.lost(object_id):
                continue
            writer.write(**values, timestamp=now)
            self.published += 1


def _first_bad_field(topic: TopicType, sample: Sample) -> tuple[str, Any]:
    """The field (and its value) that made ``topic.check`` refuse ``sample``."""
    for name, info in topic.fields.items():
        value = getattr(sample.data, name, None)
        try:
            info.coerce(value, name)
        except FieldError:
            return name, value
    return "", None


def describe(system: System) -> dict[str, Any]:
    """A short inventory of a system (what ``gridbus testbed --check`` prints)."""
    return {
        "system": system.name,
        "file": system.path,
        "buses": len(system.buses),
        "lines": len(system.lines),
        "generators": len(system.generators),
        "breakers": len(system.breakers),
        "loads": len(system.loads),
        "microgrids": len(system.microgrids),
        "meters": len(system.meters),
        "pv": len(system.pv),
        "wind": len(system.wind),
        "storage": len(system.storage),
        "pmus": len(system.pmus),
        "objects": len(system.object_ids()),
    }
