"""Sampling back ends: where raw waveforms come from.

A back end delivers blocks of samples, shape ``(objects, 6, n)`` — for each
object the phase voltages a, b, c then the phase currents a, b, c — at
``sample_rate``.  On a board this is the ADC driver (the PRU on the paper's
Sitara); :class:`SimulatedADC` synthesizes the waveforms of generators or
feeders, follows the references it is commanded, and adds ADC noise.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class Channel:
    """What the simulated ADC sees on one object's six inputs."""

    id: str
    V: float = 120.0  # V RMS, phase
    I: float = 5.0  # A RMS
    pf: float = 0.95  # power factor (lagging)
    f: float = 60.0  # Hz
    noise: float = 0.002  # ADC noise, fraction of full scale
    running: bool = True  # a stopped generator shows no voltage


class SamplingBackend(Protocol):
    sample_rate: float
    ids: list[str]

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` samples of every channel, shape (objects, 6, n)."""

    def apply(self, object_id: str, fields: dict[str, Any]) -> list[str]:
        """Drive the outputs of ``object_id`` from a received command; the names applied."""


class SimulatedADC:
    """Synthesized three-phase waveforms with continuous phase between blocks."""

    SHIFT = np.array([0.0, -2 * math.pi / 3, 2 * math.pi / 3])
    NOISE_BANK = 1024  # samples of noise per channel kept (float32: 24 KB per object)

    def __init__(self, channels: list[Channel], sample_rate: float = 7680.0, seed: int = 1) -> None:
        self.channels = channels
        self.ids = [c.id for c in channels]
        self.sample_rate = sample_rate
        # the standard library's generator: numpy.random costs a DAQ agent ~2 MB of RSS (its 50 MB budget)
        self.rng = random.Random(seed)
        self.phase = np.zeros(len(channels))  # rad, voltage phase a of each object
        # Gaussian noise drawn once and read at a random offset per block: drawing 4 600 normals
        # per tick was the agent's largest cost at 100 Hz; 0.13 s of noise, read from anywhere, does not repeat visibly
        shape = (len(channels), 6, self.NOISE_BANK)
        bank = [self.rng.gauss(0.0, 1.0) for _ in range(math.prod(shape))]
        self._noise = np.array(bank, dtype=np.float32).reshape(shape)
        self._drive_cache: tuple[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None

    def read(self, n: int) -> np.ndarray:
        omega, wave_v, wave_i, noise_scale = self._drive()
        k = np.arange(1, n + 1) / self.sample_rate
        theta = self.phase[:, None] + omega[:, None] * k[None, :]  # (objects, n)
        self.phase = theta[:, -1] % (2 * math.pi)
        # cos(theta + shift) as the real part of a rotation: one complex exp instead of six cos
        rotation = np.exp(1j * theta)[:, None, :]  # (objects, 1, n)
        out = np.empty((len(self.channels), 6, n))
        out[:, :3, :] = (rotation * wave_v[:, :, None]).real
        out[:, 3:, :] = (rotation * wave_i[:, :, None]).real
        out += noise_scale * self._noise_block(n)
        return out

    def _drive(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Angular frequencies, complex amplitudes (V and I, per phase) and noise scales of the channels.

        Worked out again only when a channel changed (a command, or a caller's edit).
        """
        key = tuple((c.f, c.V, c.I, c.pf, c.noise, c.running) for c in self.channels)
        if self._drive_cache is None or self._drive_cache[0] != key:
            channels = self.channels
            amp_v = np.array([c.V * math.sqrt(2) if c.running else 0.0 for c in channels])
            amp_i = np.array([c.I * math.sqrt(2) if c.running else 0.0 for c in channels])
            lag = np.array([math.acos(max(-1.0, min(1.0, c.pf))) for c in channels])
            scale = np.array([c.noise for c in channels])[:, None, None]
            full_scale = np.concatenate([np.full(3, 400.0), np.full(3, 50.0)])[None, :, None]
            drive = (
                2 * math.pi * np.array([c.f for c in channels]),
                amp_v[:, None] * np.exp(1j * self.SHIFT)[None, :],
                amp_i[:, None] * np.exp(1j * (self.SHIFT[None, :] - lag[:, None])),
                scale * full_scale,
            )
            self._drive_cache = (key, drive)
        return self._drive_cache[1]

    def _noise_block(self, n: int) -> np.ndarray:
        if n > self.NOISE_BANK // 2:  # a long block (a slow publication rate): fresh noise, not the bank again
            return np.random.default_rng(self.rng.getrandbits(64)).standard_normal((len(self.channels), 6, n))
        start = self.rng.randrange(self.NOISE_BANK - n + 1)
        return self._noise[:, :, start : start + n]

    def apply(self, object_id: str, fields: dict[str, Any]) -> list[str]:
        channel = self.channels[self.ids.index(object_id)]
        applied = []
        if fields.get("action") == "START":
            channel.running = True
            applied.append("action")
        elif fields.get("action") == "STOP":
            channel.running = False
            applied.append("action")
        if _given(fields.get("f_ref")):
            channel.f = float(fields["f_ref"])
            applied.append("f_ref")
        if _given(fields.get("V_ref")):
            channel.V = float(fields["V_ref"])
            applied.append("V_ref")
        for key in ("P_ref",):
            if _given(fields.get(key)):
                # the output stage holds the power at the present voltage and power factor
                channel.I = max(0.0, float(fields[key])) / (3 * channel.V * channel.pf)
                applied.append(key)
        return applied


def _given(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)
