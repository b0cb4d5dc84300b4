"""PMU frames on the bus: ``PMU_Config`` once (transient-local), ``PMU_Measurement`` per frame.

Gridbus PMUs list their phasors as VA, VB, VC, IA, IB, IC (:data:`PHASOR_NAMES`):
consumers that do not read the Config (the synchronizer) rely on VA being first.
A frame's time is C37.118 SOC/FRACSEC in UTC with :data:`~.time.TIME_BASE`; its
DDS source timestamp is the same instant, so the historian's delay (row time -
source time) is the seed's "measurement time to database row".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..bus import Bus, Writer
from ..errors import FieldError
from ..types.grid import PMU as _PMU
from .time import STAT_DATA_INVALID, TIME_BASE, SyncState, stat_time_bits, time_quality, to_soc_fracsec

PHASOR_NAMES = ("VA", "VB", "VC", "IA", "IB", "IC")
PHASOR_KINDS = ("VOLTAGE",) * 3 + ("CURRENT",) * 3
RATES = {50.0: (10, 25, 50, 100), 60.0: (10, 12, 15, 20, 30, 60, 120)}
"""Reporting rates (frames/s) C37.118.1 lists per nominal frequency."""


def check_rate(rate: float, f0: float) -> None:
    """Refuse a nominal frequency other than 50/60 Hz and a reporting rate the standard does not list for it."""
    if f0 not in RATES:
        raise FieldError(f"nominal frequency must be 50 or 60 Hz, got {f0:g}")
    if rate not in RATES[f0]:
        allowed = ", ".join(str(r) for r in RATES[f0])
        raise FieldError(f"reporting rate {rate:g} frames/s is not a C37.118 rate for {f0:g} Hz; use {allowed}")


def idcode_of(pmu_id: str) -> int:
    """A stable IDCODE (1..65534) for a PMU id: its number when it is one, else a CRC of the name."""
    tail = pmu_id.rsplit("_", 1)[-1]
    if tail.isdigit() and 0 < int(tail) < 65535:
        return int(tail)
    return 1 + zlib.crc32(pmu_id.encode()) % 65534


def config_sample(writer: Writer, idcode: int, station: str, f0: float, rate: float) -> _PMU.Config:
    """The ``PMU_Config`` of a gridbus PMU (six phasors VA..IC, no analogs or digitals).

    Built from the generated type: the model's per-field check does not take
    enum names inside a sequence (``phasor_kinds``).
    """
    kinds = [_PMU.PhasorKind[k] for k in PHASOR_KINDS]
    return _PMU.Config(
        id=writer.object_id,
        idcode=idcode,
        station=station[:16],
        time_base=TIME_BASE,
        f_nominal=f0,
        data_rate=round(rate),
        cfgcnt=0,
        phasor_names=list(PHASOR_NAMES),
        phasor_kinds=kinds,
        analog_names=[],
        analog_units=[],
        digital_names=[],
    )


@dataclass
class FramePublisher:
    """The writers of a set of PMUs, with their configuration written once at start."""

    bus: Bus
    ids: Sequence[str]
    f0: float
    rate: float
    sync: SyncState = SyncState()
    station: str = "gridbus"

    def __post_init__(self) -> None:
        check_rate(self.rate, self.f0)
        self.idcodes = [idcode_of(i) for i in self.ids]
        self.writers: list[Writer] = [self.bus.writer(i, "Measurement") for i in self.ids]
        self.config_writers = [self.bus.writer(i, "Config") for i in self.ids]
        self.published = 0
        for pmu_id, idcode, writer in zip(self.ids, self.idcodes, self.config_writers, strict=True):
            writer.write(config_sample(writer, idcode, f"{self.station[:7]}:{pmu_id}", self.f0, self.rate))

    def publish(
        self, utc: float, phasors: np.ndarray, freq: np.ndarray, rocof: np.ndarray, invalid: np.ndarray | None = None
    ) -> None:
        """One frame per PMU at UTC time ``utc``: phasors (P, 6) complex RMS, freq and rocof (P,).

        Samples are built straight from the generated type (the values come from
        numpy, not from a user): no per-field check on this hot path.
        """
        soc, fracsec = to_soc_fracsec(utc)
        quality = time_quality(utc, self.sync)
        stat = stat_time_bits(self.sync)
        mags, angles = np.abs(phasors).tolist(), np.angle(phasors).tolist()
        freqs, rocofs = freq.tolist(), rocof.tolist()
        bad = [False] * len(self.ids) if invalid is None else invalid.tolist()
        for n, writer in enumerate(self.writers):
            sample = _PMU.Measurement(
                id=self.ids[n],
                idcode=self.idcodes[n],
                soc=soc,
                fracsec=fracsec,
                time_quality=quality,
                stat=stat | (STAT_DATA_INVALID if bad[n] else 0),
                magnitude=mags[n],
                angle=angles[n],
                freq=0.0 if bad[n] else min(400.0, max(0.0, freqs[n])),
                rocof=0.0 if bad[n] else rocofs[n],
                analog=[],
                digital=[],
            )
            writer.write(sample, timestamp=utc)
        self.published += len(self.writers)
