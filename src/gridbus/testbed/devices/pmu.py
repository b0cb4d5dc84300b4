"""A phasor measurement unit at a bus: the bus voltage as three phasors, and the frequency.

The network is balanced, so phases b and c are phase a turned by ∓120°; no
current is measured (the PMUs watch buses), and the quality word flags a dead bus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .base import LIVE, Device, need_ref, wrap

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System

DEAD_BUS = 0x8000  # quality bit: no voltage to measure


@dataclass
class PMUParams:
    """What the system file says of a PMU (``[[pmu]]``)."""

    id: str
    bus: str

    def check(self, system: System) -> None:
        need_ref("bus", self.bus, system.buses, "bus")


@dataclass
class PMUState:
    """A PMU has no state of its own: it reads the solved network."""


class PMUDevice(Device[PMUParams, PMUState]):
    prefix = "PMU"
    section = "pmu"
    system_attr = "pmus"
    params_type = PMUParams

    def initial(self, params: PMUParams) -> PMUState:
        return PMUState()

    def measure(self, plant: Plant) -> dict[str, float]:
        v = plant.bus_phasor(self.params.bus)
        ang = float(np.angle(v))
        return {
            "Va_mag": abs(v),
            "Va_ang": ang,
            "Vb_mag": abs(v),
            "Vb_ang": wrap(ang - 2 * math.pi / 3),
            "Vc_mag": abs(v),
            "Vc_ang": wrap(ang + 2 * math.pi / 3),
            "Ia_mag": 0.0,
            "Ia_ang": 0.0,
            "f": plant.bus_frequency(self.params.bus),
            "rocof": 0.0,
            "quality": 0 if abs(v) > LIVE * plant.v_base else DEAD_BUS,
        }
