"""Data frames of IEEE C37.118.2-2011: one block per PMU of the configuration, in its order.

Per PMU: STAT, the phasors (polar or rectangular, int16 or float), FREQ and DFREQ (int16:
deviation from nominal in mHz and ROCOF x 100; float: Hz and Hz/s), the analogs and the
digital words.  gridbus always holds phasors as magnitude and angle (rad) and frequency
as the absolute value in Hz, whatever the wire format.  Missing values (a PMU absent from
a PDC's set) are NaN: float fields carry NaN and int16 fields 0x8000, as the standard says.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from ..errors import C37118Error
from ..phasor import wrap
from .config import PmuConfig, StreamConfig
from .frame import VERSION_2011, Frame, FrameType, encode_frame

STAT_DATA_INVALID = 0x8000  # bit 15: do not use the values (a PDC sets it for a missing PMU)
STAT_PMU_ERROR = 0x4000
STAT_NOT_SYNCED = 0x2000
STAT_SORT_BY_ARRIVAL = 0x1000
STAT_TRIGGER = 0x0800
STAT_CFG_CHANGE = 0x0400  # the configuration changes within a minute: ask for it again
STAT_DATA_MODIFIED = 0x0200
INT16_MISSING = -0x8000


@dataclass
class PmuData:
    """One PMU's block of a data frame, in gridbus units."""

    stat: int = 0
    magnitude: list[float] = field(default_factory=list)
    angle: list[float] = field(default_factory=list)  # rad
    freq: float = math.nan  # Hz, absolute
    rocof: float = math.nan  # Hz/s
    analog: list[float] = field(default_factory=list)
    digital: list[int] = field(default_factory=list)


@dataclass
class DataFrame:
    """A data frame: the stream's IDCODE, its measurement time and one block per PMU."""

    idcode: int
    soc: int
    fracsec: int
    pmus: list[PmuData]
    time_quality: int = 0


def _int16(value: float, scale: float, lo: int = -32767, hi: int = 32767) -> int:
    if not math.isfinite(value):
        return INT16_MISSING if lo < 0 else 0
    return max(lo, min(hi, round(value / scale)))


def _from_int16(raw: int, scale: float) -> float:
    return math.nan if raw == INT16_MISSING else raw * scale


def _pack_phasors(pmu: PmuConfig, data: PmuData) -> bytes:
    if len(data.magnitude) != len(pmu.phasors) or len(data.angle) != len(pmu.phasors):
        raise C37118Error(
            f"PMU {pmu.idcode} ({pmu.station}): {len(data.magnitude)} magnitudes and {len(data.angle)} angles "
            f"for {len(pmu.phasors)} phasors of its configuration"
        )
    out = []
    for channel, mag, ang in zip(pmu.phasors, data.magnitude, data.angle, strict=True):
        if pmu.polar:
            a = wrap(ang) if math.isfinite(ang) else ang
            if pmu.phasor_float:
                out.append(struct.pack(">ff", mag, a))
            else:
                out.append(struct.pack(">Hh", _int16(mag, channel.scale, 0, 0xFFFF), _int16(a, 1e-4, -31416, 31416)))
        else:
            re, im = mag * math.cos(ang), mag * math.sin(ang)
            if pmu.phasor_float:
                out.append(struct.pack(">ff", re, im))
            else:
                out.append(struct.pack(">hh", _int16(re, channel.scale), _int16(im, channel.scale)))
    return b"".join(out)


def _pack_block(pmu: PmuConfig, data: PmuData) -> bytes:
    if len(data.analog) != len(pmu.analogs) or len(data.digital) != len(pmu.digitals):
        raise C37118Error(
            f"PMU {pmu.idcode} ({pmu.station}): {len(data.analog)} analogs and {len(data.digital)} digital words "
            f"for {len(pmu.analogs)} and {len(pmu.digitals)} in its configuration"
        )
    parts = [struct.pack(">H", data.stat & 0xFFFF), _pack_phasors(pmu, data)]
    if pmu.freq_float:
        parts.append(struct.pack(">ff", data.freq, data.rocof))
    else:
        parts.append(struct.pack(">hh", _int16(data.freq - pmu.f_nominal, 1e-3), _int16(data.rocof, 1e-2)))
    for channel, value in zip(pmu.analogs, data.analog, strict=True):
        parts.append(struct.pack(">f", value) if pmu.analog_float else struct.pack(">h", _int16(value, channel.scale)))
    parts += [struct.pack(">H", word & 0xFFFF) for word in data.digital]
    return b"".join(parts)


def encode_data(cfg: StreamConfig, frame: DataFrame, *, version: int = VERSION_2011) -> bytes:
    """A data frame of ``frame`` in the formats of ``cfg`` (one block per PMU of ``cfg``, in order)."""
    if len(frame.pmus) != len(cfg.pmus):
        raise C37118Error(f"data frame with {len(frame.pmus)} PMU blocks for a configuration of {len(cfg.pmus)}")
    payload = b"".join(_pack_block(p, d) for p, d in zip(cfg.pmus, frame.pmus, strict=True))
    return encode_frame(
        FrameType.DATA, cfg.idcode, frame.soc, frame.fracsec, payload, time_quality=frame.time_quality, version=version
    )


def _unpack_phasors(pmu: PmuConfig, payload: bytes, offset: int) -> tuple[list[float], list[float], int]:
    mags, angs = [], []
    for channel in pmu.phasors:
        if pmu.phasor_float:
            a, b = struct.unpack_from(">ff", payload, offset)
            offset += 8
        elif pmu.polar:
            raw_mag, raw_ang = struct.unpack_from(">Hh", payload, offset)
            a, b = raw_mag * channel.scale, _from_int16(raw_ang, 1e-4)
            offset += 4
        else:
            raw_re, raw_im = struct.unpack_from(">hh", payload, offset)
            a, b = _from_int16(raw_re, channel.scale), _from_int16(raw_im, channel.scale)
            offset += 4
        if pmu.polar:
            mags.append(float(a))
            angs.append(float(b))
        else:
            mags.append(math.hypot(a, b))
            angs.append(math.atan2(b, a))
    return mags, angs, offset


def _unpack_block(pmu: PmuConfig, payload: bytes, offset: int) -> tuple[PmuData, int]:
    (stat,) = struct.unpack_from(">H", payload, offset)
    mags, angs, offset = _unpack_phasors(pmu, payload, offset + 2)
    if pmu.freq_float:
        freq, rocof = struct.unpack_from(">ff", payload, offset)
        offset += 8
    else:
        raw_f, raw_r = struct.unpack_from(">hh", payload, offset)
        freq, rocof = pmu.f_nominal + _from_int16(raw_f, 1e-3), _from_int16(raw_r, 1e-2)
        offset += 4
    analog = []
    for channel in pmu.analogs:
        if pmu.analog_float:
            analog.append(float(struct.unpack_from(">f", payload, offset)[0]))
            offset += 4
        else:
            analog.append(_from_int16(struct.unpack_from(">h", payload, offset)[0], channel.scale))
            offset += 2
    digital = list(struct.unpack_from(f">{len(pmu.digitals)}H", payload, offset))
    offset += 2 * len(pmu.digitals)
    return PmuData(stat, mags, angs, float(freq), float(rocof), analog, digital), offset


def decode_data(cfg: StreamConfig, frame: Frame) -> DataFrame:
    """The values of a data frame, read with the stream's configuration."""
    if frame.type is not FrameType.DATA:
        raise C37118Error(f"expected a data frame, got {frame.type.name}")
    expected = sum(p.data_size() for p in cfg.pmus)
    if len(frame.payload) != expected:
        raise C37118Error(
            f"data frame of IDCODE {frame.idcode}: {len(frame.payload)} payload bytes, its configuration "
            f"(CFGCNT {','.join(str(p.cfgcnt) for p in cfg.pmus)}) says {expected}: the configuration changed?"
        )
    if frame.fracsec >= cfg.time_base:
        raise C37118Error(
            f"data frame of IDCODE {frame.idcode}: FRACSEC {frame.fracsec} is not below TIME_BASE {cfg.time_base}"
        )
    pmus, offset = [], 0
    for pmu in cfg.pmus:
        block, offset = _unpack_block(pmu, frame.payload, offset)
        pmus.append(block)
    return DataFrame(frame.idcode, frame.soc, frame.fracsec, pmus, frame.time_quality)
