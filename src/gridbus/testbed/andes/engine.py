"""ANDES as a testbed engine: time-domain simulation stepped in chunks, measured in SI units.

:class:`AndesEngine` offers the calls of :class:`gridbus.testbed.engine.Engine`,
so :class:`gridbus.testbed.service.TestbedService` puts it on the bus exactly
as it does the lab plant: same topics, same commands, same pacing.  Each
:meth:`step` raises ANDES's end time by one step and continues the TDS
(ANDES keeps its state between calls), so simulated time advances only as
the service asks.

Positive sequence to three phases: ANDES solves a balanced network, so each
three-phase field carries the positive-sequence value (``Va = Vb = Vc = |V|``
phase to neutral, RMS; ``Ia = Ib = Ic = |I|``), and a PMU's VB, VC lag and
lead VA by 120°.  Line currents and flows (``P``, ``Q``: three-phase power into
the line, positive from the from bus towards the to bus) are at the from end.  A machine's ``speed`` is
that of a two-pole machine (``60 · f`` rpm), its ``angle`` its bus angle.

Commands: ``Breaker_Command`` switches a line, machine or load (ANDES status
``u``, then a connectivity check); ``Generator_Command`` ``P_ref`` sets the
governor's power reference, ``V_ref`` the exciter's voltage reference,
``action`` STOP/START disconnects/reconnects the machine; ``Load_Command``
scales the load's converted constants to draw ``P_ref``/``Q_ref`` at its
initial voltage.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from ...bus import Bus
from ...errors import CommandRejected, GridbusError, UnknownObjectError
from ...timebase import TimeBase
from ..engine import Event
from .case import AndesCase
from .network import network_of
from .pmus import PhasorPMUs

_log = logging.getLogger(__name__)

_LOAD_P = ("Ppf", "Ipeq", "Req")
_LOAD_Q = ("Qpf", "Iqeq", "Xeq")


class AndesEngine:
    """One ANDES case, stepped by the testbed service (the :class:`Engine` protocol)."""

    def __init__(self, case: AndesCase) -> None:
        self.case, self.ss, self.ids = case, case.ss, case.ids
        self.t = 0.0
        self._k = 0  # steps taken: tf = k * step, free of float drift
        self.net = network_of(self.ss)
        self._pos = {b: n for n, b in enumerate(self.net.bus_idx)}
        self.system = case.system()
        self.events: list[Event] = []
        self._u = self._statuses()
        self._freq_of = {bus: n for n, bus in enumerate(self.ss.BusFreq.bus.v)}
        self.failed = ""
        self._vorigin: dict[str, tuple[float, float]] = {}  # gid -> (vref, |V|) before any V_ref

    def pmu_publisher(self, bus: Bus, clock: TimeBase) -> PhasorPMUs:
        """The service's PMUs: frames from ANDES's phasors (no waveforms to estimate from)."""
        return PhasorPMUs(bus, self.system, clock, seed=self.system.seed)

    # -- time -------------------------------------------------------------------------
    def start(self) -> None:
        """The case was initialised when it was loaded: nothing left to prepare."""

    def step(self, dt: float | None = None) -> None:
        """Continue ANDES's TDS to ``t + dt`` (default: one case step)."""
        ss = self.ss
        if dt is None:
            self._k += 1
            tf = self._k * self.case.step
        else:
            tf = self.t + dt
            self._k = round(tf / self.case.step)
        ss.TDS.config.tf = tf
        ss.TDS.run(no_summary=True)
        if ss.TDS.busted or not math.isclose(float(ss.dae.t), tf, abs_tol=1e-9):
            self.failed = f"ANDES's time-domain simulation stopped at t={float(ss.dae.t):.4f} s (diverged)"
            raise GridbusError(self.failed)
        self.t = tf
        self._track_status(scenario=True)

    # -- statuses ---------------------------------------------------------------------
    def _statuses(self) -> dict[str, int]:
        return {
            cb: int(getattr(self.ss, model).u.v[getattr(self.ss, model).idx2uid(idx)])
            for cb, (model, idx, _) in self.ids.breaker.items()
        }

    def _track_status(self, scenario: bool) -> None:
        """State events for every switched device; a Protection trip when the scenario did it."""
        now = self._statuses()
        for cb, u in now.items():
            if u == self._u[cb]:
                continue
            element = self.ids.breaker[cb][2]
            self.events.append(("state", cb))
            if element in self.ids.gen:
                self.events.append(("state", element))
            if scenario and not u:
                detail = f"{element} tripped by the scenario at t={self.t:.3f} s"
                self.events.append(
                    (
                        "protection",
                        {
                            "id": cb,
                            "fault": "NO_FAULT",
                            "trip": True,
                            "df": 0.0,
                            "dV": 0.0,
                            "dphi": 0.0,
                            "detail": detail,
                        },
                    )
                )
        self._u = now
        self.net.in_service = np.asarray(self.ss.Line.u.v, dtype=float) > 0.5

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # -- what the sensors see ---------------------------------------------------------
    def voltages(self) -> np.ndarray:
        """Complex per-unit bus voltages, in network order."""
        bus = self.ss.Bus
        return np.asarray(bus.v.v, dtype=float) * np.exp(1j * np.asarray(bus.a.v, dtype=float))

    def bus_frequency(self, bus_id: str) -> float:
        """Hz at a bus: ANDES's BusFreq there, else the centre of inertia's speed."""
        idx = self.ids.bus[bus_id]
        n = self._freq_of.get(idx)
        if n is not None:
            return float(self.ss.BusFreq.f.v[n]) * self.case.f0
        return self.mean_frequency()

    def mean_frequency(self) -> float:
        """Hz: the inertia-weighted speed of the machines in service."""
        num = den = 0.0
        for model, idx in self.ids.gen.values():
            mdl = getattr(self.ss, model)
            uid = mdl.idx2uid(idx)
            if mdl.u.v[uid]:
                num += float(mdl.M.v[uid] * mdl.omega.v[uid])
                den += float(mdl.M.v[uid])
        return self.case.f0 * (num / den if den else 1.0)

    def measurements(self) -> dict[str, dict[str, float]]:
        """True values of every object's Measurement topic (SI units), by object id."""
        ss, net, ids = self.ss, self.net, self.ids
        V = self.voltages()
        volts = net.volts(np.abs(V))
        out: dict[str, dict[str, float]] = {}
        for n, bus_id in enumerate(ids.bus):
            out[bus_id] = {"Va": float(volts[n]), "Vb": float(volts[n]), "Vc": float(volts[n])}
        If, _ = net.currents(V)
        amps = net.amps(If, net.f)
        watts = net.mva * 1e6
        flows = net.flows(V) * watts
        for n, tid in enumerate(ids.line):
            a = float(amps[n])
            out[tid] = {"Ia": a, "Ib": a, "Ic": a, "P": float(flows[n].real), "Q": float(flows[n].imag)}
        for gid, (model, idx) in ids.gen.items():
            out[gid] = self._machine(getattr(ss, model), idx, V, volts, watts)
        pq, cfg = ss.PQ, ss.PQ.config
        v = np.asarray(pq.v.v, dtype=float)
        P = pq.ue.v * (cfg.p2p * pq.Ppf.v + cfg.p2i * pq.Ipeq.v * v + cfg.p2z * pq.Req.v * v**2)
        Q = pq.ue.v * (cfg.q2q * pq.Qpf.v + cfg.q2i * pq.Iqeq.v * v + cfg.q2z * pq.Xeq.v * v**2)
        for n, lid in enumerate(ids.load):
            out[lid] = {"P": float(P[n]) * watts, "Q": float(Q[n]) * watts}
        for pmu, params in self.system.pmus.items():
            n = self._pos[ids.bus[params.bus]]
            out[pmu] = {
                "V": float(volts[n]),
                "angle": float(np.angle(V[n])),
                "f": self.bus_frequency(params.bus),
                "live": 1.0 if abs(V[n]) > 0.1 else 0.0,
            }
        return out

    def _machine(self, mdl: Any, idx: Any, V: np.ndarray, volts: np.ndarray, watts: float) -> dict[str, float]:
        uid = mdl.idx2uid(idx)
        n = self._pos[mdl.bus.v[uid]]
        on = bool(mdl.u.v[uid])
        P = float(mdl.Pe.v[uid]) if on else 0.0
        Q = float(mdl.Qe.v[uid]) if on else 0.0
        amps = float(self.net.amps(np.array([math.hypot(P, Q) / max(abs(V[n]), 1e-6)]), np.array([n]))[0])
        f = float(mdl.omega.v[uid]) * self.case.f0 if on else 0.0
        return {
            "Ia": amps,
            "Ib": amps,
            "Ic": amps,
            "Va": float(volts[n]),
            "Vb": float(volts[n]),
            "Vc": float(volts[n]),
            "f": f,
            "P": P * watts,
            "Q": Q * watts,
            "speed": 60.0 * f,
            "angle": float(np.angle(V[n])),
        }

    # -- states -----------------------------------------------------------------------
    def stateful(self) -> list[str]:
        return [*self.ids.gen, *self.ids.breaker]

    def state(self, object_id: str) -> dict[str, Any]:
        if object_id in self.ids.breaker:
            return {"status": "CLOSED" if self._u[object_id] else "OPEN"}
        model, idx = self.ids.gen[object_id]
        on = bool(getattr(self.ss, model).u.v[getattr(self.ss, model).idx2uid(idx)])
        return {
            "status": "RUNNING" if on else "OFF",
            "mode": "POWER",
            "sync": on,
            "ready": True,
            "direction": "FORWARD",
            "at_speed": on,
            "fault_code": 0,
            "f_ref_applied": self.case.f0,
            "P_ref_applied": self.power_reference(object_id),
        }

    def power_reference(self, gid: str) -> float:
        """The governor's power reference of ``gid`` in W (NaN: no governor)."""
        model, idx = self.ids.gen[gid]
        try:
            return float(self.ss.SynGen.get_pref(self.ss, idx)) * self.net.mva * 1e6
        except (KeyError, AttributeError):
            return math.nan

    # -- commands ---------------------------------------------------------------------
    def command(self, object_id: str, fields: dict[str, Any]) -> None:
        """Obey one command (enum values as names, NaN or None = unchanged), or refuse it whole."""
        given = {k: v for k, v in fields.items() if not _unset(v)}
        if object_id in self.ids.breaker:
            self._breaker(object_id, given)
        elif object_id in self.ids.gen:
            self._generator(object_id, given)
        elif object_id in self.ids.load:
            self._load(object_id, given)
        else:
            raise UnknownObjectError(f"{object_id} is not an object of ANDES case {self.system.name!r}")
        self._track_status(scenario=False)

    def _set_status(self, model: str, idx: Any, closed: bool) -> None:
        self.ss.set_status(model, idx, 1 if closed else 0)
        self.ss.TDS.custom_event = True  # ANDES re-checks connectivity and rebuilds its Jacobian

    def _breaker(self, cb: str, fields: dict[str, Any]) -> None:
        status = fields.get("status")
        if status in ("OPEN", "CLOSED"):
            model, idx, _ = self.ids.breaker[cb]
            self._set_status(model, idx, status == "CLOSED")

    def _generator(self, gid: str, fields: dict[str, Any]) -> None:
        model, idx = self.ids.gen[gid]
        watts = self.net.mva * 1e6
        if "f_ref" in fields and not math.isclose(float(fields["f_ref"]), self.case.f0):
            raise CommandRejected(gid, "f_ref", fields["f_ref"], "ANDES governors hold nominal speed; set P_ref")
        if "P_ref" in fields:
            if math.isnan(self.power_reference(gid)):
                raise CommandRejected(gid, "P_ref", fields["P_ref"], f"{gid} has no governor in the case")
            self.ss.SynGen.set_pref(self.ss, idx, float(fields["P_ref"]) / watts)
            self.events.append(("state", gid))
        if "V_ref" in fields:
            # an exciter's vref is not the terminal voltage (it carries the exciter's own offsets):
            # the command moves it by the change asked of the terminal voltage since the start
            vref0, v0 = self._voltage_origin(gid, model, idx)
            mdl = getattr(self.ss, model)
            kv = self.net.kv[self._pos[mdl.bus.v[mdl.idx2uid(idx)]]]
            target = float(fields["V_ref"]) / (kv * 1e3 / math.sqrt(3))
            self.ss.SynGen.set_vref(self.ss, idx, vref0 + target - v0)
        action = fields.get("action", "NONE")
        if action in ("STOP", "START"):
            self._set_status(model, idx, action == "START")

    def _voltage_origin(self, gid: str, model: str, idx: Any) -> tuple[float, float]:
        """(exciter vref, terminal |V| pu) of ``gid`` before its first V_ref command."""
        if gid not in self._vorigin:
            mdl = getattr(self.ss, model)
            v0 = float(self.ss.Bus.v.v[self._pos[mdl.bus.v[mdl.idx2uid(idx)]]])
            self._vorigin[gid] = (float(self.ss.SynGen.get_vref(self.ss, idx)), v0)
        return self._vorigin[gid]

    def _load(self, lid: str, fields: dict[str, Any]) -> None:
        pq, uid = self.ss.PQ, self.ss.PQ.idx2uid(self.ids.load[lid])
        watts = self.net.mva * 1e6
        v0 = float(pq.v0.v[uid]) if hasattr(pq, "v0") else 1.0
        for key, names in (("P_ref", _LOAD_P), ("Q_ref", _LOAD_Q)):
            if key in fields:
                target = float(fields[key]) / watts
                # constant power, current and impedance parts, each drawing `target` at v0
                for name, value in zip(names, (target, target / v0, target / v0**2), strict=True):
                    getattr(pq, name).v[uid] = value


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
