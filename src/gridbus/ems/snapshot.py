"""From what the bus carries (SI units, per object) to the estimator's vectors (per unit).

:class:`Snapshot` knows the case (network, which machines and loads sit at
which bus) and the meters' accuracy (the scenario's sensor models: a control
centre knows its meters' accuracy class), and turns the newest value of every
measured object into ``z`` and ``σ``:

* ``Bus_n.V`` from Busbar ``Va``; ``TL_a-b.I`` from Line ``Ia``, ``TL_a-b.P``/``.Q``
  from its ``P``/``Q`` (the flow at its from end);
* ``Bus_n.P``/``Bus_n.Q``: the bus's machines minus its loads (σ: their
  meters' combined); a bus with neither is a zero injection (σ tiny);
* ``PMU_n.V``, ``PMU_n.angle``: the frame's VA, the angle relative to the
  reference PMU's in the same frame instant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..testbed.andes.case import AndesCase
from ..testbed.andes.network import network_of
from ..testbed.system import System
from .model import MeasurementModel, Measurements

# pu: perfect meters still get a weight
FLOOR = {"V": 1e-4, "A": 1e-4, "P": 1e-3, "Q": 1e-3, "I": 1e-3, "PF": 1e-3, "QF": 1e-3}
ZERO_INJECTION = 1e-5  # pu


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class Snapshot:
    """The measurement layout of a case and the conversion of bus values into it."""

    def __init__(self, case: AndesCase, system: System | None = None) -> None:
        self.case, self.ids = case, case.ids
        self.system = system or case.system()
        self.net = network_of(case.ss)
        pos = {b: n for n, b in enumerate(self.net.bus_idx)}
        self.bus_pos = {bus_id: pos[idx] for bus_id, idx in self.ids.bus.items()}
        self.vbase = self.net.kv * 1e3 / math.sqrt(3)
        self.sbase = self.net.mva * 1e6
        self.line_pos = {tid: n for n, tid in enumerate(self.ids.line)}
        self.devices: dict[str, list[tuple[str, float]]] = {b: [] for b in self.ids.bus}  # bus -> (object, sign)
        for gid, gen in self.system.generators.items():
            self.devices[gen.bus].append((gid, 1.0))
        for lid, load in self.system.loads.items():
            self.devices[load.bus].append((lid, -1.0))
        self.pmus = {pmu: self.bus_pos[p.bus] for pmu, p in self.system.pmus.items()}
        self.reference = next(iter(self.pmus.values()), 0)
        self.reference_pmu = next(iter(self.pmus), None)
        self.layout, self.scale, self.sigma = self._layout()

    def bus_ids(self) -> list[str]:
        """Bus ids in network order."""
        order = sorted(self.bus_pos, key=self.bus_pos.__getitem__)
        return order

    def _noise(self, object_id: str, field: str) -> float:
        return self.system.sensor(object_id, field).noise

    def _layout(self) -> tuple[Measurements, np.ndarray, np.ndarray]:
        layout = Measurements()
        scale: list[float] = []  # SI per pu of each measurement
        sigma: list[float] = []  # pu
        for bus_id, n in self.bus_pos.items():
            layout.add(f"{bus_id}.V", "V", n)
            scale.append(self.vbase[n])
            sigma.append(max(self._noise(bus_id, "Va") / self.vbase[n], FLOOR["V"]))
        for tid, k in self.line_pos.items():
            layout.add(f"{tid}.I", "I", k)
            ibase = self.sbase / (math.sqrt(3) * self.net.kv[self.net.f[k]] * 1e3)
            scale.append(ibase)
            sigma.append(max(self._noise(tid, "Ia") / ibase, FLOOR["I"]))
            for field, kind in (("P", "PF"), ("Q", "QF")):
                layout.add(f"{tid}.{field}", kind, k)
                scale.append(self.sbase)
                sigma.append(max(self._noise(tid, field) / self.sbase, FLOOR[kind]))
        for bus_id, n in self.bus_pos.items():
            for kind in ("P", "Q"):
                layout.add(f"{bus_id}.{kind}", kind, n)
                scale.append(self.sbase)
                devices = self.devices[bus_id]
                if not devices:
                    sigma.append(ZERO_INJECTION)
                    continue
                combined = math.sqrt(sum(self._noise(d, kind) ** 2 for d, _ in devices)) / self.sbase
                sigma.append(max(combined, FLOOR[kind]))
        for pmu, n in self.pmus.items():
            layout.add(f"{pmu}.V", "V", n)
            scale.append(self.vbase[n])
            sigma.append(max(self._noise(pmu, "magnitude") / self.vbase[n], FLOOR["V"]))
            if pmu != self.reference_pmu:
                layout.add(f"{pmu}.angle", "A", n)
                scale.append(1.0)
                sigma.append(max(math.sqrt(2) * self._noise(pmu, "angle"), FLOOR["A"]))
        return layout, np.array(scale), np.array(sigma)

    def model(self, open_lines: set[str] = frozenset()) -> MeasurementModel:  # type: ignore[assignment]
        """The measurement model with the lines ``open_lines`` out of service (the topology)."""
        self.net.in_service = np.array([tid not in open_lines for tid in self.ids.line])
        return MeasurementModel(self.net, self.layout, self.reference)

    def vector(self, values: Mapping[str, Mapping[str, float]]) -> np.ndarray:
        """``z`` (per unit) from the newest values by object id (SI; PMUs as ``V``/``angle``)."""
        z = np.empty(len(self.layout))
        ref_angle = values[self.reference_pmu]["angle"] if self.reference_pmu else 0.0
        for i, name in enumerate(self.layout.names):
            object_id, _, what = name.rpartition(".")
            if what == "V" and object_id.startswith("Bus_"):
                z[i] = values[object_id]["Va"]
            elif what == "I":
                z[i] = values[object_id]["Ia"]
            elif object_id in self.line_pos:
                z[i] = values[object_id][what]  # the line's flow P or Q
            elif what in ("P", "Q"):
                z[i] = sum(sign * values[d][what] for d, sign in self.devices[object_id])
            elif what == "V":
                z[i] = values[object_id]["V"]
            else:
                z[i] = _wrap(values[object_id]["angle"] - ref_angle)
        per_unit: np.ndarray = z / self.scale
        return per_unit

    def flat_start(self, model: MeasurementModel, values: Mapping[str, Mapping[str, float]]) -> np.ndarray:
        """1 pu everywhere, angles from the PMUs where there are some (else 0)."""
        V = np.ones(self.net.n, dtype=complex)
        ref_angle = values[self.reference_pmu]["angle"] if self.reference_pmu else 0.0
        for pmu, n in self.pmus.items():
            V[n] = np.exp(1j * _wrap(values[pmu]["angle"] - ref_angle))
        return model.state_of(V)
