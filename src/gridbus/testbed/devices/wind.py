"""A wind-turbine emulator: power with the cube of the wind speed between cut-in and rated.

Above rated speed it holds the rating, beyond cut-out it stops; the generator's
frequency and voltage follow the speed (before the rectifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Band, Device, Stage, need, unit

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System


@dataclass
class WindParams:
    """What the system file says of a wind emulator (``[[wind]]``)."""

    id: str
    rating: float = unit("W", 2000.0, positive=True)
    Ws: float = unit("m/s", 8.0, non_negative=True)
    Ws_rated: float = unit("m/s", 12.0, positive=True)  # rated wind speed
    Ws_cut_in: float = unit("m/s", 3.0, non_negative=True)
    Ws_cut_out: float = unit("m/s", 25.0, positive=True)
    V_rated: float = unit("V", 120.0, positive=True)  # phase, at rated speed (before the rectifier)
    f_rated: float = unit("Hz", 60.0, positive=True)  # at rated speed
    Ws_max: float = unit("m/s", 30.0, positive=True)  # highest wind speed the emulator accepts

    def check(self, system: System) -> None:
        need(
            self.Ws_cut_in < self.Ws_rated < self.Ws_cut_out,
            "Ws_rated",
            "wind speeds must rise: Ws_cut_in < Ws_rated < Ws_cut_out",
        )
        need(self.Ws <= self.Ws_max, "Ws", f"Ws {self.Ws} is above Ws_max {self.Ws_max:g}")


@dataclass
class WindState:
    Ws: float = unit("m/s", 0.0)
    P: float = unit("W", 0.0)
    V: float = unit("V", 0.0)
    f: float = unit("Hz", 0.0)


class WindDevice(Device[WindParams, WindState]):
    prefix = "W_EM"
    section = "wind"
    system_attr = "wind"
    params_type = WindParams
    stage = Stage.SOURCES
    commanded = True

    def initial(self, params: WindParams) -> WindState:
        return WindState(params.Ws)

    def limits(self) -> dict[str, Band]:
        return {"Ws_ref": (0.0, self.params.Ws_max, f"emulator range 0..{self.params.Ws_max:g} m/s")}

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        if "Ws_ref" in fields:
            self.var.Ws = float(fields["Ws_ref"])

    def step(self, plant: Plant, dt: float) -> None:
        cfg, w = self.params, self.var
        ws = w.Ws
        share = (
            0.0
            if ws < cfg.Ws_cut_in or ws > cfg.Ws_cut_out
            else min(1.0, ((ws - cfg.Ws_cut_in) / (cfg.Ws_rated - cfg.Ws_cut_in)) ** 3)
        )
        w.P = cfg.rating * share
        w.f = cfg.f_rated * min(ws / cfg.Ws_rated, 1.2) if share > 0 else 0.0
        w.V = cfg.V_rated * w.f / cfg.f_rated

    def measure(self, plant: Plant) -> dict[str, float]:
        w = self.var
        i = w.P / (3 * w.V) if w.V > 1.0 else 0.0
        return {"Ws": w.Ws, "Ia": i, "Ib": i, "Ic": i, "Va": w.V, "Vb": w.V, "Vc": w.V, "f": w.f, "P": w.P, "Q": 0.0}
