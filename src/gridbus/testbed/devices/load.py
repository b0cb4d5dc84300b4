"""A programmable load emulator: it draws its set-point, or what a collapsed feeder lets through.

The power flow decides what arrives (:meth:`gridbus.testbed.plant.Plant`
solves the island); the load then draws its set-point scaled by
:meth:`Plant.load_scale` (|V|² when it is solved as an impedance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import LIVE, Band, Device, need, need_ref, one_of, unit

if TYPE_CHECKING:
    from ..network import Network
    from ..plant import Plant
    from ..system import System


@dataclass
class LoadParams:
    """What the system file says of a load (``[[load]]``)."""

    id: str
    bus: str
    breaker: str
    P: float = unit("W", 0.0, non_negative=True)
    Q: float = unit("var", 0.0)
    model: str = "constant_power"  # or constant_impedance (P, Q at nominal voltage)
    rating: float = unit("VA", 10000.0, positive=True)  # the emulator's: P_ref 0..rating, |Q_ref| <= rating

    def check(self, system: System) -> None:
        need_ref("bus", self.bus, system.buses, "bus")
        one_of("model", self.model, ("constant_power", "constant_impedance"))
        need(
            self.P <= self.rating and abs(self.Q) <= self.rating,
            "P",
            f"P and |Q| must be within its rating {self.rating:g} VA",
        )


@dataclass
class LoadState:
    P_ref: float = unit("W", 0.0)  # set-point
    Q_ref: float = unit("var", 0.0)
    P: float = unit("W", 0.0)  # drawn, as the last power flow left it
    Q: float = unit("var", 0.0)


class LoadDevice(Device[LoadParams, LoadState]):
    prefix = "L"
    section = "load"
    system_attr = "loads"
    params_type = LoadParams
    commanded = True

    def initial(self, params: LoadParams) -> LoadState:
        return LoadState(params.P, params.Q)

    def limits(self) -> dict[str, Band]:
        rating = self.params.rating
        return {
            "P_ref": (0.0, rating, f"rating 0..{rating:g} W"),
            "Q_ref": (-rating, rating, f"rating ±{rating:g} var"),
        }

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        if "P_ref" in fields:
            self.var.P_ref = float(fields["P_ref"])
        if "Q_ref" in fields:
            self.var.Q_ref = float(fields["Q_ref"])

    def draw(self, network: Network) -> None:
        """What the load draws from the voltage just solved."""
        v = network.bus_voltage(self.params.bus) / network.v_base
        if v < LIVE or not network.in_service(self.id):
            self.var.P, self.var.Q = 0.0, 0.0
            return
        scale = network.load_scale(self.id, v)
        self.var.P, self.var.Q = float(self.var.P_ref * scale), float(self.var.Q_ref * scale)

    def measure(self, plant: Plant) -> dict[str, float]:
        return {"P": self.var.P, "Q": self.var.Q}
