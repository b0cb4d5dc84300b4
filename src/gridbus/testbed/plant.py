"""The physics of the virtual testbed: machines, network, loads, microgrids.

The model is quasi-static, as a lab's measurement boards see it (one value per
cycle, not waveforms):

* every generator has a prime mover with a governor (speed control for the
  slack machine, power control with droop otherwise), an inertia, a voltage
  regulator and its own rotor angle in a frame turning at the nominal
  frequency;
* breakers split the network into *electrical islands*; the machines of one
  island turn together (one frequency, the island's inertia) and an AC power
  flow (:mod:`.powerflow`) sets the bus voltages, the line currents and the
  machine powers, the island's reference machine taking the mismatch;
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
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..errors import UnknownObjectError
from . import powerflow
from .devices import (DEVICE_KINDS, LIVE, RATED_RPM, BreakerDevice, CommandRejected, Device,
                      GeneratorDevice, GeneratorState, LoadDevice, MeterDevice, MicrogridDevice, Stage, wrap)
from .system import System

__all__ = ["LIVE", "RATED_RPM", "RESTORE_HOLD", "S_BASE", "CommandRejected", "Island", "Plant", "wrap"]

S_BASE = 10_000.0            # VA, three-phase base of the per-unit system
RESTORE_HOLD = 1.0           # s of normal solutions before a collapse is reported over

D = TypeVar("D", bound=Device)   # type: ignore[type-arg]


@dataclass
class Island:
    buses: list[int]
    machines: list[str] = field(default_factory=list)
    reference: str | None = None
    f: float = 0.0

    @property
    def live(self) -> bool:
        return self.reference is not None


class Plant:
    """The simulated testbed, advanced by :meth:`step` and driven by :meth:`command`.

    It is the lab engine of :class:`gridbus.testbed.engine.Engine`.
    """

    def __init__(self, system: System) -> None:
        self.system = system
        self.t = 0.0
        self.f0 = system.frequency
        self.v_base = system.voltage
        self.bus_index = {bus: n for n, bus in enumerate(system.buses)}
        nb = len(system.buses)
        self.bus_V = np.zeros(nb, dtype=complex)        # V, absolute phasors
        self.bus_f = np.zeros(nb)
        self._warm = np.ones(nb, dtype=complex)         # pu start point for the next solve
        self.devices: dict[str, Device] = {             # type: ignore[type-arg]
            object_id: kind(params)
            for kind in DEVICE_KINDS.values() for object_id, params in getattr(system, kind.system_attr).items()}
        self._staged = {stage: [d for d in self.devices.values() if d.stage == stage] for stage in Stage}
        self.generators = self._of_kind(GeneratorDevice)
        self.loads = self._of_kind(LoadDevice)
        self.microgrids = self._of_kind(MicrogridDevice)
        self._breakers = self._of_kind(BreakerDevice)
        self.breaker_of = {b.element: cb for cb, b in system.breakers.items()}
        self.line_I = {tid: 0.0 for tid in system.lines}
        self.islands: list[Island] = []
        self.connected: set[str] = set()                # machines turning with an island this step
        self.events: list[tuple[str, Any]] = []          # (kind, payload) for the service to publish
        self._y_cache: dict[tuple[bool, ...], np.ndarray] = {}
        self.collapsed: dict[str, str] = {}             # load -> island reference, solved as impedance now
        self._reported: dict[str, float | None] = {}    # load reported collapsed -> normal since (t)
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
        record = {"id": cb, "fault": "NO_FAULT", "trip": False, "df": 0.0, "dV": 0.0, "dphi": 0.0,
                  "detail": ""}
        if sides is not None:
            (v1, a1, f1), (v2, a2, f2) = sides
            if v1 > LIVE * self.v_base and v2 > LIVE * self.v_base:
                record.update(df=float(f1 - f2), dV=float(v1 - v2), dphi=float(wrap(a1 - a2)))
                limits = self.system.protection
                if (abs(record["df"]) > limits.max_df or abs(record["dV"]) > limits.max_dV
                        or abs(math.degrees(record["dphi"])) > limits.max_dphi):
                    record.update(fault="OUT_OF_PHASE_CLOSURE", trip=True,
                                  detail=f"closing {element} across df={record['df']:.2f} Hz "
                                         f"dV={record['dV']:.1f} V dphi={math.degrees(record['dphi']):.0f} deg")
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
            self.events.append(("protection", {"id": cb, "fault": fault, "trip": True, "df": 0.0, "dV": 0.0,
                                               "dphi": 0.0, "detail": detail}))
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

    # -- topology ---------------------------------------------------------------------
    def in_service(self, element: str) -> bool:
        """Whether ``element`` is switched in (an element without a breaker always is)."""
        cb = self.breaker_of.get(element)
        return cb is None or self._breakers[cb].var.closed

    def _solve_topology(self) -> None:
        parent = list(range(len(self.system.buses)))

        def root(n: int) -> int:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for line in self.system.lines.values():
            if self.in_service(line.id):
                a, b = root(self.bus_index[line.from_bus]), root(self.bus_index[line.to_bus])
                parent[a] = b
        groups: dict[int, list[int]] = {}
        for n in range(len(parent)):
            groups.setdefault(root(n), []).append(n)
        islands = []
        for buses in groups.values():
            island = Island(buses)
            names = {self.system.buses[b] for b in buses}
            island.machines = [g for g, m in self.generators.items()
                               if m.params.bus in names and self.in_service(g) and m.var.running
                               and m.var.E > LIVE * self.v_base]
            if island.machines:
                speed = [g for g in island.machines if self.generators[g].var.mode == "SPEED"]
                pool = speed or island.machines
                island.reference = max(pool, key=lambda g: self.generators[g].rating)
            islands.append(island)
        self.islands = islands

    def _admittance(self) -> np.ndarray:
        key = tuple(self.in_service(t) for t in self.system.lines)
        if key not in self._y_cache:
            nb = len(self.system.buses)
            Y = np.zeros((nb, nb), dtype=complex)
            z_base = 3 * self.v_base ** 2 / S_BASE
            for line in self.system.lines.values():
                if not self.in_service(line.id):
                    continue
                i, j = self.bus_index[line.from_bus], self.bus_index[line.to_bus]
                y = z_base / complex(line.R, line.X)
                shunt = 0.5j * line.B * z_base
                Y[i, i] += y + shunt
                Y[j, j] += y + shunt
                Y[i, j] -= y
                Y[j, i] -= y
            self._y_cache[key] = Y
        return self._y_cache[key]

    # -- the network solution ---------------------------------------------------------
    def _solve(self) -> None:
        self._solve_topology()
        Y = self._admittance()
        self.bus_V[:] = 0.0
        self.bus_f[:] = 0.0
        self.collapsed = {}
        for island in self.islands:
            if island.live:
                self._solve_island(island, Y)
        self._update_consumers()

    def _solve_island(self, island: Island, Y_all: np.ndarray) -> None:
        buses = island.buses
        local = {b: n for n, b in enumerate(buses)}
        names = [self.system.buses[b] for b in buses]
        Y = Y_all[np.ix_(buses, buses)].copy()
        n = len(buses)
        kind = np.full(n, powerflow.PQ)
        P = np.zeros(n)
        Q = np.zeros(n)
        V0 = self._warm[buses].copy()
        ref = self.generators[island.reference]
        machine_at: dict[int, list[GeneratorDevice]] = {}
        for g in island.machines:
            m = self.generators[g]
            machine_at.setdefault(local[self.bus_index[m.params.bus]], []).append(m)
        for k, members in machine_at.items():
            lead = ref if ref in members else members[0]
            kind[k] = powerflow.REF if lead is ref else powerflow.PV
            V0[k] = lead.var.E / self.v_base * np.exp(1j * np.angle(V0[k]))
            for m in members:
                if m is not ref:
                    P[k] += m.electrical() / S_BASE
        ref_k = local[self.bus_index[ref.params.bus]]
        V0[ref_k] = ref.var.E / self.v_base
        impedance = []
        for lid, device in self.loads.items():
            load = device.params
            if load.bus in names and self.in_service(lid):
                k = names.index(load.bus)
                p, q = device.var.P_ref, device.var.Q_ref
                if load.model == "constant_impedance":
                    Y[k, k] += complex(p, -q) / S_BASE
                else:
                    P[k] -= p / S_BASE
                    Q[k] -= q / S_BASE
                    impedance.append((lid, k, p, q))
        for mid, mg in self.microgrids.items():
            if mg.params.bus in names and self.in_service(mid):
                P[names.index(mg.params.bus)] += mg.var.P / S_BASE
                Q[names.index(mg.params.bus)] += mg.var.Q / S_BASE
        result = powerflow.solve(Y, kind, P, Q, V0)
        if not result.converged:
            # voltage collapse of constant-power loads: fall back to constant impedance; those
            # loads then draw P·|V|² (see load_scale), which is what they report
            for lid, k, p, q in impedance:
                P[k] += p / S_BASE
                Q[k] += q / S_BASE
                Y[k, k] += complex(p, -q) / S_BASE
                self.collapsed[lid] = island.reference
            result = powerflow.solve(Y, kind, P, Q, V0)
        self._warm[buses] = result.V
        # machine powers: the reference takes the mismatch at its bus
        S_bus = result.S * S_BASE
        for k, members in machine_at.items():
            others_p = sum(m.electrical() for m in members if m is not ref)
            lead = ref if ref in members else members[0]
            load_p, load_q = self._bus_demand(names[k], result.V[k])
            p_bus = S_bus[k].real + load_p
            q_bus = S_bus[k].imag + load_q
            for m in members:
                m.var.P = p_bus - others_p if m is ref else m.electrical()
                m.var.Q = q_bus if m is lead else 0.0
        frame = ref.var.delta - float(np.angle(result.V[ref_k]))
        island.f = ref.var.omega * self.f0
        for k, b in enumerate(buses):
            self.bus_V[b] = result.V[k] * self.v_base * np.exp(1j * frame)
            self.bus_f[b] = island.f
        for g in island.machines:
            m = self.generators[g]
            m.var.delta = float(np.angle(self.bus_V[self.bus_index[m.params.bus]]))
            m.var.E = abs(self.bus_V[self.bus_index[m.params.bus]])

    def _bus_demand(self, bus: str, v_pu: complex) -> tuple[float, float]:
        """Power drawn at ``bus`` by loads, minus microgrid injection (W, var)."""
        p = q = 0.0
        for lid, load in self.loads.items():
            if load.params.bus == bus and self.in_service(lid):
                lp, lq = load.var.P_ref, load.var.Q_ref
                scale = self.load_scale(lid, abs(v_pu))
                p, q = p + lp * scale, q + lq * scale
        for mid, mg in self.microgrids.items():
            if mg.params.bus == bus and self.in_service(mid):
                p, q = p - mg.var.P, q - mg.var.Q
        return p, q

    def load_scale(self, lid: str, v_pu: float) -> float:
        """Share of its set-point a load draws at ``v_pu``: |V|² when solved as an impedance."""
        impedance = self.system.loads[lid].model == "constant_impedance" or lid in self.collapsed
        return v_pu ** 2 if impedance else 1.0

    def _track_collapse(self) -> None:
        """Raise ``collapse`` once when loads fall back to impedance, ``restored`` when they are back.

        A load counts as restored after RESTORE_HOLD s of normal solutions, so a
        feeder hovering at its collapse point does not flood the event log.
        """
        new = [lid for lid in self.collapsed if lid not in self._reported]
        for reference in dict.fromkeys(self.collapsed[lid] for lid in new):
            loads = [lid for lid in new if self.collapsed[lid] == reference]
            self.events.append(("collapse", self._collapse_record(loads, reference)))
        restored = []
        for lid in [*new, *self._reported]:
            if lid in self.collapsed:
                self._reported[lid] = None
            elif self._reported[lid] is None:
                self._reported[lid] = self.t
            elif self.t - self._reported[lid] >= RESTORE_HOLD:
                del self._reported[lid]
                restored.append(lid)
        if restored:
            detail = "; ".join(f"{lid} draws {self.loads[lid].var.P:.0f} W of {self.loads[lid].var.P_ref:.0f} W"
                               for lid in restored)
            self.events.append(("restored", {"object": ",".join(restored), "value": self.loads[restored[0]].var.P,
                                             "detail": f"normal power flow is back: {detail}"}))

    def _collapse_record(self, loads: list[str], reference: str) -> dict[str, Any]:
        island = next(i for i in self.islands if i.reference == reference)
        loads = sorted(loads, key=lambda lid: self.loads[lid].var.P - self.loads[lid].var.P_ref)  # worst first
        parts = []
        for lid in loads:
            bus = self.system.loads[lid].bus
            parts.append(f"{lid} draws {self.loads[lid].var.P:.0f} W of {self.loads[lid].var.P_ref:.0f} W "
                         f"({bus} at {abs(self.bus_V[self.bus_index[bus]]):.1f} V)")
        return {"object": ",".join(loads), "value": self.loads[loads[0]].var.P,
                "detail": f"voltage collapse in the island of {reference} ({len(island.buses)} buses): "
                          f"constant-power loads solved as impedances; {'; '.join(parts)}"}

    def _update_consumers(self) -> None:
        """Load powers and line currents from the bus voltages just solved."""
        for load in self.loads.values():
            load.draw(self)
        for tid, line in self.system.lines.items():
            if not self.in_service(tid):
                self.line_I[tid] = 0.0
                continue
            va = self.bus_V[self.bus_index[line.from_bus]]
            vb = self.bus_V[self.bus_index[line.to_bus]]
            self.line_I[tid] = abs((va - vb) / complex(line.R, line.X) + va * 0.5j * line.B)
        for gid, g in self.generators.items():
            if not self.in_service(gid) or g.var.E < LIVE * self.v_base:
                g.var.P = g.var.Q = 0.0

    # -- the network as the devices see it --------------------------------------------
    def bus_phasor(self, bus: str) -> complex:
        """The voltage phasor (V) of ``bus`` in the nominal frame."""
        return self.bus_V[self.bus_index[bus]]   # type: ignore[no-any-return]

    def bus_voltage(self, bus: str) -> float:
        return abs(self.bus_V[self.bus_index[bus]])   # type: ignore[no-any-return]

    def bus_frequency(self, bus: str) -> float:
        return float(self.bus_f[self.bus_index[bus]])

    def bus_side(self, bus: str) -> tuple[float, float, float]:
        """(|V|, angle, f) of ``bus``: one side of a breaker, or what a synchronizer matches."""
        v = self.bus_V[self.bus_index[bus]]
        return abs(v), float(np.angle(v)), float(self.bus_f[self.bus_index[bus]])

    def island_of(self, gid: str) -> list[str]:
        """The machines turning with ``gid`` (none when it is not in a live island)."""
        return next((i.machines for i in self.islands if gid in i.machines), [])

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
        mechanical = sum((m.var.pm - m.params.losses * m.var.omega ** 2) * m.rating for m in members)
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
                self.open(cb, trip=True, fault="OVERCURRENT",
                          detail=f"{tid} carried {self.line_I[tid]:.1f} A > {line.I_max:.1f} A")

    # -- what the sensors see ---------------------------------------------------------
    def measurements(self) -> dict[str, dict[str, float]]:
        """True values of every measured object, by object id."""
        out = {object_id: d.measure(self) for object_id, d in self.devices.items() if d.measured}
        for n, bus in enumerate(self.system.buses):
            v = abs(self.bus_V[n])
            out[bus] = dict(Va=v, Vb=v, Vc=v)
        for tid, current in self.line_I.items():
            out[tid] = dict(Ia=current, Ib=current, Ic=current)
        return out

    def state(self, object_id: str) -> dict[str, Any]:
        """The State-topic fields of a generator, breaker or microgrid."""
        return self.devices[object_id].state(self)

    def stateful(self) -> list[str]:
        return [object_id for object_id, d in self.devices.items() if d.stateful]

    # -- convenience for tests and controllers ----------------------------------------
    def start(self) -> None:
        """Nothing to prepare: the lab plant is solved at construction."""

    def run(self, seconds: float) -> None:
        for _ in range(int(round(seconds / self.system.step))):
            self.step()

    def total_load(self) -> float:
        return sum(d.var.P for d in self.loads.values())


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
