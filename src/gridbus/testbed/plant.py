"""The physics of the virtual testbed: machines, network, loads, microgrids.

The model is quasi-static, as a lab's measurement boards see it (one value per
cycle, not waveforms):

* every generator has a prime mover with a governor (speed control for the
  slack machine, power control with droop otherwise), an inertia, a voltage
  regulator and its own rotor angle in a frame turning at the nominal
  frequency;
* breakers split the network into *electrical islands*; the machines of one
  island turn together (one frequency, the island's inertia) and an AC power
  flow sets the bus voltages, the line currents and the machine powers, the
  island's reference machine taking the mismatch (:mod:`.network`);
* a machine alone on its breaker keeps its own speed and angle, which is what
  a synchronizer has to match; a breaker closed across a large frequency,
  voltage or phase difference is refused as an out-of-phase closure (the
  breaker trips at once and a protection event is raised);
* past the voltage-collapse point of a feeder no constant-power solution
  exists: the island is solved again with its constant-power loads as
  constant impedances, the loads report the power that actually arrives, and
  the plant raises a ``collapse`` event (``restored`` when the normal solution
  is back).

Each device kind lives in its own module of :mod:`.devices` (parameters, state,
command, step, measure, state); the plant holds the devices, the topology, the
islands and the power flow, and calls the devices in the order the physics
needs (:class:`~.devices.Stage`).

Commands are checked against the devices' ratings from the system file before
anything is applied: a set-point that is not finite or beyond the rating
refuses the whole command (:class:`CommandRejected`) and the last good setting
stays in force.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from ..errors import UnknownObjectError
from .devices import (
    DEVICE_KINDS,
    LIVE,
    RATED_RPM,
    AnyDevice,
    BreakerDevice,
    CommandRejected,
    GeneratorDevice,
    GeneratorState,
    LoadDevice,
    MeterDevice,
    MicrogridDevice,
    Stage,
    wrap,
)
from .network import RESTORE_HOLD, S_BASE, Island, Network
from .system import System

__all__ = ["LIVE", "RATED_RPM", "RESTORE_HOLD", "S_BASE", "CommandRejected", "Island", "Plant", "wrap"]

D = TypeVar("D", bound=AnyDevice)


class Plant(Network):
    """The simulated testbed, advanced by :meth:`step` and driven by :meth:`command`.

    It is the lab engine of :class:`gridbus.testbed.engine.Engine`.
    """

    def __init__(self, system: System) -> None:
        super().__init__(system)
        self.t = 0.0
        self.devices: dict[str, AnyDevice] = {
            object_id: kind(params)
            for kind in DEVICE_KINDS.values()
            for object_id, params in getattr(system, kind.system_attr).items()
        }
        self._staged = {stage: [d for d in self.devices.values() if d.stage == stage] for stage in Stage}
        self.generators = self._of_kind(GeneratorDevice)
        self.loads = self._of_kind(LoadDevice)
        self.microgrids = self._of_kind(MicrogridDevice)
        self._breakers = self._of_kind(BreakerDevice)
        self.breaker_of = {b.element: cb for cb, b in system.breakers.items()}
        self.connected: set[str] = set()  # machines turning with an island this step
        self.events: list[tuple[str, Any]] = []  # (kind, payload) for the service to publish
        self._solve()

    def _of_kind(self, kind: type[D]) -> dict[str, D]:
        return {object_id: d for object_id, d in self.devices.items() if isinstance(d, kind)}

    def device(self, object_id: str, kind: type[D]) -> D:
        """The device ``object_id``, which must be of ``kind``."""
        device = self.devices[object_id]
        if not isinstance(device, kind):
            raise TypeError(f"{object_id} is a {type(device).__name__}, not a {kind.__name__}")
        return device

    # -- views kept for controllers, drives and tests ---------------------------------
    @property
    def machines(self) -> dict[str, GeneratorState]:
        """Each generator's dynamic state (live objects), by id."""
        return {gid: g.var for gid, g in self.generators.items()}

    @property
    def breakers(self) -> dict[str, bool]:
        """Each breaker's position (True = closed), by id: a snapshot."""
        return {cb: b.var.closed for cb, b in self._breakers.items()}

    @property
    def load_ref(self) -> dict[str, list[float]]:
        return {lid: [d.var.P_ref, d.var.Q_ref] for lid, d in self.loads.items()}

    @property
    def load_PQ(self) -> dict[str, tuple[float, float]]:
        """What each load draws (W, var), as the last power flow left it."""
        return {lid: (d.var.P, d.var.Q) for lid, d in self.loads.items()}

    @property
    def meter_energy(self) -> dict[str, list[float]]:
        """Each meter's energy totals (Wh, varh)."""
        return {sid: [d.var.PA, d.var.QA] for sid, d in self._of_kind(MeterDevice).items()}

    # -- commands ---------------------------------------------------------------------
    def command(self, object_id: str, fields: dict[str, Any]) -> None:
        """Apply one received command (enum values as names, NaN = unchanged)."""
        device = self.devices.get(object_id)
        if device is None or not device.commanded:
            raise UnknownObjectError(f"{object_id} is not an object of system {self.system.name!r}")
        given = {k: v for k, v in fields.items() if not _unset(v)}
        device.check_command(given)
        device.command(self, given)

    def check_command(self, object_id: str, fields: dict[str, Any]) -> None:
        """Raise :class:`CommandRejected` for the first set-point the device cannot obey.

        Each device checks its own commands against its rating from the system
        file (:meth:`Device.check_command`); the whole command is refused.
        """
        device = self.devices.get(object_id)
        if device is not None:
            device.check_command(fields)

    # -- breakers ---------------------------------------------------------------------
    def close(self, cb: str) -> bool:
        """Close ``cb`` unless its two sides are live and out of step (then it trips)."""
        element = self.system.breakers[cb].element
        sides = self._sides(element)
        record: dict[str, Any] = {
            "id": cb,
            "fault": "NO_FAULT",
            "trip": False,
            "df": 0.0,
            "dV": 0.0,
            "dphi": 0.0,
            "detail": "",
        }
        if sides is not None:
            (v1, a1, f1), (v2, a2, f2) = sides
            if v1 > LIVE * self.v_base and v2 > LIVE * self.v_base:
                record.update(df=float(f1 - f2), dV=float(v1 - v2), dphi=float(wrap(a1 - a2)))
                limits = self.system.protection
                if (
                    abs(record["df"]) > limits.max_df
                    or abs(record["dV"]) > limits.max_dV
                    or abs(math.degrees(record["dphi"])) > limits.max_dphi
                ):
                    record.update(
                        fault="OUT_OF_PHASE_CLOSURE",
                        trip=True,
                        detail=f"closing {element} across df={record['df']:.2f} Hz "
                        f"dV={record['dV']:.1f} V dphi={math.degrees(record['dphi']):.0f} deg",
                    )
                    self.events.append(("protection", record))
                    return False
                record["detail"] = f"synchronized closure of {element}"
                self.events.append(("protection", record))
        self._breakers[cb].var.closed = True
        self.events.append(("state", cb))
        self._merge_speeds(element)
        self._solve()
        return True

    def open(self, cb: str, trip: bool = False, fault: str = "NO_FAULT", detail: str = "") -> None:
        """Open ``cb``; a ``trip`` is reported on the Protection topic with its fault and reason."""
        self._breakers[cb].var.closed = False
        self.events.append(("state", cb))
        if trip:
            self.events.append(
                (
                    "protection",
                    {"id": cb, "fault": fault, "trip": True, "df": 0.0, "dV": 0.0, "dphi": 0.0, "detail": detail},
                )
            )
        self._solve()

    def _sides(self, element: str) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """(|V|, angle, f) on each side of the breaker of ``element`` (None: one side is passive)."""
        if element in self.generators:
            m = self.generators[element].var
            return (m.E, m.delta, m.omega * self.f0), self.bus_side(self.generators[element].params.bus)
        if element in self.system.lines:
            line = self.system.lines[element]
            return self.bus_side(line.from_bus), self.bus_side(line.to_bus)
        return None

    def is_closed(self, cb: str) -> bool:
        return self._breakers[cb].var.closed

    def _merge_speeds(self, element: str) -> None:
        """Machines that now turn together share their momentum (inertia-weighted speed)."""
        self._solve_topology()
        for island in self.islands:
            members = [self.generators[g] for g in island.machines]
            if len(members) > 1:
                inertia = sum(m.params.H * m.rating for m in members)
                omega = sum(m.params.H * m.rating * m.var.omega for m in members) / inertia
                for m in members:
                    m.var.omega = omega

    # -- time -------------------------------------------------------------------------
    def step(self, dt: float | None = None) -> None:
        """Advance the simulated time by ``dt`` (default: the system's step)."""
        dt = self.system.step if dt is None else dt
        self._advance(Stage.SOURCES, dt)
        self._advance(Stage.CONVERTERS, dt)
        for island in self.islands:
            if island.live:
                self._island_dynamics(island, dt)
        self.connected = {g for island in self.islands for g in island.machines}
        self._advance(Stage.MACHINES, dt)
        self._overcurrent()
        self._solve()
        self._advance(Stage.AFTER_SOLVE, dt)
        self.t += dt
        self._track_collapse()

    def _advance(self, stage: Stage, dt: float) -> None:
        for device in self._staged[stage]:
            device.step(self, dt)

    def _island_dynamics(self, island: Island, dt: float) -> None:
        """The machines of a live island turn together: one speed, the island's inertia."""
        members = [self.generators[g] for g in island.machines]
        inertia = sum(2 * m.params.H * m.rating for m in members)
        mechanical = sum((m.var.pm - m.params.losses * m.var.omega**2) * m.rating for m in members)
        electrical = sum(m.var.P for m in members)
        omega = max(0.0, members[0].var.omega + dt * (mechanical - electrical) / inertia)
        assert island.reference is not None
        ref = self.generators[island.reference].var
        ref.delta = wrap(ref.delta + 2 * math.pi * self.f0 * (omega - 1.0) * dt)
        for m in members:
            m.var.omega = omega

    def _overcurrent(self) -> None:
        for tid, line in self.system.lines.items():
            cb = self.breaker_of.get(tid)
            if cb and line.I_max and self.is_closed(cb) and self.line_I[tid] > line.I_max:
                self.open(
                    cb,
                    trip=True,
                    fault="OVERCURRENT",
                    detail=f"{tid} carried {self.line_I[tid]:.1f} A > {line.I_max:.1f} A",
                )

    # -- what the sensors see ---------------------------------------------------------
    def measurements(self) -> dict[str, dict[str, float]]:
        """True values of every measured object, by object id."""
        out = {object_id: d.measure(self) for object_id, d in self.devices.items() if d.measured}
        for n, bus in enumerate(self.system.buses):
            v = abs(self.bus_V[n])
            out[bus] = {"Va": v, "Vb": v, "Vc": v}
        for tid, current in self.line_I.items():
            flow = self.line_S[tid]
            out[tid] = {"Ia": current, "Ib": current, "Ic": current, "P": flow.real, "Q": flow.imag}
        return out

    def state(self, object_id: str) -> dict[str, Any]:
        """The State-topic fields of a generator, breaker or microgrid."""
        return self.devices[object_id].state(self)

    def stateful(self) -> list[str]:
        return [object_id for object_id, d in self.devices.items() if d.stateful]

    def take_events(self) -> list[tuple[str, Any]]:
        """The events raised since the last call, for the service to publish."""
        events, self.events = self.events, []
        return events

    # -- convenience for tests and controllers ----------------------------------------
    def start(self) -> None:
        """Nothing to prepare: the lab plant is solved at construction."""

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.system.step)):
            self.step()

    def total_load(self) -> float:
        return sum(d.var.P for d in self.loads.values())


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
