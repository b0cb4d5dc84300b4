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
from typing import Any, ClassVar, NamedTuple, Protocol

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

    edits: ClassVar[int] = 0  # changes to any channel so far: a simulated ADC redoes its drive after one

    def __setattr__(self, name: str, value: Any) -> None:
        changed = getattr(self, name, _UNSET) != value  # (a caller may set what it set before, each step)
        object.__setattr__(self, name, value)
        if changed:  # counted once the value is in: a read in between sees the old count
            Channel.edits += 1


_UNSET = object()


class SamplingBackend(Protocol):
    sample_rate: float
    ids: list[str]

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` samples of every channel, shape (objects, 6, n)."""

    def apply(self, object_id: str, fields: dict[str, Any]) -> list[str]:
        """Drive the outputs of ``object_id`` from a received command; the names applied."""


class _Drive(NamedTuple):
    """What the channels' settings make of the waveforms, worked out once per change."""

    omega: np.ndarray  # (objects,) angular frequency, rad/s
    coefficients: np.ndarray  # (objects, 2, 6): Re and -Im of each channel's complex amplitude
    noise: np.ndarray  # (objects, 6, 1): noise per unit normal, each channel


class SimulatedADC:
    """Synthesized three-phase waveforms with continuous phase between blocks."""

    SHIFT = np.array([0.0, -2 * math.pi / 3, 2 * math.pi / 3])
    NOISE_BANK = 1024  # samples of noise per channel kept (float32: 24 KB per object)
    AHEAD = 320  # samples synthesized at once: 42 ms at 7680/s, four ticks of a 100 Hz agent

    def __init__(self, channels: list[Channel], sample_rate: float = 7680.0, seed: int = 1) -> None:
        self.channels = channels
        self.ids = [c.id for c in channels]
        self.sample_rate = sample_rate
        # the standard library's generator: numpy.random costs a DAQ agent ~2 MB of RSS (its 50 MB budget)
        self.rng = random.Random(seed)
        self._phase = np.zeros(len(channels))  # rad, voltage phase a of each object before the samples ahead
        # Gaussian noise drawn once and read at a random offset per block: drawing 4 600 normals
        # per tick was the agent's largest cost at 100 Hz; 0.13 s of noise, read from anywhere, does not repeat visibly
        shape = (len(channels), 6, self.NOISE_BANK)
        bank = [self.rng.gauss(0.0, 1.0) for _ in range(math.prod(shape))]
        self._noise = np.array(bank, dtype=np.float32).reshape(shape)
        self._drive_cache: tuple[int, _Drive] | None = None
        self._turn_cache: tuple[_Drive, np.ndarray] | None = None
        # samples made ahead (objects, 6, m), how many of them were read, the frequencies they have
        self._none_ahead = self._ahead = np.empty((len(channels), 6, 0))
        self._served = 0
        self._omega = np.zeros(len(channels))
        self._edits = Channel.edits

    def read(self, n: int) -> np.ndarray:
        if self._edits != Channel.edits or self._served + n > self._ahead.shape[2]:
            # a few ticks ahead while the channels stay as they are; a caller that changes them
            # each time (the testbed's PMUs follow the plant) would only waste what was made ahead
            steady = self._edits == Channel.edits and self._ahead.shape[2] > 0
            self._synthesize(max(n, self.AHEAD) if steady else n)
        start = self._served
        self._served += n
        return self._ahead[:, :, start : start + n]

    def _synthesize(self, m: int) -> None:
        """The next ``m`` samples after the last one read, kept to be read in later blocks.

        Blocks of a few ticks at once, as an ADC's DMA ring fills: synthesis per 77-sample
        block was a DAQ agent's largest cost.  A channel that changes (a command) drops what
        was made ahead, so the next block read already follows it.
        """
        self._rebase()
        self._edits = Channel.edits
        drive = self._drive()
        self._omega = drive.omega
        # e^(j theta) of the next m samples: the phase now, turned by each sample's step
        turning = self._turns(drive, m) * np.exp(1j * self._phase)[:, None]  # (objects, m)
        # A cos(theta + phi) = Re(A e^(j phi)) cos(theta) - Im(A e^(j phi)) sin(theta): a sample's
        # six channels are its (cos, sin) times a (2, 6) matrix of the object's
        cos_sin = turning.view(np.float64).reshape(len(turning), m, 2)
        ahead = (cos_sin @ drive.coefficients).transpose(0, 2, 1)  # (objects, 6, m)
        ahead += drive.noise * self._noise_block(m)
        self._ahead, self._served = ahead, 0

    @property
    def phase(self) -> np.ndarray:
        """Voltage phase a of each object at the last sample read (rad): the array itself, to set items of.

        What was made ahead is dropped, so the next block read continues from this phase,
        as it stands then (a caller locking the waveforms onto a plant's angle sets it).
        """
        self._rebase()
        return self._phase

    def _rebase(self) -> None:
        """Move the phase on to the last sample read and drop the samples made ahead of it."""
        if self._served:
            self._phase = (self._phase + self._omega * (self._served / self.sample_rate)) % (2 * math.pi)
            self._served = 0
        if self._ahead.shape[2]:
            self._ahead = self._none_ahead

    def _turns(self, drive: _Drive, m: int) -> np.ndarray:
        """e^(j omega k / sample_rate) for k = 1..m, per object: kept until the drive or m change."""
        if self._turn_cache is None or self._turn_cache[0] is not drive or self._turn_cache[1].shape[1] != m:
            steps = np.arange(1, m + 1) / self.sample_rate
            self._turn_cache = (drive, np.exp(1j * drive.omega[:, None] * steps[None, :]))
        return self._turn_cache[1]

    def _drive(self) -> _Drive:
        """What the channels' settings make of the waveforms (see :class:`_Drive`).

        Worked out again only when a channel changed (a command, or a caller's edit), as
        ``Channel.edits`` tells: :meth:`read` asks every tick, and comparing every channel's
        values each time cost more than the rest of a block's synthesis.
        """
        if self._drive_cache is None or self._drive_cache[0] != Channel.edits:
            channels = self.channels
            amp_v = np.array([c.V * math.sqrt(2) if c.running else 0.0 for c in channels])
            amp_i = np.array([c.I * math.sqrt(2) if c.running else 0.0 for c in channels])
            lag = np.array([math.acos(max(-1.0, min(1.0, c.pf))) for c in channels])
            amplitude = np.concatenate(
                [
                    amp_v[:, None] * np.exp(1j * self.SHIFT)[None, :],
                    amp_i[:, None] * np.exp(1j * (self.SHIFT[None, :] - lag[:, None])),
                ],
                axis=1,
            )  # (objects, 6) complex
            full_scale = np.concatenate([np.full(3, 400.0), np.full(3, 50.0)])[None, :, None]
            scale = np.array([c.noise for c in channels])[:, None, None] * full_scale  # (objects, 6, 1)
            drive = _Drive(
                2 * math.pi * np.array([c.f for c in channels]),
                np.stack([amplitude.real, -amplitude.imag], axis=1),
                scale,
            )
            self._drive_cache = (Channel.edits, drive)
        return self._drive_cache[1]

    def _noise_block(self, n: int) -> np.ndarray:
        """``n`` standard normals per channel: read from the bank at a random offset."""
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
