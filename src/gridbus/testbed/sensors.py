"""Realistic sensors: what a measurement board reports instead of the true value.

Each measured field gets ``quantize(v(t - delay) + bias + noise)`` with the
model the system file gives for ``OBJECT.field`` (see ``[sensors]``), then is
clamped into the field's IDL range (a noisy 0 V stays 0 V, not -0.03 V).
Work is done per object with numpy, because a testbed publishes thousands of
values per second.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..model import TopicType
from .system import System


@dataclass
class _ObjectSensors:
    fields: list[str]
    noise: np.ndarray
    quantum: np.ndarray
    bias: np.ndarray
    delay: np.ndarray
    low: np.ndarray
    high: np.ndarray
    numeric: np.ndarray  # False for integer status words (left untouched)
    history: deque[tuple[float, np.ndarray]]
    # what read() would otherwise find out on every sample
    delayed: bool = False
    stepped: np.ndarray | None = None  # mask of the quantized fields, None if none is
    all_numeric: bool = True


class Sensors:
    """Corrupts true measurements the way the system file says."""

    def __init__(self, system: System, seed: int | None = None) -> None:
        self.system = system
        self.rng = np.random.default_rng(system.seed if seed is None else seed)
        self._objects: dict[str, _ObjectSensors] = {}

    def _prepare(self, object_id: str, topic: TopicType, names: list[str]) -> _ObjectSensors:
        models = [self.system.sensor(object_id, name) for name in names]
        infos = [topic.fields[name] for name in names]
        quantum = np.array([m.quantum for m in models])
        numeric = np.array([i.kind == "float" for i in infos])
        return _ObjectSensors(
            fields=names,
            noise=np.array([m.noise for m in models]),
            quantum=quantum,
            bias=np.array([m.bias for m in models]),
            delay=np.array([m.delay for m in models]),
            low=np.array([-np.inf if i.min is None else i.min for i in infos]),
            high=np.array([np.inf if i.max is None else i.max for i in infos]),
            numeric=numeric,
            history=deque(),
            delayed=any(m.delay for m in models),
            stepped=quantum > 0 if (quantum > 0).any() else None,
            all_numeric=bool(numeric.all()),
        )

    def read(self, t: float, object_id: str, topic: TopicType, true: dict[str, float]) -> dict[str, float]:
        """The measured values of ``object_id`` at simulated time ``t``."""
        sensors = self._objects.get(object_id)
        if sensors is None or sensors.fields != list(true):
            sensors = self._objects[object_id] = self._prepare(object_id, topic, list(true))
        values = np.fromiter(true.values(), dtype=float, count=len(true))
        if sensors.delayed:
            values = self._delayed(sensors, t, values)
        measured = values + sensors.bias + sensors.noise * self.rng.standard_normal(len(values))
        steps = sensors.stepped
        if steps is not None:
            measured[steps] = np.round(measured[steps] / sensors.quantum[steps]) * sensors.quantum[steps]
        np.minimum(np.maximum(measured, sensors.low, out=measured), sensors.high, out=measured)  # clip, cheaper
        if sensors.all_numeric:
            return dict(zip(sensors.fields, measured.tolist(), strict=True))
        measured = np.where(sensors.numeric, measured, values)
        return {
            name: (float(v) if sensors.numeric[n] else int(v))
            for n, (name, v) in enumerate(zip(sensors.fields, measured, strict=True))
        }

    @staticmethod
    def _delayed(sensors: _ObjectSensors, t: float, values: np.ndarray) -> np.ndarray:
        """Each delayed field shows the newest value at least ``delay`` old."""
        history = sensors.history
        history.append((t, values))
        horizon = float(sensors.delay.max())
        while len(history) > 1 and history[1][0] <= t - horizon:
            history.popleft()
        out = values.copy()
        for n in np.flatnonzero(sensors.delay):
            cutoff = t - sensors.delay[n]
            past = [v for (when, v) in history if when <= cutoff]
            out[n] = past[-1][n] if past else history[0][1][n]
        return out
