"""An ANDES case as a gridbus system: object ids, the scenario's events, ready to simulate.

ANDES names devices by ``idx`` (``GENROU_2``, bus ``4``, ``Line_7``, ``PQ_3``);
gridbus names objects by typed ids.  The mapping (also in docs/testbed.md):

==========================  ========================  ==============================
ANDES                       gridbus object            why
==========================  ========================  ==============================
Bus ``n``                   ``Bus_n``                 the bus number
GENROU/GENCLS ``X_n``       ``G_n``                   the machine's own number
Line ``bus1``-``bus2``      ``TL_a-b`` (``TL_a-b.2``) its ends (parallel lines numbered)
PQ ``PQ_n``                 ``L_n``                   the load's own number
a line's / machine's        ``CB_a-b`` / ``CB_Gn``    the breaker is the device's ``u``
status ``u``                / ``CB_Ln``
==========================  ========================  ==============================

Every line, machine and load has a breaker (ANDES's connection status), so
``Breaker_Command`` opens and closes any of them.  A PMU ``PMU_n`` watches
``Bus_n``; ANDES's ``BusFreq`` gives its frequency (one is added where the
case has none).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import GridbusError, ScenarioError
from ...extras import require
from ..devices import BreakerParams, GeneratorParams, LoadParams, PMUParams
from ..system import Line, System
from .scenario import Event, Scenario

_log = logging.getLogger(__name__)

CASES = {"ieee14": "ieee14/ieee14_full.xlsx", "ieee39": "ieee39/ieee39_full.xlsx"}
"""Short case names -> ANDES's shipped files (with machines, exciters and governors)."""
MACHINES = ("GENROU", "GENCLS")
DEFAULT_RATE = 30.0  # Hz: every measurement at a SCADA-fast, PMU-like rate unless the scenario says otherwise


def andes_module() -> Any:
    """The ``andes`` package (the ``andes`` extra), quiet: its log goes through ours."""
    andes = require("andes", "the ANDES testbed engine")
    andes.config_logger(stream_level=logging.ERROR)
    logging.getLogger("andes").setLevel(logging.ERROR)  # its per-step debug lines would flood the CLI's log
    return andes


def case_path(case: str) -> str:
    """A short name (``ieee14``, ``ieee39``) or a path to any case file ANDES reads."""
    if case in CASES:
        return str(andes_module().get_case(CASES[case]))
    path = Path(case)
    if not path.is_file():
        raise GridbusError(f"unknown ANDES case {case!r}: use {', '.join(CASES)} or the path of a case file")
    return str(path)


def _number(idx: Any, fallback: int) -> str:
    """The trailing number of an ANDES idx (``GENROU_2`` -> ``2``, ``7`` -> ``7``)."""
    match = re.search(r"(\d+)$", str(idx))
    return match.group(1) if match else str(fallback)


@dataclass
class CaseIds:
    """gridbus id <-> ANDES (model, idx), for every object the engine publishes or obeys."""

    bus: dict[str, Any] = field(default_factory=dict)  # Bus_n -> bus idx
    gen: dict[str, tuple[str, Any]] = field(default_factory=dict)  # G_n -> (model, idx)
    line: dict[str, Any] = field(default_factory=dict)  # TL_a-b -> Line idx
    load: dict[str, Any] = field(default_factory=dict)  # L_n -> PQ idx
    breaker: dict[str, tuple[str, Any, str]] = field(default_factory=dict)  # CB -> (model, idx, element)
    bus_of: dict[Any, str] = field(default_factory=dict)  # bus idx -> Bus_n

    def element(self, object_id: str) -> tuple[str, Any]:
        """(ANDES model, idx) of a generator, line or load id."""
        if object_id in self.gen:
            return self.gen[object_id]
        if object_id in self.line:
            return "Line", self.line[object_id]
        if object_id in self.load:
            return "PQ", self.load[object_id]
        raise KeyError(object_id)


def map_ids(ss: Any) -> CaseIds:
    """Name every bus, machine, line and load of a loaded (not yet set up) ANDES system."""
    ids = CaseIds()
    for n, idx in enumerate(ss.Bus.idx.v):
        gid = f"Bus_{_number(idx, n + 1)}"
        ids.bus[gid], ids.bus_of[idx] = idx, gid
    for model in MACHINES:
        mdl = getattr(ss, model, None)
        for n, idx in enumerate([] if mdl is None else mdl.idx.v):
            gid = f"G_{_number(idx, n + 1)}"
            if gid in ids.gen:
                gid = f"G_{model}{n + 1}"
            ids.gen[gid] = (model, idx)
            ids.breaker[f"CB_G{gid[2:]}"] = (model, idx, gid)
    for idx, a, b in zip(ss.Line.idx.v, ss.Line.bus1.v, ss.Line.bus2.v, strict=True):
        base = f"TL_{_number(a, 0)}-{_number(b, 0)}"
        tid, k = base, 1
        while tid in ids.line:
            k += 1
            tid = f"{base}.{k}"
        ids.line[tid] = idx
        ids.breaker["CB_" + tid[3:]] = ("Line", idx, tid)
    for n, idx in enumerate(ss.PQ.idx.v):
        lid = f"L_{_number(idx, n + 1)}"
        ids.load[lid] = idx
        ids.breaker[f"CB_L{lid[2:]}"] = ("PQ", idx, lid)
    return ids


class AndesCase:
    """A loaded ANDES case with a scenario compiled in, power flow solved, TDS initialised."""

    def __init__(self, scenario: Scenario, step: float = 1 / 30) -> None:
        andes = andes_module()
        self.scenario, self.step = scenario, step
        self.path = case_path(scenario.case)
        ss = andes.load(self.path, setup=False, no_output=True, default_config=True)
        if ss is None:
            raise GridbusError(f"ANDES could not read case {self.path}")
        self.ss = ss
        self.ids = map_ids(ss)
        self.pmu_buses = self._pmu_buses()
        for event in scenario.events:
            self._compile(event)
        have = set(ss.BusFreq.bus.v)
        for bus in self.pmu_buses:
            if self.ids.bus[bus] not in have:
                ss.add("BusFreq", {"bus": self.ids.bus[bus]})
        ss.setup()
        ss.PFlow.run()
        if not ss.PFlow.converged:
            raise GridbusError(f"the power flow of {self.path} did not converge")
        ss.TDS.config.tstep = step
        ss.TDS.config.tf = 0.0
        ss.TDS.config.no_tqdm = 1
        ss.TDS.config.criteria = 0  # run through angle separation: a testbed reports, it does not stop
        ss.TDS.init()
        _land_on_end_time(ss)
        self.mva = float(ss.config.mva)
        self.f0 = float(ss.config.freq)

    # -- the scenario, as ANDES timed models -------------------------------------------
    def _pmu_buses(self) -> list[str]:
        wanted = self.scenario.pmu_buses
        if wanted is None:  # every machine's bus
            buses = [self.ids.bus_of[b] for model, idx in self.ids.gen.values() for b in self._gen_bus(model, idx)]
            return list(dict.fromkeys(buses))
        for bus in wanted:
            if bus not in self.ids.bus:
                raise ScenarioError(f"{self.scenario.path}: [pmus] {bus!r} is not a bus of case {self.path}")
        return list(wanted)

    def _gen_bus(self, model: str, idx: Any) -> list[Any]:
        mdl = getattr(self.ss, model)
        return [mdl.bus.v[mdl.idx.v.index(idx)]]

    def _compile(self, event: Event) -> None:
        ss, ids, scenario = self.ss, self.ids, self.scenario
        if event.kind == "fault":
            if event.bus not in ids.bus:
                raise scenario.error(event, f"fault: {event.bus!r} is not a bus of the case")
            ss.add(
                "Fault",
                {"bus": ids.bus[event.bus], "tf": event.t, "tc": event.t + event.clear, "rf": event.r, "xf": event.x},
            )
            return
        pool = {"generator": ids.gen, "line": ids.line, "load": ids.load}[
            "generator" if event.kind.startswith("generator") else "line" if event.kind.startswith("line") else "load"
        ]
        if event.object not in pool:
            known = ", ".join(list(pool)[:8])
            raise scenario.error(event, f"{event.kind}: {event.object!r} is not in the case (e.g. {known})")
        model, idx = ids.element(event.object)
        if event.kind.endswith(("_trip", "_close")):
            # Toggle flips the status: a trip of an open device (or a close of a closed one) would
            # do the opposite, so scenarios name the intent and the case checks it
            ss.add("Toggle", {"model": model, "dev": idx, "t": event.t})
            return
        self._load_change(event, idx)

    def _load_change(self, event: Event, idx: Any) -> None:
        """A load step or ramp: ``Alter`` steps that scale the converted load's constants.

        In a TDS ANDES turns PQ loads into constant impedance/current/power parts
        (``Req``, ``Ipeq``, ``Ppf`` and their Q twins); scaling all six by the same
        factor scales the load whatever the split.  A ramp is ``steps`` equal steps.
        """
        steps = 1 if event.kind == "load_step" else max(1, event.steps)
        for k in range(1, steps + 1):
            previous = 1 + (event.scale - 1) * (k - 1) / steps
            now = 1 + (event.scale - 1) * k / steps
            t = event.t + (event.duration * k / steps if event.kind == "load_ramp" else 0.0)
            for src in ("Ppf", "Qpf", "Req", "Xeq", "Ipeq", "Iqeq"):
                self.ss.add(
                    "Alter", {"model": "PQ", "dev": idx, "src": src, "method": "*", "amount": now / previous, "t": t}
                )

    # -- the case as a gridbus system description ---------------------------------------
    def system(self) -> System:
        """The objects of the case as a :class:`System`: what the testbed service publishes."""
        ss, ids = self.ss, self.ids
        kv = dict(zip(ss.Bus.idx.v, ss.Bus.Vn.v, strict=True))
        system = System(name=Path(self.path).stem, path=self.path, frequency=self.f0, step=self.step)
        system.seed = self.scenario.seed
        system.voltage = 1e3 * float(max(kv.values())) / 3**0.5
        system.buses = list(ids.bus)
        for gid, (model, idx) in ids.gen.items():
            mdl = getattr(ss, model)
            uid = mdl.idx2uid(idx)
            bus = ids.bus_of[mdl.bus.v[uid]]
            cb = f"CB_G{gid[2:]}"
            system.generators[gid] = GeneratorParams(
                id=gid, bus=bus, breaker=cb, rating=float(mdl.Sn.v[uid]) * 1e6, H=float(mdl.M.v[uid]) / 2
            )
        for tid, idx in ids.line.items():
            uid = ss.Line.idx2uid(idx)
            a, b = ids.bus_of[ss.Line.bus1.v[uid]], ids.bus_of[ss.Line.bus2.v[uid]]
            zbase = (kv[ss.Line.bus1.v[uid]] * 1e3) ** 2 / (self.mva * 1e6)
            system.lines[tid] = Line(
                id=tid,
                from_bus=a,
                to_bus=b,
                R=float(ss.Line.r.v[uid]) * zbase,
                X=float(ss.Line.x.v[uid]) * zbase,
                B=float(ss.Line.b.v[uid]) / zbase,
                breaker="CB_" + tid[3:],
            )
        for lid, idx in ids.load.items():
            uid = ss.PQ.idx2uid(idx)
            system.loads[lid] = LoadParams(
                id=lid,
                bus=ids.bus_of[ss.PQ.bus.v[uid]],
                breaker=f"CB_L{lid[2:]}",
                P=max(0.0, float(ss.PQ.p0.v[uid]) * self.mva * 1e6),
                Q=float(ss.PQ.q0.v[uid]) * self.mva * 1e6,
                rating=1e8,
            )
        for cb, (model, idx, element) in ids.breaker.items():
            closed = bool(getattr(ss, model).u.v[getattr(ss, model).idx2uid(idx)])
            system.breakers[cb] = BreakerParams(cb, closed, element)
        for bus in self.pmu_buses:
            pmu = "PMU_" + bus[4:]
            system.pmus[pmu] = PMUParams(id=pmu, bus=bus)
        system.sensors = list(self.scenario.sensors)
        system.loss = list(self.scenario.loss)
        reporting = {prefix: DEFAULT_RATE for prefix in ("G", "Bus", "TL", "L")}
        system.rates = reporting | {"PMU": self.scenario.pmu_rate} | dict(self.scenario.rates)
        return system


def _land_on_end_time(ss: Any) -> None:
    """Make each TDS call end exactly at its end time instead of one rounding error short.

    A chunk ends with ``t += tf - t``, which in floating point may stop an ulp
    before ``tf``; ANDES then tries a 1e-17 s step, whose Newton iteration can
    fail and stop the simulation (it does on IEEE 39).  Within a nanosecond of
    ``tf`` the time is snapped to ``tf``, so the step size becomes 0 and the
    call returns.
    """
    tds = ss.TDS
    calc_h = tds.calc_h

    def landing_calc_h(*args: Any, **kwargs: Any) -> Any:
        gap = float(tds.config.tf) - float(ss.dae.t)
        if 0 < gap < 1e-9:
            ss.dae.t = np.asarray(float(tds.config.tf))
        return calc_h(*args, **kwargs)

    tds.calc_h = landing_calc_h
