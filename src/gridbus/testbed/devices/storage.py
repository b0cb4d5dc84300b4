"""A battery behind its microgrid's DC bus: state of charge, terminal voltage, current limit.

Its microgrid decides the current (:meth:`MicrogridDevice.step` balances the DC
bus with the free batteries); ``I_ref`` fixes it instead.  Open-circuit voltage
V_nom × (0.9 + 0.2 SoC), internal resistance R, the SoC integrates V·I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Band, Device, need, unit

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System


@dataclass
class StorageParams:
    """What the system file says of an energy storage (``[[storage]]``)."""

    id: str
    capacity: float = unit("Wh", 5000.0, positive=True)
    V_nom: float = unit("V", 240.0, positive=True)
    SoC: float = unit("%", 80.0)
    R: float = unit("ohm", 0.05, non_negative=True)  # internal resistance
    I_max: float = unit("A", 40.0, non_negative=True)  # the converter's limit: |I_ref| <= I_max

    def check(self, system: System) -> None:
        need(0.0 <= self.SoC <= 100.0, "SoC", f"SoC must be 0..100 percent, got {self.SoC}")
        need(self.I_max > 0, "I_max", "I_max must be > 0 (the converter's current limit)")


@dataclass
class StorageState:
    SoC: float = unit("%", 80.0)
    I_ref: float | None = unit("A", None)  # None: free to balance its microgrid
    I: float = unit("A", 0.0)
    V: float = unit("V", 0.0)
    Temp: float = unit("degC", 25.0)


class StorageDevice(Device[StorageParams, StorageState]):
    prefix = "ES"
    section = "storage"
    system_attr = "storage"
    params_type = StorageParams
    commanded = True  # stepped by its microgrid (Stage.NONE)

    def initial(self, params: StorageParams) -> StorageState:
        return StorageState(SoC=params.SoC, V=params.V_nom)

    def limits(self) -> dict[str, Band]:
        return {"I_ref": (-self.params.I_max, self.params.I_max, f"I_max ±{self.params.I_max:g} A")}

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        if "I_ref" in fields:
            self.var.I_ref = float(fields["I_ref"])

    @property
    def available(self) -> bool:
        """Free to balance its microgrid: neither empty nor full."""
        return 0.5 < self.var.SoC < 99.5

    def charge(self, current: float, dt: float) -> None:
        """Deliver ``current`` A (negative: charge) for ``dt`` s, within the limits."""
        cfg, state = self.params, self.var
        current = float(np.clip(current, -cfg.I_max, cfg.I_max))
        if (state.SoC <= 0.0 and current > 0) or (state.SoC >= 100.0 and current < 0):
            current = 0.0
        ocv = cfg.V_nom * (0.9 + 0.2 * state.SoC / 100.0)
        state.I, state.V = current, ocv - cfg.R * current
        state.SoC = float(np.clip(state.SoC - state.V * current * dt / 3600.0 / cfg.capacity * 100.0, 0.0, 100.0))
        state.Temp = 25.0 + 0.002 * cfg.R * current**2

    def measure(self, plant: Plant) -> dict[str, float]:
        e = self.var
        return {"V": e.V, "I": e.I, "SoC": e.SoC, "Temp": e.Temp}
