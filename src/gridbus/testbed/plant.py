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

Commands are checked against the devices' ratings from the system file before
anything is applied: a set-point that is not finite or beyond the rating
refuses the whole command (:class:`CommandRejected`) and the last good setting
stays in force.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CommandRejected, UnknownObjectError
from ..phasor import wrap
from . import powerflow
from .system import System

S_BASE = 10_000.0            # VA, three-phase base of the per-unit system
RATED_RPM = 1800.0           # four-pole machines at 60 Hz (the paper's generators)
LIVE = 0.1                   # pu voltage above which a side is energized
RESTORE_HOLD = 1.0           # s of normal solutions before a collapse is reported over


@dataclass
class Machine:
    """The dynamic state of one generator and its prime mover."""
    cfg: Any
    status: str = "OFF"                  # OFF STARTING RUNNING STOPPING FAULT
    mode: str = "POWER"
    f_ref: float = 60.0
    P_ref: float = 0.0
    V_ref: float = 120.0
    omega: float = 0.0                   # pu speed
    omega_target: float = 0.0            # ramped speed reference, pu
    delta: float = 0.0                   # rad, rotor (terminal voltage) angle, nominal frame
    pm: float = 0.0                      # pu (of the rating) mechanical power
    integral: float = 0.0                # speed-governor integrator
    E: float = 0.0                       # V, regulated terminal voltage
    P: float = 0.0                       # W, electrical output
    Q: float = 0.0                       # var
    autosync: bool = False
    ready: bool = False

    @property
    def rating(self) -> float:
        return self.cfg.rating

    @property
    def p_max(self) -> float:
        return (self.cfg.P_max or self.cfg.rating) / self.cfg.rating

    @property
    def running(self) -> bool:
        return self.status in ("STARTING", "RUNNING", "STOPPING")


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
    """The simulated testbed, advanced by :meth:`step` and driven by :meth:`command`."""

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
        self.breakers = {cb: b.closed for cb, b in system.breakers.items()}
        self.breaker_of = {b.element: cb for cb, b in system.breakers.items()}
        self.machines = {g.id: Machine(g, mode=g.mode, f_ref=g.f_ref, P_ref=g.P_ref, V_ref=g.V_ref)
                         for g in system.generators.values()}
        self.load_ref = {lid: [ld.P, ld.Q] for lid, ld in system.loads.items()}
        self.load_PQ = {lid: (0.0, 0.0) for lid in system.loads}
        self.line_I = {tid: 0.0 for tid in system.lines}
        self.mg = {mid: {"mode": m.mode, "P_ref": m.P_ref, "Q_ref": m.Q_ref, "P": 0.0, "Q": 0.0,
                         "Vdc": m.Vdc, "Idc": 0.0} for mid, m in system.microgrids.items()}
        self.pv = {pid: {"Ir": p.Ir, "Temp": p.Temp, "P": 0.0, "V": 0.0, "I": 0.0}
                   for pid, p in system.pv.items()}
        self.wind = {wid: {"Ws": w.Ws, "P": 0.0, "V": 0.0, "f": 0.0} for wid, w in system.wind.items()}
        self.storage = {eid: {"SoC": e.SoC, "I_ref": None, "I": 0.0, "V": e.V_nom, "Temp": 25.0}
                        for eid, e in system.storage.items()}
        self.meter_energy = {sid: [0.0, 0.0] for sid in system.meters}
        self.meter_log: dict[str, deque] = {sid: deque() for sid in system.meters}
        self.islands: list[Island] = []
        self.events: list[tuple[str, Any]] = []          # (kind, payload) for the service to publish
        self._y_cache: dict[tuple, np.ndarray] = {}
        self.limits = self._limits()
        self.collapsed: dict[str, str] = {}             # load -> island reference, solved as impedance now
        self._reported: dict[str, float | None] = {}    # load reported collapsed -> normal since (t)
        self._solve()

    # -- commands ---------------------------------------------------------------------
    def command(self, object_id: str, fields: dict[str, Any]) -> None:
        """Apply one received command (enum values as names, NaN = unchanged)."""
        prefix = object_id.split("_")[0]
        handler = {"G": self._command_generator, "CB": self._command_breaker, "L": self._command_load,
                   "MG": self._command_microgrid, "ES": self._command_storage, "PV": self._command_pv,
                   "W": self._command_wind}.get(prefix)
        known = (self.machines, self.breakers, self.load_ref, self.mg, self.storage, self.pv, self.wind)
        if handler is None or not any(object_id in pool for pool in known):
            raise UnknownObjectError(f"{object_id} is not an object of system {self.system.name!r}")
        given = {k: v for k, v in fields.items() if not _unset(v)}
        self.check_command(object_id, given)
        handler(object_id, given)

    def _limits(self) -> dict[str, dict[str, tuple[float, float, str]]]:
        """Per object, the band of each set-point it obeys and where that band comes from."""
        sys_ = self.system
        out: dict[str, dict[str, tuple[float, float, str]]] = {}
        for gid, g in sys_.generators.items():
            out[gid] = {"f_ref": (0.0, g.f_max, f"f_max {g.f_max:g} Hz"),
                        "P_ref": (-g.rating, g.rating, f"rating ±{g.rating:g} W"),
                        "V_ref": (g.V_min, g.V_max, f"V_min..V_max {g.V_min:g}..{g.V_max:g} V")}
        for lid, ld in sys_.loads.items():
            out[lid] = {"P_ref": (0.0, ld.rating, f"rating 0..{ld.rating:g} W"),
                        "Q_ref": (-ld.rating, ld.rating, f"rating ±{ld.rating:g} var")}
        for mid, mg in sys_.microgrids.items():
            out[mid] = {key: (-mg.rating, mg.rating, f"converter rating ±{mg.rating:g}")
                        for key in ("P_ref", "Q_ref")}
        for eid, es in sys_.storage.items():
            out[eid] = {"I_ref": (-es.I_max, es.I_max, f"I_max ±{es.I_max:g} A")}
        for pid, pv in sys_.pv.items():
            out[pid] = {"Ir_ref": (0.0, pv.Ir_max, f"emulator range 0..{pv.Ir_max:g} W/m2"),
                        "Temp_ref": (pv.Temp_min, pv.Temp_max,
                                     f"emulator range {pv.Temp_min:g}..{pv.Temp_max:g} degC")}
        for wid, w in sys_.wind.items():
            out[wid] = {"Ws_ref": (0.0, w.Ws_max, f"emulator range 0..{w.Ws_max:g} m/s")}
        return out

    def check_command(self, object_id: str, fields: dict[str, Any]) -> None:
        """Raise :class:`CommandRejected` for the first set-point the device cannot obey.

        Any process can write a command, so the plant checks what it is about to
        obey against the device's own rating (the system file), whatever the sender
        checked.  The whole command is refused: a START that carried an absurd
        f_ref must not start the machine on its old reference either.
        """
        for key, (low, high, source) in self.limits.get(object_id, {}).items():
            if key not in fields:
                continue
            value = fields[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CommandRejected(object_id, key, value, "not a number")
            if not math.isfinite(value):
                raise CommandRejected(object_id, key, value, "not finite")
            if not low <= value <= high:
                raise CommandRejected(object_id, key, value, f"outside the system file's {source}")

    def _command_generator(self, gid: str, f: dict[str, Any]) -> None:
        m = self.machines[gid]
        for key in ("f_ref", "P_ref", "V_ref"):
            if key in f:
                setattr(m, key, float(f[key]))
        if f.get("mode") in ("SPEED", "POWER") and f["mode"] != m.mode:
            m.mode = f["mode"]
            self.events.append(("state", gid))
        action = f.get("action", "NONE")
        if action == "START" and m.status in ("OFF", "STOPPING", "FAULT"):
            m.status, m.omega_target = "STARTING", m.omega
            self.events.append(("state", gid))
        elif action == "STOP" and m.status != "OFF":
            m.status, m.autosync = "STOPPING", False
            cb = self.breaker_of.get(gid)
            if cb and self.breakers[cb]:
                self._open(cb, trip=True, detail=f"{gid} stopped: its breaker opened first")
            self.events.append(("state", gid))
        elif action == "SYNCHRONIZE" and m.running:
            m.autosync = True

    def _command_breaker(self, cb: str, f: dict[str, Any]) -> None:
        want = f.get("status")
        if want == "CLOSED" and not self.breakers[cb]:
            self.close(cb)
        elif want == "OPEN" and self.breakers[cb]:
            self._open(cb)

    def _command_load(self, lid: str, f: dict[str, Any]) -> None:
        if "P_ref" in f:
            self.load_ref[lid][0] = float(f["P_ref"])
        if "Q_ref" in f:
            self.load_ref[lid][1] = float(f["Q_ref"])

    def _command_microgrid(self, mid: str, f: dict[str, Any]) -> None:
        state = self.mg[mid]
        if f.get("mode") in ("ISLANDED", "GRID_CONNECTED") and f["mode"] != state["mode"]:
            state["mode"] = f["mode"]
            self.events.append(("state", mid))
        for key in ("P_ref", "Q_ref"):
            if key in f:
                state[key] = float(f[key])

    def _command_storage(self, eid: str, f: dict[str, Any]) -> None:
        if "I_ref" in f:
            self.storage[eid]["I_ref"] = float(f["I_ref"])

    def _command_pv(self, pid: str, f: dict[str, Any]) -> None:
        if "Ir_ref" in f:
            self.pv[pid]["Ir"] = float(f["Ir_ref"])
        if "Temp_ref" in f:
            self.pv[pid]["Temp"] = float(f["Temp_ref"])

    def _command_wind(self, wid: str, f: dict[str, Any]) -> None:
        if "Ws_ref" in f:
            self.wind[wid]["Ws"] = float(f["Ws_ref"])

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
        self.breakers[cb] = True
        self.events.append(("state", cb))
        self._merge_speeds(element)
        self._solve()
        return True

    def _open(self, cb: str, trip: bool = False, fault: str = "NO_FAULT", detail: str = "") -> None:
        self.breakers[cb] = False
        self.events.append(("state", cb))
        if trip:
            self.events.append(("protection", {"id": cb, "fault": fault, "trip": True, "df": 0.0, "dV": 0.0,
                                               "dphi": 0.0, "detail": detail}))
        self._solve()

    def _sides(self, element: str) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """(|V|, angle, f) on each side of the breaker of ``element`` (None: one side is passive)."""
        if element in self.machines:
            m = self.machines[element]
            bus = self.bus_index[m.cfg.bus]
            return (m.E, m.delta, m.omega * self.f0), self._bus_side(bus)
        if element in self.system.lines:
            line = self.system.lines[element]
            return (self._bus_side(self.bus_index[line.from_bus]),
                    self._bus_side(self.bus_index[line.to_bus]))
        return None

    def _bus_side(self, bus: int) -> tuple[float, float, float]:
        v = self.bus_V[bus]
        return abs(v), float(np.angle(v)), float(self.bus_f[bus])

    def _merge_speeds(self, element: str) -> None:
        """Machines that now turn together share their momentum (inertia-weighted speed)."""
        self._solve_topology()
        for island in self.islands:
            members = [self.machines[g] for g in island.machines]
            if len(members) > 1:
                inertia = sum(m.cfg.H * m.rating for m in members)
                omega = sum(m.cfg.H * m.rating * m.omega for m in members) / inertia
                for m in members:
                    m.omega = omega

    # -- topology ---------------------------------------------------------------------
    def _in_service(self, element: str) -> bool:
        cb = self.breaker_of.get(element)
        return cb is None or self.breakers[cb]

    def _solve_topology(self) -> None:
        parent = list(range(len(self.system.buses)))

        def root(n: int) -> int:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for line in self.system.lines.values():
            if self._in_service(line.id):
                a, b = root(self.bus_index[line.from_bus]), root(self.bus_index[line.to_bus])
                parent[a] = b
        groups: dict[int, list[int]] = {}
        for n in range(len(parent)):
            groups.setdefault(root(n), []).append(n)
        islands = []
        for buses in groups.values():
            island = Island(buses)
            names = {self.system.buses[b] for b in buses}
            island.machines = [g for g, m in self.machines.items()
                               if m.cfg.bus in names and self._in_service(g) and m.running
                               and m.E > LIVE * self.v_base]
            if island.machines:
                speed = [g for g in island.machines if self.machines[g].mode == "SPEED"]
                pool = speed or island.machines
                island.reference = max(pool, key=lambda g: self.machines[g].rating)
            islands.append(island)
        self.islands = islands

    def _admittance(self) -> np.ndarray:
        key = tuple(self._in_service(t) for t in self.system.lines)
        if key not in self._y_cache:
            nb = len(self.system.buses)
            Y = np.zeros((nb, nb), dtype=complex)
            z_base = 3 * self.v_base ** 2 / S_BASE
            for line in self.system.lines.values():
                if not self._in_service(line.id):
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
        ref = self.machines[island.reference]
        machine_at: dict[int, list[Machine]] = {}
        for g in island.machines:
            m = self.machines[g]
            machine_at.setdefault(local[self.bus_index[m.cfg.bus]], []).append(m)
        for k, members in machine_at.items():
            lead = ref if ref in members else members[0]
            kind[k] = powerflow.REF if lead is ref else powerflow.PV
            V0[k] = lead.E / self.v_base * np.exp(1j * np.angle(V0[k]))
            for m in members:
                if m is not ref:
                    P[k] += self._electrical(m) / S_BASE
        ref_k = local[self.bus_index[ref.cfg.bus]]
        V0[ref_k] = ref.E / self.v_base
        impedance = []
        for lid, load in self.system.loads.items():
            if load.bus in names and self._in_service(lid):
                k = names.index(load.bus)
                p, q = self.load_ref[lid]
                if load.model == "constant_impedance":
                    Y[k, k] += complex(p, -q) / S_BASE
                else:
                    P[k] -= p / S_BASE
                    Q[k] -= q / S_BASE
                    impedance.append((lid, k, p, q))
        for mid, mg in self.system.microgrids.items():
            if mg.bus in names and self._in_service(mid):
                P[names.index(mg.bus)] += self.mg[mid]["P"] / S_BASE
                Q[names.index(mg.bus)] += self.mg[mid]["Q"] / S_BASE
        result = powerflow.solve(Y, kind, P, Q, V0)
        if not result.converged:
            # voltage collapse of constant-power loads: fall back to constant impedance; those
            # loads then draw P·|V|² (see _load_scale), which is what they report
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
            others_p = sum(self._electrical(m) for m in members if m is not ref)
            lead = ref if ref in members else members[0]
            load_p, load_q = self._bus_demand(names[k], result.V[k])
            p_bus = S_bus[k].real + load_p
            q_bus = S_bus[k].imag + load_q
            for m in members:
                m.P = p_bus - others_p if m is ref else self._electrical(m)
                m.Q = q_bus if m is lead else 0.0
        frame = ref.delta - float(np.angle(result.V[ref_k]))
        island.f = ref.omega * self.f0
        for k, b in enumerate(buses):
            self.bus_V[b] = result.V[k] * self.v_base * np.exp(1j * frame)
            self.bus_f[b] = island.f
        for g in island.machines:
            m = self.machines[g]
            m.delta = float(np.angle(self.bus_V[self.bus_index[m.cfg.bus]]))
            m.E = abs(self.bus_V[self.bus_index[m.cfg.bus]])

    def _bus_demand(self, bus: str, v_pu: complex) -> tuple[float, float]:
        """Power drawn at ``bus`` by loads, minus microgrid injection (W, var)."""
        p = q = 0.0
        for lid, load in self.system.loads.items():
            if load.bus == bus and self._in_service(lid):
                lp, lq = self.load_ref[lid]
                scale = self._load_scale(lid, abs(v_pu))
                p, q = p + lp * scale, q + lq * scale
        for mid, mg in self.system.microgrids.items():
            if mg.bus == bus and self._in_service(mid):
                p, q = p - self.mg[mid]["P"], q - self.mg[mid]["Q"]
        return p, q

    def _load_scale(self, lid: str, v_pu: float) -> float:
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
            detail = "; ".join(f"{lid} draws {self.load_PQ[lid][0]:.0f} W of {self.load_ref[lid][0]:.0f} W"
                               for lid in restored)
            self.events.append(("restored", {"object": ",".join(restored), "value": self.load_PQ[restored[0]][0],
                                             "detail": f"normal power flow is back: {detail}"}))

    def _collapse_record(self, loads: list[str], reference: str) -> dict[str, Any]:
        island = next(i for i in self.islands if i.reference == reference)
        loads = sorted(loads, key=lambda lid: self.load_PQ[lid][0] - self.load_ref[lid][0])  # worst first
        parts = []
        for lid in loads:
            bus = self.system.loads[lid].bus
            parts.append(f"{lid} draws {self.load_PQ[lid][0]:.0f} W of {self.load_ref[lid][0]:.0f} W "
                         f"({bus} at {abs(self.bus_V[self.bus_index[bus]]):.1f} V)")
        return {"object": ",".join(loads), "value": self.load_PQ[loads[0]][0],
                "detail": f"voltage collapse in the island of {reference} ({len(island.buses)} buses): "
                          f"constant-power loads solved as impedances; {'; '.join(parts)}"}

    def _electrical(self, m: Machine) -> float:
        """Electrical output (W) of a machine that follows its prime mover."""
        return (m.pm - m.cfg.losses * m.omega ** 2) * m.rating

    def _update_consumers(self) -> None:
        """Load powers and line currents from the bus voltages just solved."""
        for lid, load in self.system.loads.items():
            v = abs(self.bus_V[self.bus_index[load.bus]]) / self.v_base
            if v < LIVE or not self._in_service(lid):
                self.load_PQ[lid] = (0.0, 0.0)
                continue
            p, q = self.load_ref[lid]
            scale = self._load_scale(lid, v)
            self.load_PQ[lid] = (float(p * scale), float(q * scale))
        for tid, line in self.system.lines.items():
            if not self._in_service(tid):
                self.line_I[tid] = 0.0
                continue
            va = self.bus_V[self.bus_index[line.from_bus]]
            vb = self.bus_V[self.bus_index[line.to_bus]]
            self.line_I[tid] = abs((va - vb) / complex(line.R, line.X) + va * 0.5j * line.B)
        for gid, m in self.machines.items():
            if not self._in_service(gid) or m.E < LIVE * self.v_base:
                m.P = m.Q = 0.0

    # -- time -------------------------------------------------------------------------
    def step(self, dt: float | None = None) -> None:
        """Advance the simulated time by ``dt`` (default: the system's step)."""
        dt = self.system.step if dt is None else dt
        self._microgrids(dt)
        for island in self.islands:
            if island.live:
                self._island_dynamics(island, dt)
        connected = {g for island in self.islands for g in island.machines}
        for gid, m in self.machines.items():
            if gid not in connected:
                self._machine_alone(m, dt)
            self._governor(m, dt, len(self._island_of(gid)) > 1)
            self._voltage_regulator(m, dt)
            self._status(gid, m)
            if m.autosync:
                self._autosync(gid, m)
        self._overcurrent()
        self._solve()
        self._meters(dt)
        self.t += dt
        self._track_collapse()

    def _island_of(self, gid: str) -> list[str]:
        return next((i.machines for i in self.islands if gid in i.machines), [])

    def _island_dynamics(self, island: Island, dt: float) -> None:
        members = [self.machines[g] for g in island.machines]
        inertia = sum(2 * m.cfg.H * m.rating for m in members)
        mechanical = sum((m.pm - m.cfg.losses * m.omega ** 2) * m.rating for m in members)
        electrical = sum(m.P for m in members)
        omega = max(0.0, members[0].omega + dt * (mechanical - electrical) / inertia)
        ref = self.machines[island.reference]
        ref.delta = wrap(ref.delta + 2 * math.pi * self.f0 * (omega - 1.0) * dt)
        for m in members:
            m.omega = omega

    def _machine_alone(self, m: Machine, dt: float) -> None:
        accel = (m.pm - m.cfg.losses * m.omega ** 2) / (2 * m.cfg.H)
        m.omega = max(0.0, m.omega + dt * accel)
        m.delta = wrap(m.delta + 2 * math.pi * self.f0 * (m.omega - 1.0) * dt)
        m.P = m.Q = 0.0

    def _governor(self, m: Machine, dt: float, shared: bool) -> None:
        """Speed control (slack, or any machine alone) or power control with droop."""
        cfg = m.cfg
        if m.status in ("OFF", "FAULT"):
            m.pm = m.integral = 0.0
            return
        if m.status == "STOPPING":
            command = -2 * cfg.H * cfg.accel             # the drive brakes along its ramp
        else:
            target = m.f_ref / self.f0
            ramp = float(np.clip(target - m.omega_target, -cfg.accel * dt, cfg.accel * dt))
            m.omega_target += ramp
            losses = cfg.losses * m.omega ** 2
            if m.mode == "POWER" and shared:
                # power control holds the electrical output at P_ref, with speed droop
                command = m.P_ref / m.rating + losses + (m.omega_target - m.omega) / cfg.droop
                m.integral = m.pm
            else:
                # speed control: PI on the speed error plus the torque the ramp itself needs
                error = m.omega_target - m.omega
                m.integral = float(np.clip(m.integral + cfg.Ki * error * dt, -0.1, m.p_max))
                command = cfg.Kp * error + m.integral + 2 * cfg.H * ramp / dt
            command = float(np.clip(command, -0.1, m.p_max))
        m.pm += (command - m.pm) * min(1.0, dt / cfg.Tg)

    def _voltage_regulator(self, m: Machine, dt: float) -> None:
        excited = m.status in ("STARTING", "RUNNING")
        target = m.V_ref * min(1.0, m.omega / 0.9) if excited else 0.0
        m.E += (target - m.E) * min(1.0, dt / m.cfg.Ta)

    def _status(self, gid: str, m: Machine) -> None:
        before = (m.status, m.ready, self._in_service(gid))
        if m.status == "STARTING" and m.omega > 0.97 * m.f_ref / self.f0 and m.E > 0.9 * m.V_ref:
            m.status = "RUNNING"
        elif m.status == "STOPPING" and m.omega < 0.02:
            m.status, m.omega, m.E, m.pm = "OFF", 0.0, 0.0, 0.0
        m.ready = (m.status == "RUNNING" and abs(m.omega * self.f0 - m.f_ref) < 0.2
                   and abs(m.E - m.V_ref) < 0.05 * m.V_ref)
        if (m.status, m.ready, self._in_service(gid)) != before:
            self.events.append(("state", gid))

    def _autosync(self, gid: str, m: Machine) -> None:
        """The generator's own automatic synchronizer (the SYNCHRONIZE command)."""
        cb = self.breaker_of.get(gid)
        if cb is None or self.breakers[cb]:
            m.autosync = False
            return
        v_bus, a_bus, f_bus = self._bus_side(self.bus_index[m.cfg.bus])
        if v_bus < LIVE * self.v_base:
            return
        dphi = wrap(a_bus - m.delta)
        m.f_ref = f_bus + float(np.clip(0.05 * dphi, -0.1, 0.1))
        m.V_ref = v_bus
        if abs(m.omega * self.f0 - f_bus) < 0.1 and abs(m.E - v_bus) < 2.0 and abs(math.degrees(dphi)) < 5:
            m.autosync = False
            m.f_ref, m.V_ref = self.f0, m.cfg.V_ref
            if self.close(cb):
                m.mode = "POWER"
                self.events.append(("state", gid))

    def _overcurrent(self) -> None:
        for tid, line in self.system.lines.items():
            cb = self.breaker_of.get(tid)
            if cb and line.I_max and self.breakers[cb] and self.line_I[tid] > line.I_max:
                self._open(cb, trip=True, fault="OVERCURRENT",
                           detail=f"{tid} carried {self.line_I[tid]:.1f} A > {line.I_max:.1f} A")

    # -- microgrids, storage, emulators -----------------------------------------------
    def _microgrids(self, dt: float) -> None:
        for pid, pv in self.pv.items():
            cfg = self.system.pv[pid]
            p = max(0.0, cfg.rating * pv["Ir"] / 1000.0 * (1 + cfg.gamma * (pv["Temp"] - 25.0)))
            pv["P"], pv["V"] = p, (cfg.V_mp * (0.9 + 0.1 * min(pv["Ir"] / 1000.0, 1.0)) if pv["Ir"] > 0 else 0.0)
            pv["I"] = p / pv["V"] if pv["V"] else 0.0
        for wid, w in self.wind.items():
            cfg = self.system.wind[wid]
            ws = w["Ws"]
            share = 0.0 if ws < cfg.Ws_cut_in or ws > cfg.Ws_cut_out else \
                min(1.0, ((ws - cfg.Ws_cut_in) / (cfg.Ws_rated - cfg.Ws_cut_in)) ** 3)
            w["P"] = cfg.rating * share
            w["f"] = cfg.f_rated * min(ws / cfg.Ws_rated, 1.2) if share > 0 else 0.0
            w["V"] = cfg.V_rated * w["f"] / cfg.f_rated
        for mid, cfg in self.system.microgrids.items():
            self._microgrid(mid, cfg, dt)

    def _microgrid(self, mid: str, cfg: Any, dt: float) -> None:
        state = self.mg[mid]
        sources = (sum(self.pv[p]["P"] for p in cfg.pv) + sum(self.wind[w]["P"] for w in cfg.wind)
                   + cfg.fuel_cell)
        bus_live = abs(self.bus_V[self.bus_index[cfg.bus]]) > LIVE * self.v_base
        tied = state["mode"] == "GRID_CONNECTED" and self._in_service(mid) and bus_live
        fixed = {e: self.storage[e]["I_ref"] for e in cfg.storage if self.storage[e]["I_ref"] is not None}
        free = [e for e in cfg.storage if e not in fixed and self._storage_available(e)]
        battery = sum(self.storage[e]["V"] * i for e, i in fixed.items())
        if tied and free:
            p_ac = state["P_ref"]
        elif tied:
            p_ac = float(np.clip(sources + battery, -cfg.rating, cfg.rating))
        else:
            p_ac = 0.0
        balance = p_ac - sources - battery            # what the free storage must deliver
        for e in cfg.storage:
            current = fixed.get(e, balance / len(free) / self.storage[e]["V"] if e in free else 0.0)
            self._storage(e, current, dt)
        state["P"], state["Q"] = p_ac, (state["Q_ref"] if tied else 0.0)
        state["Vdc"] = cfg.Vdc
        state["Idc"] = p_ac / cfg.Vdc

    def _storage_available(self, eid: str) -> bool:
        return 0.5 < self.storage[eid]["SoC"] < 99.5

    def _storage(self, eid: str, current: float, dt: float) -> None:
        cfg, state = self.system.storage[eid], self.storage[eid]
        current = float(np.clip(current, -cfg.I_max, cfg.I_max))
        if (state["SoC"] <= 0.0 and current > 0) or (state["SoC"] >= 100.0 and current < 0):
            current = 0.0
        ocv = cfg.V_nom * (0.9 + 0.2 * state["SoC"] / 100.0)
        state["I"], state["V"] = current, ocv - cfg.R * current
        state["SoC"] = float(np.clip(state["SoC"] - state["V"] * current * dt / 3600.0 / cfg.capacity * 100.0,
                                     0.0, 100.0))
        state["Temp"] = 25.0 + 0.002 * cfg.R * current ** 2

    def _meters(self, dt: float) -> None:
        for sid, meter in self.system.meters.items():
            p, q = self.load_PQ[meter.load]
            energy = self.meter_energy[sid]
            energy[0] += p * dt / 3600.0
            energy[1] += q * dt / 3600.0
            log = self.meter_log[sid]
            if not log or self.t - log[-1][0] >= 1.0:
                log.append((self.t, energy[0], energy[1]))
                while log and self.t - log[0][0] > 3600.0:
                    log.popleft()

    # -- what the sensors see ---------------------------------------------------------
    def measurements(self) -> dict[str, dict[str, float]]:
        """True values of every measured object, by object id."""
        out: dict[str, dict[str, float]] = {}
        for gid, m in self.machines.items():
            v = m.E if not self._in_service(gid) else abs(self.bus_V[self.bus_index[m.cfg.bus]])
            i = math.hypot(m.P, m.Q) / (3 * v) if v > 1.0 else 0.0
            f = m.omega * self.f0 if m.E > LIVE * self.v_base else 0.0
            out[gid] = dict(Va=v, Vb=v, Vc=v, Ia=i, Ib=i, Ic=i, f=f, P=m.P, Q=m.Q,
                            speed=m.omega * RATED_RPM, angle=wrap(m.delta))
        for lid, (p, q) in self.load_PQ.items():
            out[lid] = dict(P=p, Q=q)
        for n, bus in enumerate(self.system.buses):
            v = abs(self.bus_V[n])
            out[bus] = dict(Va=v, Vb=v, Vc=v)
        for tid, current in self.line_I.items():
            out[tid] = dict(Ia=current, Ib=current, Ic=current)
        for mid, cfg in self.system.microgrids.items():
            state = self.mg[mid]
            v = abs(self.bus_V[self.bus_index[cfg.bus]])
            i = math.hypot(state["P"], state["Q"]) / (3 * v) if v > 1.0 else 0.0
            out[mid] = dict(Ia=i, Ib=i, Ic=i, Va=v, Vb=v, Vc=v, f=float(self.bus_f[self.bus_index[cfg.bus]]),
                            P=state["P"], Q=state["Q"], Vdc=state["Vdc"], Idc=state["Idc"])
        for sid, meter in self.system.meters.items():
            load = self.system.loads[meter.load]
            v = abs(self.bus_V[self.bus_index[load.bus]])
            p, q = self.load_PQ[meter.load]
            i = math.hypot(p, q) / (3 * v) if v > 1.0 else 0.0
            pa, qa = self.meter_energy[sid]
            out[sid] = dict(Ia=i, Ib=i, Ic=i, Va=v, Vb=v, Vc=v, PA=pa, QA=qa,
                            PA_minute=pa - self._energy_before(sid, 60.0, 1),
                            QA_minute=qa - self._energy_before(sid, 60.0, 2),
                            PA_hour=pa - self._energy_before(sid, 3600.0, 1),
                            QA_hour=qa - self._energy_before(sid, 3600.0, 2), V_rms=v, I_rms=i)
        for pid, pv in self.pv.items():
            out[pid] = dict(Ir=pv["Ir"], Temp=pv["Temp"], P=pv["P"], V=pv["V"], I=pv["I"])
        for wid, w in self.wind.items():
            i = w["P"] / (3 * w["V"]) if w["V"] > 1.0 else 0.0
            out[wid] = dict(Ws=w["Ws"], Ia=i, Ib=i, Ic=i, Va=w["V"], Vb=w["V"], Vc=w["V"], f=w["f"],
                            P=w["P"], Q=0.0)
        for eid, e in self.storage.items():
            out[eid] = dict(V=e["V"], I=e["I"], SoC=e["SoC"], Temp=e["Temp"])
        for pid, pmu in self.system.pmus.items():
            v = self.bus_V[self.bus_index[pmu.bus]]
            ang = float(np.angle(v))
            out[pid] = dict(Va_mag=abs(v), Va_ang=ang, Vb_mag=abs(v), Vb_ang=wrap(ang - 2 * math.pi / 3),
                            Vc_mag=abs(v), Vc_ang=wrap(ang + 2 * math.pi / 3), Ia_mag=0.0, Ia_ang=0.0,
                            f=float(self.bus_f[self.bus_index[pmu.bus]]), rocof=0.0,
                            quality=0 if abs(v) > LIVE * self.v_base else 0x8000)
        return out

    def _energy_before(self, sid: str, window: float, column: int) -> float:
        for entry in self.meter_log[sid]:
            if entry[0] >= self.t - window:
                return entry[column]
        return 0.0

    def state(self, object_id: str) -> dict[str, Any]:
        """The State-topic fields of a generator, breaker or microgrid."""
        if object_id in self.machines:
            m = self.machines[object_id]
            return dict(status=m.status, mode=m.mode, sync=self._in_service(object_id) and m.running, ready=m.ready)
        if object_id in self.breakers:
            return dict(status="CLOSED" if self.breakers[object_id] else "OPEN")
        return dict(mode=self.mg[object_id]["mode"])

    def stateful(self) -> list[str]:
        return [*self.machines, *self.breakers, *self.mg]

    # -- convenience for tests and controllers ----------------------------------------
    def run(self, seconds: float) -> None:
        for _ in range(int(round(seconds / self.system.step))):
            self.step()

    def total_load(self) -> float:
        return sum(p for p, _ in self.load_PQ.values())


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
