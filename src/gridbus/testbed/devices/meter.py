"""A smart meter at a load: what that load draws, and the energy it has drawn.

Besides the running totals it reports the energy of the last minute and the
last hour, from a log of the totals it keeps once a second for an hour.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .base import Device, Stage, need_ref, unit
from .load import LoadDevice

if TYPE_CHECKING:
    from ..plant import Plant
    from ..system import System

LOG_EVERY = 1.0  # s of simulated time between entries of the energy log
LOG_SPAN = 3600.0  # s the energy log reaches back (the hour figure)


@dataclass
class MeterParams:
    """What the system file says of a smart meter (``[[meter]]``)."""

    id: str
    load: str

    def check(self, system: System) -> None:
        need_ref("load", self.load, system.loads, "load")


@dataclass
class MeterState:
    PA: float = unit("Wh", 0.0)  # active energy drawn
    QA: float = unit("varh", 0.0)  # reactive energy drawn
    log: deque[tuple[float, float, float]] = field(default_factory=deque)  # (t, PA, QA)


class MeterDevice(Device[MeterParams, MeterState]):
    prefix = "SM"
    section = "meter"
    system_attr = "meters"
    params_type = MeterParams
    stage = Stage.AFTER_SOLVE

    def initial(self, params: MeterParams) -> MeterState:
        return MeterState()

    def step(self, plant: Plant, dt: float) -> None:
        load = plant.device(self.params.load, LoadDevice).var
        state = self.var
        state.PA += load.P * dt / 3600.0
        state.QA += load.Q * dt / 3600.0
        log = state.log
        if not log or plant.t - log[-1][0] >= LOG_EVERY:
            log.append((plant.t, state.PA, state.QA))
            while log and plant.t - log[0][0] > LOG_SPAN:
                log.popleft()

    def measure(self, plant: Plant) -> dict[str, float]:
        load = plant.device(self.params.load, LoadDevice)
        v = plant.bus_voltage(load.params.bus)
        p, q = load.var.P, load.var.Q
        i = math.hypot(p, q) / (3 * v) if v > 1.0 else 0.0
        pa, qa = self.var.PA, self.var.QA
        return {
            "Ia": i,
            "Ib": i,
            "Ic": i,
            "Va": v,
            "Vb": v,
            "Vc": v,
            "PA": pa,
            "QA": qa,
            "PA_minute": pa - self._energy_before(plant.t, 60.0, 1),
            "QA_minute": qa - self._energy_before(plant.t, 60.0, 2),
            "PA_hour": pa - self._energy_before(plant.t, 3600.0, 1),
            "QA_hour": qa - self._energy_before(plant.t, 3600.0, 2),
            "V_rms": v,
            "I_rms": i,
        }

    def _energy_before(self, t: float, window: float, column: int) -> float:
        for entry in self.var.log:
            if entry[0] >= t - window:
                return entry[column]
        return 0.0
