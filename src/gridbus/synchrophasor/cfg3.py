"""Configuration frame 3 of IEEE C37.118.2-2011 (frame type 5, SYNC 0xAA52).

CFG-3 says what CFG-2 says and more: names of any length (UTF-8, one length byte then
up to 255 bytes), a 16-byte global PMU id, float scales with an angle offset per phasor
(PHSCALE) and an offset per analog (ANSCALE), the PMU's position, service class,
measurement window and group delay.  A client that reads it gets the long channel names
a PDC shows its operators; CFG-2 cuts them at 16 characters.

Layout per C37.118.2-2011 Table 11 (as quoted field by field in public implementations:
the Kaitai description of CFG-3 and two PHSCALE decoders agree; Wireshark 4.0's dissector
reads our frames field for field, see tests/test_c37118_wireshark.py):

    CONT_IDX u16, TIME_BASE u32 (top byte flags), NUM_PMU u16, then per PMU:
    STN name, IDCODE u16, G_PMU_ID 16 bytes, FORMAT u16, PHNMR u16, ANNMR u16, DGNMR u16,
    CHNAM names (phasors, analogs, 16 per digital word), PHSCALE 12 bytes per phasor
    (u16 modification flags, u8 type: bit 3 current, bits 2-0 component; u8 user byte;
    f32 scale Y; f32 angle offset in radians), ANSCALE 8 bytes per analog (f32 scale M,
    f32 offset B), DIGUNIT 4 bytes per word, PMU_LAT/PMU_LON/PMU_ELEV f32 (infinity:
    unspecified), SVC_CLASS 1 byte, WINDOW i32 us, GRP_DLY i32 us, FNOM u16, CFGCNT u16;
    then DATA_RATE i16.

Not confirmed from the standard's own text: whether WINDOW/GRP_DLY are signed (the
quoted text says "4-byte signed integer"; gridbus reads them signed).  Fragmented
configurations (CONT_IDX other than 0) are refused with a clear error, not reassembled.
"""

from __future__ import annotations

import struct

from ..errors import C37118Error
from .config import (
    AnalogChannel,
    Cursor,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuLocation,
    StreamConfig,
)
from .frame import VERSION_2011, Frame, FrameType, encode_frame

NAME_BYTES = 255  # a CFG-3 name: one length byte, then up to 255 bytes of UTF-8
PHASOR_CURRENT = 0x08  # PHSCALE type byte, bit 3
_PMU_COUNTS = struct.Struct(">HHHH")  # FORMAT, PHNMR, ANNMR, DGNMR
_PHSCALE = struct.Struct(">HBBff")  # flags, type, user byte, scale Y, angle offset
_ANSCALE = struct.Struct(">ff")  # scale M, offset B
_TAIL = struct.Struct(">fffcii")  # PMU_LAT, PMU_LON, PMU_ELEV, SVC_CLASS, WINDOW, GRP_DLY


def _name3(text: str) -> bytes:
    """A length-prefixed UTF-8 name, cut to 255 bytes on a character boundary."""
    raw = text.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return bytes([len(raw)]) + raw


def _phscale(p: PhasorChannel, scaled: bool) -> bytes:
    kind = (PHASOR_CURRENT if p.current else 0) | (p.component & 0x07)
    return _PHSCALE.pack(0, kind, 0, 1.0 if scaled else p.scale, p.angle_offset)


def _pmu_block3(pmu: PmuConfig) -> bytes:
    where = pmu.location
    if len(where.g_pmu_id) != 16:
        raise C37118Error(f"PMU {pmu.idcode}: G_PMU_ID has {len(where.g_pmu_id)} bytes, CFG-3 needs 16")
    svc = where.svc_class.encode("ascii", "replace")[:1] or b"M"
    parts = [_name3(pmu.station), struct.pack(">H", pmu.idcode), where.g_pmu_id]
    parts.append(_PMU_COUNTS.pack(pmu.format, len(pmu.phasors), len(pmu.analogs), len(pmu.digitals)))
    parts += [_name3(p.name) for p in pmu.phasors]
    parts += [_name3(a.name) for a in pmu.analogs]
    parts += [_name3(n) for word in pmu.digitals for n in (list(word.names) + [""] * 16)[:16]]
    parts += [_phscale(p, pmu.phasor_float) for p in pmu.phasors]
    parts += [_ANSCALE.pack(a.scale, a.offset) for a in pmu.analogs]
    parts += [struct.pack(">HH", w.normal, w.valid) for w in pmu.digitals]
    parts.append(_TAIL.pack(where.latitude, where.longitude, where.elevation, svc, where.window, where.group_delay))
    parts.append(struct.pack(">HH", 1 if pmu.f_nominal == 50.0 else 0, pmu.cfgcnt))
    return b"".join(parts)


def encode_config3(cfg: StreamConfig, soc: int = 0, fracsec: int = 0, *, version: int = VERSION_2011) -> bytes:
    """A CFG-3 frame of ``cfg``, in one piece (CONT_IDX 0)."""
    if not 0 < cfg.time_base <= 0xFFFFFF:
        raise C37118Error(f"TIME_BASE {cfg.time_base} does not fit 24 bits")
    payload = struct.pack(">HIH", 0, cfg.time_base, len(cfg.pmus))
    payload += b"".join(_pmu_block3(p) for p in cfg.pmus) + struct.pack(">h", cfg.data_rate)
    return encode_frame(FrameType.CFG3, cfg.idcode, soc, fracsec, payload, version=version)


def _read_name(cur: Cursor, what: str) -> str:
    (size,) = cur.take(">B", f"length of {what}")
    raw = cur.take(f">{size}s", what)[0]
    assert isinstance(raw, bytes)
    return raw.decode("utf-8", "replace")


def _decode_pmu3(cur: Cursor, index: int) -> PmuConfig:
    station = _read_name(cur, f"STN of PMU #{index}")
    idcode, g_pmu_id = cur.take(">H16s", f"IDCODE/G_PMU_ID of {station}")
    fmt, phnmr, annmr, dgnmr = cur.take(">HHHH", f"FORMAT..DGNMR of {station}")
    phasor_names = [_read_name(cur, f"CHNAM of phasor {i} of {station}") for i in range(phnmr)]
    analog_names = [_read_name(cur, f"CHNAM of analog {i} of {station}") for i in range(annmr)]
    digital_names = [
        [_read_name(cur, f"CHNAM of digital {w}.{b} of {station}") for b in range(16)] for w in range(dgnmr)
    ]
    phasors = []
    for name in phasor_names:
        _flags, kind, _user, scale, angle = cur.take(">HBBff", f"PHSCALE of {name!r}")
        phasors.append(PhasorChannel(name, bool(kind & PHASOR_CURRENT), scale, angle, kind & 0x07))
    analogs = []
    for name in analog_names:
        scale, offset = cur.take(">ff", f"ANSCALE of {name!r}")
        analogs.append(AnalogChannel(name, 1, scale, offset))
    digitals = [DigitalWord(names, *cur.take(">HH", f"DIGUNIT of {station}")) for names in digital_names]
    lat, lon, elev, svc, window, delay = cur.take(">fffcii", f"PMU_LAT..GRP_DLY of {station}")
    assert isinstance(svc, bytes) and isinstance(g_pmu_id, bytes)
    fnom, cfgcnt = cur.take(">HH", f"FNOM/CFGCNT of {station}")
    where = PmuLocation(g_pmu_id, lat, lon, elev, svc.decode("ascii", "replace"), window, delay)
    pmu = PmuConfig(station, idcode, phasors, analogs, digitals, 50.0 if fnom & 1 else 60.0, cfgcnt, location=where)
    pmu.set_format(fmt)
    return pmu


def decode_config3(frame: Frame) -> StreamConfig:
    """The configuration in a CFG-3 frame (one piece: CONT_IDX 0)."""
    if frame.type is not FrameType.CFG3:
        raise C37118Error(f"expected a CFG-3 frame, got {frame.type.name}")
    cur = Cursor(frame.payload, f"CFG3 of IDCODE {frame.idcode}")
    cont_idx, time_base, num_pmu = cur.take(">HIH", "CONT_IDX/TIME_BASE/NUM_PMU")
    if cont_idx != 0:
        raise C37118Error(f"{cur.what}: fragmented configuration (CONT_IDX {cont_idx}) is not supported")
    if time_base & 0xFFFFFF == 0:
        raise C37118Error(f"{cur.what}: TIME_BASE is 0")
    pmus = [_decode_pmu3(cur, i) for i in range(num_pmu)]
    (rate,) = cur.take(">h", "DATA_RATE")
    if cur.offset != len(frame.payload):
        raise C37118Error(f"{cur.what}: {len(frame.payload) - cur.offset} bytes after DATA_RATE")
    return StreamConfig(frame.idcode, pmus, time_base & 0xFFFFFF, rate)
