"""A PV emulator: power from irradiance and cell temperature, at a voltage near V_mp.

P = rating × Ir / 1000 W/m² × (1 + γ (T − 25 °C)); the emulator's irradiance and
temperature are its set-points (``Ir_ref``, ``Temp_ref``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Band, Device, Stage, need, unit

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System


@dataclass
class PVParams:
    """What the system file says of a PV emulator (``[[pv]]``)."""

    id: str
    rating: float = unit("W", 3000.0, positive=True)  # at 1000 W/m2, 25 degC
    V_mp: float = unit("V", 300.0, positive=True)  # at the maximum power point
    Ir: float = unit("W/m2", 800.0, non_negative=True)
    Temp: float = unit("degC", 25.0)
    gamma: float = unit("1/degC", -0.004)  # power temperature coefficient
    Ir_max: float = unit("W/m2", 1500.0, positive=True)  # highest irradiance the emulator accepts
    Temp_min: float = unit("degC", -20.0)  # temperature range the emulator accepts
    Temp_max: float = unit("degC", 80.0)

    def check(self, system: System) -> None:
        need(self.Ir <= self.Ir_max, "Ir", f"Ir {self.Ir} is above Ir_max {self.Ir_max:g}")
        need(self.Temp_min < self.Temp_max, "Temp_max", "Temp_max must be above Temp_min")
        need(self.Temp_min <= self.Temp <= self.Temp_max, "Temp", "Temp is outside Temp_min..Temp_max")


@dataclass
class PVState:
    Ir: float = unit("W/m2", 0.0)
    Temp: float = unit("degC", 25.0)
    P: float = unit("W", 0.0)
    V: float = unit("V", 0.0)
    I: float = unit("A", 0.0)


class PVDevice(Device[PVParams, PVState]):
    prefix = "PV_EM"
    section = "pv"
    system_attr = "pv"
    params_type = PVParams
    stage = Stage.SOURCES
    commanded = True

    def initial(self, params: PVParams) -> PVState:
        return PVState(params.Ir, params.Temp)

    def limits(self) -> dict[str, Band]:
        pv = self.params
        return {
            "Ir_ref": (0.0, pv.Ir_max, f"emulator range 0..{pv.Ir_max:g} W/m2"),
            "Temp_ref": (pv.Temp_min, pv.Temp_max, f"emulator range {pv.Temp_min:g}..{pv.Temp_max:g} degC"),
        }

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        if "Ir_ref" in fields:
            self.var.Ir = float(fields["Ir_ref"])
        if "Temp_ref" in fields:
            self.var.Temp = float(fields["Temp_ref"])

    def step(self, plant: Plant, dt: float) -> None:
        cfg, pv = self.params, self.var
        p = max(0.0, cfg.rating * pv.Ir / 1000.0 * (1 + cfg.gamma * (pv.Temp - 25.0)))
        pv.P, pv.V = p, (cfg.V_mp * (0.9 + 0.1 * min(pv.Ir / 1000.0, 1.0)) if pv.Ir > 0 else 0.0)
        pv.I = p / pv.V if pv.V else 0.0

    def measure(self, plant: Plant) -> dict[str, float]:
        pv = self.var
        return {"Ir": pv.Ir, "Temp": pv.Temp, "P": pv.P, "V": pv.V, "I": pv.I}
