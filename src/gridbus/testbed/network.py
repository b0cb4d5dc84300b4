"""The plant's AC network: topology, electrical islands and the power flow that solves them.

Breakers split the buses into *electrical islands*; the machines of one island
turn together and an AC power flow (:mod:`.powerflow`) per live island sets the
bus voltages, the line currents and the machine powers, the island's reference
machine taking the mismatch.  Past the voltage-collapse point of a feeder no
constant-power solution exists: the island is solved again with its
constant-power loads as constant impedances, the loads report the power that
actually arrives, and a ``collapse`` event is raised (``restored`` when the
normal solution is back).

:class:`Network` is the part of :class:`gridbus.testbed.plant.Plant` that
solves the network; the plant owns the devices it reads and the breakers that
switch it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import powerflow
from .devices import LIVE, BreakerDevice, GeneratorDevice, LoadDevice, MicrogridDevice
from .system import System

S_BASE = 10_000.0  # VA, three-phase base of the per-unit system
RESTORE_HOLD = 1.0  # s of normal solutions before a collapse is reported over


@dataclass
class Island:
    buses: list[int]
    machines: list[str] = field(default_factory=list)
    reference: str | None = None
    f: float = 0.0

    @property
    def live(self) -> bool:
        return self.reference is not None


class Network:
    """Topology, islands and power flow of the plant (a base of :class:`~.plant.Plant`)."""

    # provided by the plant: the devices the network connects, and where events go
    generators: dict[str, GeneratorDevice]
    loads: dict[str, LoadDevice]
    microgrids: dict[str, MicrogridDevice]
    _breakers: dict[str, BreakerDevice]
    breaker_of: dict[str, str]
    events: list[tuple[str, Any]]
    t: float

    def __init__(self, system: System) -> None:
        self.system = system
        self.f0 = system.frequency
        self.v_base = system.voltage
        self.bus_index = {bus: n for n, bus in enumerate(system.buses)}
        nb = len(system.buses)
        self.bus_V = np.zeros(nb, dtype=complex)  # V, absolute phasors
        self.bus_f = np.zeros(nb)
        self._warm = np.ones(nb, dtype=complex)  # pu start point for the next solve
        self.line_I = {tid: 0.0 for tid in system.lines}
        self.line_S = {tid: 0j for tid in system.lines}  # W + j var into each line at its from end
        self.islands: list[Island] = []
        self._y_cache: dict[tuple[bool, ...], np.ndarray] = {}
        self.collapsed: dict[str, str] = {}  # load -> island reference, solved as impedance now
        self._reported: dict[str, float | None] = {}  # load reported collapsed -> normal since (t)

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
            island.machines = [
                g
                for g, m in self.generators.items()
                if m.params.bus in names and self.in_service(g) and m.var.running and m.var.E > LIVE * self.v_base
            ]
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
            z_base = 3 * self.v_base**2 / S_BASE
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
        reference = island.reference
        assert reference is not None, "only a live island is solved"
        ref = self.generators[reference]
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
                self.collapsed[lid] = reference
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
        return v_pu**2 if impedance else 1.0

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
                continue
            since = self._reported[lid]
            if since is None:
                self._reported[lid] = self.t
            elif self.t - since >= RESTORE_HOLD:
                del self._reported[lid]
                restored.append(lid)
        if restored:
            detail = "; ".join(
                f"{lid} draws {self.loads[lid].var.P:.0f} W of {self.loads[lid].var.P_ref:.0f} W" for lid in restored
            )
            self.events.append(
                (
                    "restored",
                    {
                        "object": ",".join(restored),
                        "value": self.loads[restored[0]].var.P,
                        "detail": f"normal power flow is back: {detail}",
                    },
                )
            )

    def _collapse_record(self, loads: list[str], reference: str) -> dict[str, Any]:
        island = next(i for i in self.islands if i.reference == reference)
        loads = sorted(loads, key=lambda lid: self.loads[lid].var.P - self.loads[lid].var.P_ref)  # worst first
        parts = []
        for lid in loads:
            bus = self.system.loads[lid].bus
            parts.append(
                f"{lid} draws {self.loads[lid].var.P:.0f} W of {self.loads[lid].var.P_ref:.0f} W "
                f"({bus} at {abs(self.bus_V[self.bus_index[bus]]):.1f} V)"
            )
        return {
            "object": ",".join(loads),
            "value": self.loads[loads[0]].var.P,
            "detail": f"voltage collapse in the island of {reference} ({len(island.buses)} buses): "
            f"constant-power loads solved as impedances; {'; '.join(parts)}",
        }

    def _update_consumers(self) -> None:
        """Load powers, line currents and line flows from the bus voltages just solved.

        A line's current and flow are taken at its from end, into the line:
        P + jQ = 3 · V_from · conj(I_from) (three phases, phase voltages), so
        P > 0 when power flows from ``from_bus`` towards ``to_bus``.
        """
        for load in self.loads.values():
            load.draw(self)
        for tid, line in self.system.lines.items():
            if not self.in_service(tid):
                self.line_I[tid] = 0.0
                self.line_S[tid] = 0j
                continue
            va = self.bus_V[self.bus_index[line.from_bus]]
            vb = self.bus_V[self.bus_index[line.to_bus]]
            current = (va - vb) / complex(line.R, line.X) + va * 0.5j * line.B
            self.line_I[tid] = abs(current)
            self.line_S[tid] = complex(3 * va * np.conj(current))
        for gid, g in self.generators.items():
            if not self.in_service(gid) or g.var.E < LIVE * self.v_base:
                g.var.P = g.var.Q = 0.0

    # -- the network as the devices see it --------------------------------------------
    def bus_phasor(self, bus: str) -> complex:
        """The voltage phasor (V) of ``bus`` in the nominal frame."""
        return self.bus_V[self.bus_index[bus]]  # type: ignore[no-any-return]

    def bus_voltage(self, bus: str) -> float:
        return abs(self.bus_V[self.bus_index[bus]])  # type: ignore[no-any-return]

    def bus_frequency(self, bus: str) -> float:
        return float(self.bus_f[self.bus_index[bus]])

    def bus_side(self, bus: str) -> tuple[float, float, float]:
        """(|V|, angle, f) of ``bus``: one side of a breaker, or what a synchronizer matches."""
        v = self.bus_V[self.bus_index[bus]]
        return abs(v), float(np.angle(v)), float(self.bus_f[self.bus_index[bus]])

    def island_of(self, gid: str) -> list[str]:
        """The machines turning with ``gid`` (none when it is not in a live island)."""
        return next((i.machines for i in self.islands if gid in i.machines), [])
