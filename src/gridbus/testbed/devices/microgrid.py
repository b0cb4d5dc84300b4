"""A DC microgrid (PV, wind, fuel cell, storage) tied to the AC grid by a bidirectional converter.

Grid-connected with free storage, the converter exports ``P_ref`` and the free
batteries take the difference; without free storage it exports what its
sources give, within its rating; islanded (or on a dead bus) it exports
nothing and the storage balances the DC bus alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import LIVE, Band, Device, Stage, need, need_ref, one_of, unit
from .pv import PVDevice
from .storage import StorageDevice
from .wind import WindDevice

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System


@dataclass
class MicrogridParams:
    """What the system file says of a microgrid (``[[microgrid]]``)."""

    id: str
    bus: str
    breaker: str
    rating: float = unit("VA", 4000.0, positive=True)  # converter: |P_ref|, |Q_ref| <= rating
    Vdc: float = unit("V", 380.0, positive=True)  # DC bus
    mode: str = "GRID_CONNECTED"
    P_ref: float = unit("W", 0.0)  # into the AC grid (positive = export)
    Q_ref: float = unit("var", 0.0)
    pv: list[str] = field(default_factory=list)
    wind: list[str] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)
    fuel_cell: float = unit("W", 0.0, non_negative=True)  # constant output of a fuel-cell emulator

    def check(self, system: System) -> None:
        need_ref("bus", self.bus, system.buses, "bus")
        one_of("mode", self.mode, ("ISLANDED", "GRID_CONNECTED"))
        for key, pool, what in (
            ("pv", system.pv, "PV emulator"),
            ("wind", system.wind, "wind emulator"),
            ("storage", system.storage, "energy storage"),
        ):
            for ref in getattr(self, key):
                need_ref(key, ref, pool, what)
        need(
            abs(self.P_ref) <= self.rating and abs(self.Q_ref) <= self.rating,
            "P_ref",
            f"P_ref and Q_ref must be within its converter rating {self.rating:g} VA",
        )


@dataclass
class MicrogridState:
    mode: str = "GRID_CONNECTED"
    P_ref: float = unit("W", 0.0)
    Q_ref: float = unit("var", 0.0)
    P: float = unit("W", 0.0)  # exported into the AC grid
    Q: float = unit("var", 0.0)
    Vdc: float = unit("V", 0.0)
    Idc: float = unit("A", 0.0)


class MicrogridDevice(Device[MicrogridParams, MicrogridState]):
    prefix = "MG"
    section = "microgrid"
    system_attr = "microgrids"
    params_type = MicrogridParams
    stage = Stage.CONVERTERS
    stateful = True
    commanded = True

    def initial(self, params: MicrogridParams) -> MicrogridState:
        return MicrogridState(params.mode, params.P_ref, params.Q_ref, Vdc=params.Vdc)

    def limits(self) -> dict[str, Band]:
        rating = self.params.rating
        return {key: (-rating, rating, f"converter rating ±{rating:g}") for key in ("P_ref", "Q_ref")}

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        state = self.var
        if fields.get("mode") in ("ISLANDED", "GRID_CONNECTED") and fields["mode"] != state.mode:
            state.mode = fields["mode"]
            plant.events.append(("state", self.id))
        for key in ("P_ref", "Q_ref"):
            if key in fields:
                setattr(state, key, float(fields[key]))

    def step(self, plant: Plant, dt: float) -> None:
        cfg, state = self.params, self.var
        pv = [plant.device(p, PVDevice) for p in cfg.pv]
        wind = [plant.device(w, WindDevice) for w in cfg.wind]
        storage = [plant.device(e, StorageDevice) for e in cfg.storage]
        sources = sum(p.var.P for p in pv) + sum(w.var.P for w in wind) + cfg.fuel_cell
        bus_live = plant.bus_voltage(cfg.bus) > LIVE * plant.v_base
        tied = state.mode == "GRID_CONNECTED" and plant.in_service(self.id) and bus_live
        fixed = {e.id: e.var.I_ref for e in storage if e.var.I_ref is not None}
        free = [e.id for e in storage if e.id not in fixed and e.available]
        battery = sum(plant.device(e, StorageDevice).var.V * i for e, i in fixed.items())
        if tied and free:
            p_ac = state.P_ref
        elif tied:
            p_ac = float(np.clip(sources + battery, -cfg.rating, cfg.rating))
        else:
            p_ac = 0.0
        balance = p_ac - sources - battery  # what the free storage must deliver
        for e in storage:
            current = fixed.get(e.id, balance / len(free) / e.var.V if e.id in free else 0.0)
            e.charge(current, dt)
        state.P, state.Q = p_ac, (state.Q_ref if tied else 0.0)
        state.Vdc = cfg.Vdc
        state.Idc = p_ac / cfg.Vdc

    def measure(self, plant: Plant) -> dict[str, float]:
        state = self.var
        v = plant.bus_voltage(self.params.bus)
        i = math.hypot(state.P, state.Q) / (3 * v) if v > 1.0 else 0.0
        return {
            "Ia": i,
            "Ib": i,
            "Ic": i,
            "Va": v,
            "Vb": v,
            "Vc": v,
            "f": plant.bus_frequency(self.params.bus),
            "P": state.P,
            "Q": state.Q,
            "Vdc": state.Vdc,
            "Idc": state.Idc,
        }

    def state(self, plant: Plant) -> dict[str, Any]:
        return {"mode": self.var.mode}
