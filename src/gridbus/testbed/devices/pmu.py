"""A phasor measurement unit at a bus: what it is shown (the bus voltage), not what it reports.

The network is balanced and solved as phasors; a PMU measures waveforms.  So
:meth:`PMUDevice.measure` gives the true bus voltage (RMS magnitude, angle in
the nominal frame, frequency, live or dead), and the testbed's PMU publisher
(:class:`gridbus.pmu.testbed.TestbedPMUs`) turns it into three-phase waveforms,
estimates the synchrophasors (C37.118.1 P class) and publishes C37.118 frames
(``PMU_Measurement``) and the stream configuration (``PMU_Config``).  No
current is measured (the PMUs watch buses): IA..IC read 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .base import LIVE, Device, need_ref

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System


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
        """The bus voltage the PMU's inputs see: V (RMS, phase), angle (rad), f (Hz), live (0/1)."""
        v = plant.bus_phasor(self.params.bus)
        return {
            "V": abs(v),
            "angle": float(np.angle(v)),
            "f": plant.bus_frequency(self.params.bus),
            "live": 1.0 if abs(v) > LIVE * plant.v_base else 0.0,
        }
