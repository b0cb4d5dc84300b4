"""Configuration frames CFG-1 and CFG-2 of IEEE C37.118.2-2011 (same layout, frame types 2 and 3).

A configuration says how to read the data frames of a stream: per PMU the station name,
IDCODE, the FORMAT word (polar/rectangular, int16/float per field group), the channel
names, the PHUNIT/ANUNIT/DIGUNIT words and the nominal frequency.  Without it a data
frame is unreadable bytes, so a gateway asks for it before START.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from ..errors import C37118Error
from .frame import VERSION_2011, Frame, FrameType, encode_frame

NAME_SIZE = 16
PHUNIT_LSB = 1e-5  # PHUNIT's 24-bit factor counts 10^-5 V or A per bit
ANUNIT_KINDS = ("POW", "RMS", "PEAK")  # ANUNIT's top byte: point-on-wave, RMS, peak
_PMU_HEAD = struct.Struct(">16sHHHHH")  # STN, IDCODE, FORMAT, PHNMR, ANNMR, DGNMR


@dataclass
class PhasorChannel:
    """One phasor: its name, voltage or current, and the value of one int16 count (V or A)."""

    name: str
    current: bool = False
    scale: float = 0.01
    angle_offset: float = 0.0  # CFG-3 PHSCALE's angle adjustment (radians); CFG-1/2 have none
    component: int = 0  # CFG-3 PHSCALE's phasor component code (0 zero, 1 positive, 2 negative sequence, 4-6 A-C)

    def phunit(self) -> int:
        factor = round(self.scale / PHUNIT_LSB)
        if not 0 < factor <= 0xFFFFFF:
            raise C37118Error(f"phasor {self.name!r}: scale {self.scale} V/A per bit does not fit PHUNIT's 24 bits")
        return (1 << 24 if self.current else 0) | factor


@dataclass
class AnalogChannel:
    """One analog: its name, ANUNIT kind (0 point-on-wave, 1 RMS, 2 peak) and the value of one count.

    C37.118.2 leaves ANUNIT's 24-bit signed word as "user-defined scaling"; gridbus reads it
    as PHUNIT does, in 10^-5 units per bit.
    """

    name: str
    kind: int = 1
    scale: float = 1.0
    offset: float = 0.0  # CFG-3 ANSCALE's offset B; CFG-1/2 have none

    def anunit(self) -> int:
        factor = round(self.scale / PHUNIT_LSB)
        if not -0x800000 <= factor <= 0x7FFFFF:
            raise C37118Error(f"analog {self.name!r}: scale {self.scale} per bit does not fit ANUNIT's 24 bits")
        return ((self.kind & 0xFF) << 24) | (factor & 0xFFFFFF)


@dataclass
class DigitalWord:
    """One 16-bit digital status word: a name per bit (bit 0 first) and the DIGUNIT masks."""

    names: list[str]
    normal: int = 0
    valid: int = 0xFFFF


@dataclass
class PmuLocation:
    """What only CFG-3 says of a PMU: global id, WGS 84 position, service class, window, group delay.

    Positions are infinity when unspecified (as C37.118.2-2011 Table 11 asks); ``window``
    and ``group_delay`` are microseconds.
    """

    g_pmu_id: bytes = bytes(16)
    latitude: float = math.inf
    longitude: float = math.inf
    elevation: float = math.inf
    svc_class: str = "M"
    window: int = 0
    group_delay: int = 0


@dataclass
class PmuConfig:
    """One PMU's block of a configuration frame."""

    station: str
    idcode: int
    phasors: list[PhasorChannel] = field(default_factory=list)
    analogs: list[AnalogChannel] = field(default_factory=list)
    digitals: list[DigitalWord] = field(default_factory=list)
    f_nominal: float = 50.0
    cfgcnt: int = 0
    polar: bool = True
    phasor_float: bool = True
    analog_float: bool = True
    freq_float: bool = True
    location: PmuLocation = field(default_factory=lambda: PmuLocation())

    @property
    def format(self) -> int:
        """FORMAT: bit 0 polar, bit 1 float phasors, bit 2 float analogs, bit 3 float FREQ/DFREQ."""
        return int(self.polar) | (self.phasor_float << 1) | (self.analog_float << 2) | (self.freq_float << 3)

    def set_format(self, word: int) -> None:
        """Take the four FORMAT bits of a configuration frame's ``word``."""
        self.polar, self.phasor_float = bool(word & 1), bool(word & 2)
        self.analog_float, self.freq_float = bool(word & 4), bool(word & 8)

    def data_size(self) -> int:
        """Bytes of this PMU's block in a data frame."""
        phasor = 8 if self.phasor_float else 4
        number = 4 if self.freq_float else 2
        analog = 4 if self.analog_float else 2
        return 2 + phasor * len(self.phasors) + 2 * number + analog * len(self.analogs) + 2 * len(self.digitals)


@dataclass
class StreamConfig:
    """A whole configuration frame: the stream's IDCODE, TIME_BASE, data rate and its PMUs."""

    idcode: int
    pmus: list[PmuConfig]
    time_base: int = 1_000_000
    data_rate: int = 50  # > 0 frames per second, < 0 seconds per frame

    def pmu(self, idcode: int) -> PmuConfig | None:
        return next((p for p in self.pmus if p.idcode == idcode), None)


def _name(text: str) -> bytes:
    return text.encode("ascii", "replace")[:NAME_SIZE].ljust(NAME_SIZE, b" ")


def _pmu_block(pmu: PmuConfig) -> bytes:
    parts = [
        _PMU_HEAD.pack(
            _name(pmu.station), pmu.idcode, pmu.format, len(pmu.phasors), len(pmu.analogs), len(pmu.digitals)
        )
    ]
    parts += [_name(p.name) for p in pmu.phasors]
    parts += [_name(a.name) for a in pmu.analogs]
    for word in pmu.digitals:
        names = (list(word.names) + [""] * 16)[:16]
        parts += [_name(n) for n in names]
    parts += [struct.pack(">I", p.phunit()) for p in pmu.phasors]
    parts += [struct.pack(">I", a.anunit()) for a in pmu.analogs]
    parts += [struct.pack(">HH", word.normal, word.valid) for word in pmu.digitals]
    fnom = 1 if pmu.f_nominal == 50.0 else 0
    parts.append(struct.pack(">HH", fnom, pmu.cfgcnt))
    return b"".join(parts)


def encode_config(
    cfg: StreamConfig,
    soc: int = 0,
    fracsec: int = 0,
    *,
    ftype: FrameType = FrameType.CFG2,
    version: int = VERSION_2011,
) -> bytes:
    """A CFG-1 or CFG-2 frame of ``cfg`` (CFG-1 lists what a PMU can send, CFG-2 what it sends)."""
    if ftype not in (FrameType.CFG1, FrameType.CFG2):
        raise C37118Error(f"encode_config writes CFG-1 or CFG-2, not {ftype.name}")
    if not 0 < cfg.time_base <= 0xFFFFFF:
        raise C37118Error(f"TIME_BASE {cfg.time_base} does not fit 24 bits")
    payload = struct.pack(">IH", cfg.time_base, len(cfg.pmus))
    payload += b"".join(_pmu_block(p) for p in cfg.pmus) + struct.pack(">h", cfg.data_rate)
    return encode_frame(ftype, cfg.idcode, soc, fracsec, payload, version=version)


class Cursor:
    """Reads big-endian fields off a payload, naming the field when the payload is too short."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.offset, self.what = data, 0, what

    def take(self, fmt: str, name: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise C37118Error(f"{self.what}: frame ends inside {name} (byte {self.offset} of {len(self.data)})")
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return values

    def names(self, count: int, name: str) -> list[str]:
        raw = self.take(f">{count * NAME_SIZE}s", name)[0]
        assert isinstance(raw, bytes)
        return [raw[i : i + NAME_SIZE].decode("ascii", "replace").strip(" \0") for i in range(0, len(raw), NAME_SIZE)]


def _signed24(value: int) -> int:
    value &= 0xFFFFFF
    return value - (1 << 24) if value & 0x800000 else value


def _decode_pmu(cur: Cursor) -> PmuConfig:
    station_raw, idcode, fmt, phnmr, annmr, dgnmr = cur.take(">16sHHHHH", "STN..DGNMR")
    assert isinstance(station_raw, bytes)
    station = station_raw.decode("ascii", "replace").strip(" \0")
    phasor_names = cur.names(phnmr, f"CHNAM of {station}")
    analog_names = cur.names(annmr, f"CHNAM of {station}")
    digital_names = [cur.names(16, f"CHNAM of {station}") for _ in range(dgnmr)]
    phunits = cur.take(f">{phnmr}I", "PHUNIT") if phnmr else ()
    anunits = cur.take(f">{annmr}I", "ANUNIT") if annmr else ()
    digunits = [cur.take(">HH", "DIGUNIT") for _ in range(dgnmr)]
    fnom, cfgcnt = cur.take(">HH", "FNOM/CFGCNT")
    phasors = [
        PhasorChannel(n, bool(u >> 24), (u & 0xFFFFFF) * PHUNIT_LSB) for n, u in zip(phasor_names, phunits, strict=True)
    ]
    analogs = [AnalogChannel(n, u >> 24, _signed24(u) * PHUNIT_LSB) for n, u in zip(analog_names, anunits, strict=True)]
    digitals = [DigitalWord(names, m[0], m[1]) for names, m in zip(digital_names, digunits, strict=True)]
    pmu = PmuConfig(station, idcode, phasors, analogs, digitals, 50.0 if fnom & 1 else 60.0, cfgcnt)
    pmu.set_format(fmt)
    return pmu


def decode_config(frame: Frame) -> StreamConfig:
    """The configuration in a CFG-1 or CFG-2 frame."""
    if frame.type not in (FrameType.CFG1, FrameType.CFG2):
        raise C37118Error(f"expected a CFG-1 or CFG-2 frame, got {frame.type.name}")
    cur = Cursor(frame.payload, f"{frame.type.name} of IDCODE {frame.idcode}")
    time_base, num_pmu = cur.take(">IH", "TIME_BASE/NUM_PMU")
    pmus = [_decode_pmu(cur) for _ in range(num_pmu)]
    (rate,) = cur.take(">h", "DATA_RATE")
    if cur.offset != len(frame.payload):
        raise C37118Error(f"{cur.what}: {len(frame.payload) - cur.offset} bytes after DATA_RATE")
    if time_base & 0xFFFFFF == 0:
        raise C37118Error(f"{cur.what}: TIME_BASE is 0")
    return StreamConfig(frame.idcode, pmus, time_base & 0xFFFFFF, rate)
