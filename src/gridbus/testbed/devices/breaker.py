"""A circuit breaker ``CB_x``: it switches one element (generator, line, load, microgrid) in or out.

Closing and opening change the network's topology, so the plant does both
(:meth:`gridbus.testbed.plant.Plant.close` checks the two sides first); the
breaker holds its position and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Device

if TYPE_CHECKING:
    from ..plant import Plant


@dataclass
class BreakerParams:
    """A breaker, as the system file names it on the element it switches (``breaker = "CB_x"``)."""

    id: str
    closed: bool = False
    element: str = ""  # the generator, line, load or microgrid it switches


@dataclass
class BreakerState:
    closed: bool = False


class BreakerDevice(Device[BreakerParams, BreakerState]):
    prefix = "CB"
    section = None  # collected from the elements' ``breaker`` keys
    system_attr = "breakers"
    params_type = BreakerParams
    stateful = True
    measured = False
    commanded = True

    def initial(self, params: BreakerParams) -> BreakerState:
        return BreakerState(params.closed)

    def command(self, plant: Plant, fields: dict[str, Any]) -> None:
        want = fields.get("status")
        if want == "CLOSED" and not self.var.closed:
            plant.close(self.id)
        elif want == "OPEN" and self.var.closed:
            plant.open(self.id)

    def state(self, plant: Plant) -> dict[str, Any]:
        return {"status": "CLOSED" if self.var.closed else "OPEN"}
