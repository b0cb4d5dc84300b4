"""C37.118.2 frames against an independent implementation: pypmu (PyPI ``synchrophasor`` 1.0.0a0).

Frames encoded by gridbus's codec are decoded by pypmu's frame classes and the other way
round, for several FORMAT words, multi-PMU frames, commands and headers.  Values are checked
against the standard's scaling, not against pypmu's reading of it where the two differ:
``test_pypmu_deviations_from_the_standard`` records each difference found
(docs/synchrophasors.md, "Interoperability").  The streams (a pypmu Pmu and Pdc against the
gateway) are in test_c37118_interop_stream.py.
"""

from __future__ import annotations

import collections
import math
from types import ModuleType

import pytest
from pypmu_compat import pypmu_frame

from gridbus.synchrophasor import (
    AnalogChannel,
    Command,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    StreamConfig,
    decode_command,
    decode_config,
    decode_data,
    decode_frame,
    encode_command,
    encode_config,
    encode_data,
    encode_header,
)
from gridbus.synchrophasor.frame import FrameType, decode_header

SOC = 1_700_000_000


# FORMAT words (bit 0 polar, 1 phasors float, 2 analogs float, 3 FREQ/DFREQ float)
FORMATS = [0b0000, 0b0001, 0b0011, 0b0111, 0b1111, 0b1110, 0b0101, 0b1001]


def _pmu(idcode: int, fmt: int, *, nominal: float = 50.0, normal: int = 0) -> PmuConfig:
    return PmuConfig(
        f"SUB {idcode}",
        idcode,
        [PhasorChannel("VA", False, 0.1), PhasorChannel("IA", True, 0.01)],
        [AnalogChannel("P", 1, 1.0)],  # ANUNIT 100000: one count = 1.0 (gridbus's reading)
        [DigitalWord([f"BRK{i}" for i in range(16)], normal=normal, valid=0xFFFF)],
        nominal,
        cfgcnt=3,
        polar=bool(fmt & 1),
        phasor_float=bool(fmt & 2),
        analog_float=bool(fmt & 4),
        freq_float=bool(fmt & 8),
    )


def _block(k: int) -> PmuData:
    return PmuData(0, [230.0 + k, 12.34], [0.5, -2.9], 50.0 + 0.021 * (k + 1), -0.25, [120.0 + k], [0x0A05 + k])


def _wire_phasors(pmu: PmuConfig, data: PmuData) -> list[tuple[float, float]]:
    """What the standard puts on the wire for each phasor (counts for int16, floats otherwise)."""
    out = []
    for ch, mag, ang in zip(pmu.phasors, data.magnitude, data.angle, strict=True):
        a, b = (mag, ang) if pmu.polar else (mag * math.cos(ang), mag * math.sin(ang))
        if not pmu.phasor_float:
            a, b = round(a / ch.scale), round(b * 1e4) if pmu.polar else round(b / ch.scale)
        out.append((a, b))
    return out


def _check_pypmu_reading(pmu: PmuConfig, data: PmuData, got: dict) -> None:
    """pypmu's decoded block (``got``: its getters for one PMU) against the standard's wire values."""
    raw = [tuple(p) for p in got["raw_phasors"]]
    for (a, b), (want_a, want_b) in zip(raw, _wire_phasors(pmu, data), strict=True):
        assert a == pytest.approx(want_a, abs=1e-4) and b == pytest.approx(want_b, abs=1e-4)
    if pmu.freq_float:  # the standard: the actual frequency in Hz, ROCOF in Hz/s
        assert got["freq"] == pytest.approx(data.freq, abs=1e-4) and got["dfreq"] == pytest.approx(data.rocof)
    else:  # deviation from nominal in mHz, ROCOF x 100
        assert got["freq"] == round((data.freq - pmu.f_nominal) * 1000) and got["dfreq"] == round(data.rocof * 100)
    assert got["analog"] == pytest.approx(data.analog, abs=1e-4)  # 1.0 per count: counts = values
    assert got["digital"] == data.digital


def _pypmu_block(frame: object, i: int | None, fmt_tuple: tuple[bool, ...], pf: ModuleType) -> dict:
    """pypmu's reading of PMU block ``i`` (None: a single-PMU frame) through its getters."""

    def pick(value: object) -> object:
        return value if i is None else value[i]  # type: ignore[index]

    return {
        "raw_phasors": [pf.DataFrame._int2phasor(p, fmt_tuple) for p in pick(frame._phasors)],  # type: ignore[attr-defined]
        "freq": pick(frame.get_freq()),  # type: ignore[attr-defined]
        "dfreq": pick(frame.get_dfreq()),  # type: ignore[attr-defined]
        "analog": pick(frame.get_analog()),  # type: ignore[attr-defined]
        "digital": pick(frame.get_digital()),  # type: ignore[attr-defined]
        "stat": pick(frame.get_stat()),  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_pypmu_decodes_our_config_and_data_frames(monkeypatch, fmt):
    pf = pypmu_frame(monkeypatch)
    pmu = _pmu(21, fmt)
    cfg = StreamConfig(21, [pmu], 1_000_000, 50)
    pcfg = pf.CommonFrame.convert2frame(encode_config(cfg, SOC, 250_000))
    assert isinstance(pcfg, pf.ConfigFrame2)
    assert (pcfg.get_id_code(), pcfg.get_stream_id_code(), pcfg.get_num_pmu()) == (21, 21, 1)
    assert pcfg.get_station_name().strip() == "SUB 21"
    assert pcfg.get_data_format() == (pmu.polar, pmu.phasor_float, pmu.analog_float, pmu.freq_float)
    assert (pcfg.get_phasor_num(), pcfg.get_analog_num(), pcfg.get_digital_num()) == (2, 1, 1)
    assert [n.strip() for n in pcfg.get_channel_names()] == ["VA", "IA", "P"] + [f"BRK{i}" for i in range(16)]
    assert pcfg.get_ph_units() == [(10_000, "v"), (1_000, "i")]
    assert pcfg.get_analog_units() == [(100_000, "rms")]
    assert (pcfg.get_fnom(), pcfg.get_cfg_count(), pcfg.get_data_rate(), pcfg.get_time_base()) == (50, 3, 50, 10**6)
    assert (pcfg.get_soc(), pcfg.get_frasec()) == (SOC, (250_000, "+", False, False, 0))
    for k in range(3):
        block = _block(k)
        if pmu.freq_float:  # pypmu decodes no float FREQ above 32.767 Hz (deviation 2 below): a value it takes
            block.freq = 0.021 * (k + 1)
        raw = encode_data(cfg, DataFrame(21, SOC + 1, 20_000 * (k + 1), [block]))
        got = pf.CommonFrame.convert2frame(raw, pcfg)
        assert isinstance(got, pf.DataFrame) and got.get_id_code() == 21
        assert (got.get_soc(), got.get_frasec()[0]) == (SOC + 1, 20_000 * (k + 1))
        assert got.get_measurements()["time"] == pytest.approx(SOC + 1 + 0.02 * (k + 1))
        reading = _pypmu_block(got, None, pcfg.get_data_format(), pf)
        assert reading["stat"][0] == "ok"
        _check_pypmu_reading(pmu, block, reading)


def test_pypmu_decodes_our_two_pmu_frames(monkeypatch):
    """NUM_PMU 2, a different FORMAT and FNOM each, one PMU marked data-invalid (a PDC's filler)."""
    pf = pypmu_frame(monkeypatch)
    pmus = [_pmu(31, 0b0001), _pmu(32, 0b0110, nominal=60.0)]
    cfg = StreamConfig(30, pmus, 1_000_000, 25)
    pcfg = pf.CommonFrame.convert2frame(encode_config(cfg, SOC, 1))
    assert pcfg.get_num_pmu() == 2 and pcfg.get_stream_id_code() == [31, 32]
    assert [s.strip() for s in pcfg.get_station_name()] == ["SUB 31", "SUB 32"]
    assert pcfg.get_fnom() == [50, 60] and pcfg.get_data_rate() == 25
    first, second = _block(1), _block(2)
    second.freq, first.stat = 59.97, 0x8000
    got = pf.CommonFrame.convert2frame(encode_data(cfg, DataFrame(30, SOC, 40_000, [first, second])), pcfg)
    for i, (pmu, data) in enumerate(zip(pmus, [first, second], strict=True)):
        reading = _pypmu_block(got, i, pcfg.get_data_format()[i], pf)
        _check_pypmu_reading(pmu, data, reading)
    assert [s[0] for s in got.get_stat()] == ["error", "ok"]  # bits 15-14 = 10: "do not use the values"


def test_pypmu_decodes_our_command_frames(monkeypatch):
    pf = pypmu_frame(monkeypatch)
    names = {Command.STOP: "stop", Command.START: "start", Command.SEND_HEADER: "header"}
    names |= {Command.SEND_CFG1: "cfg1", Command.SEND_CFG2: "cfg2", Command.SEND_CFG3: "cfg3"}
    for cmd, name in names.items():
        got = pf.CommonFrame.convert2frame(encode_command(9, cmd, SOC, 77))
        assert isinstance(got, pf.CommandFrame) and got.get_command() == name
        assert (got.get_id_code(), got.get_soc(), got.get_frasec()[0]) == (9, SOC, 77)
    got = pf.CommonFrame.convert2frame(encode_command(9, Command.EXTENDED, SOC, 77, b"\x01\x02\x03\x04"))
    assert got.get_command() == "extended" and got._extended_frame == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("fmt", FORMATS)
def test_we_decode_pypmu_config_and_data_frames(monkeypatch, fmt):
    pf = pypmu_frame(monkeypatch)
    polar, ph_float, an_float, fr_float = (bool(fmt & bit) for bit in (1, 2, 4, 8))
    pcfg = pf.ConfigFrame2(
        44, 1_000_000, 1, "PYPMU A", 44, fmt, 2, 1, 1, ["VA", "IA", "P"] + [f"D{i}" for i in range(16)],
        [(10_000, "v"), (1_000, "i")], [(100_000, "rms")], [(0x0000, 0xFFFF)], 60, 5, 30, SOC, 123_456,
    )  # fmt: skip
    frame = decode_frame(pcfg.convert2bytes())
    assert (frame.type, frame.version, frame.idcode, frame.soc, frame.fracsec) == (FrameType.CFG2, 1, 44, SOC, 123_456)
    cfg = decode_config(frame)
    (pmu,) = cfg.pmus
    assert (cfg.idcode, cfg.time_base, cfg.data_rate) == (44, 1_000_000, 30)
    assert (pmu.station, pmu.idcode, pmu.f_nominal, pmu.cfgcnt) == ("PYPMU A", 44, 60.0, 5)
    assert (pmu.polar, pmu.phasor_float, pmu.analog_float, pmu.freq_float) == (polar, ph_float, an_float, fr_float)
    assert [(p.name, p.current, p.scale) for p in pmu.phasors] == [
        ("VA", False, pytest.approx(0.1)),
        ("IA", True, pytest.approx(0.01)),
    ]
    assert [(a.name, a.kind, a.scale) for a in pmu.analogs] == [("P", 1, pytest.approx(1.0))]
    assert pmu.digitals[0].names[:2] == ["D0", "D1"] and pmu.digitals[0].valid == 0xFFFF
    # pypmu takes data values as they go on the wire: counts for int16, floats otherwise
    if ph_float:
        phasors = [(230.5, 0.5), (12.25, -2.5)] if polar else [(200.0, 110.5), (-11.0, 3.0)]
    else:
        phasors = [(2305, 5000), (1225, -25000)] if polar else [(2000, 1105), (-1100, 300)]
    # pypmu refuses a float FREQ outside +-32.767 (frame.py:2144): it cannot send 60 Hz as the
    # standard's float FREQ (the actual frequency), so the float case carries 0.05 "Hz"
    freq, dfreq = (0.05, -0.25) if fr_float else (-30, -25)
    analog = [120.5] if an_float else [120]
    raw = pf.DataFrame(44, 0, phasors, freq, dfreq, analog, [0x0A05], pcfg, SOC + 1, 654_321).convert2bytes()
    data = decode_data(cfg, decode_frame(raw))
    (block,) = data.pmus
    assert (data.idcode, data.soc, data.fracsec, block.stat) == (44, SOC + 1, 654_321, 0)
    for (a, b), mag, ang, ch in zip(phasors, block.magnitude, block.angle, pmu.phasors, strict=True):
        if not ph_float:
            a, b = a * ch.scale, (b * 1e-4 if polar else b * ch.scale)
        want = (a, b) if polar else (math.hypot(a, b), math.atan2(b, a))
        assert (mag, ang) == pytest.approx(want, abs=1e-5)
    if fr_float:
        assert (block.freq, block.rocof) == pytest.approx((0.05, -0.25))
    else:
        assert (block.freq, block.rocof) == pytest.approx((60.0 - 0.030, -0.25))
    assert block.analog == pytest.approx(analog) and block.digital == [0x0A05]


def test_we_decode_pypmu_command_and_header_frames(monkeypatch):
    pf = pypmu_frame(monkeypatch)
    for name, cmd in [("stop", 1), ("start", 2), ("header", 3), ("cfg1", 4), ("cfg2", 5), ("cfg3", 6)]:
        frame = decode_frame(pf.CommandFrame(12, name, None, SOC, 999).convert2bytes())
        assert (frame.idcode, frame.soc, frame.fracsec) == (12, SOC, 999)
        assert decode_command(frame) == (Command(cmd), b"")
    extended = pf.CommandFrame(12, "extended", b"\x00\x01\x00\x02", SOC, 999).convert2bytes()
    assert decode_command(decode_frame(extended)) == (Command.EXTENDED, b"\x00\x01\x00\x02")
    header = decode_frame(pf.HeaderFrame(12, "tinyPMU at bay 3", SOC, 5).convert2bytes())
    assert header.type is FrameType.HEADER and decode_header(header) == "tinyPMU at bay 3"


def test_pypmu_deviations_from_the_standard(monkeypatch):
    """Each place where pypmu 1.0.0a0 reads or writes valid C37.118.2 frames differently from the
    standard (and from gridbus), shown on our frames; docs/synchrophasors.md lists them."""
    pf = pypmu_frame(monkeypatch)
    cfg = StreamConfig(21, [_pmu(21, 0b0001)], 1_000_000, 50)
    pcfg = pf.CommonFrame.convert2frame(encode_config(cfg, SOC, 1))
    block = _block(0)
    got = pf.CommonFrame.convert2frame(encode_data(cfg, DataFrame(21, SOC, 10, [block])), pcfg)
    # 1. polar int16: get_phasors() scales the angle (rad x 10^4 on the wire) by PHUNIT too (frame.py:2030)
    (mag, ang), _ = got.get_phasors()
    assert mag == pytest.approx(230.0, abs=0.1) and ang == pytest.approx(round(0.5e4) * 0.1)
    # 2. float FREQ (FORMAT bit 3) is the actual frequency in Hz: pypmu takes it for the deviation
    #    from FNOM, refuses to decode or encode one outside +-32.767 (frame.py:2144, in the setter its
    #    decoder calls too), and get_measurements() adds FNOM + FREQ/1000 whatever the FORMAT (frame.py:2371)
    fcfg = StreamConfig(21, [_pmu(21, 0b1000)], 1_000_000, 50)
    pfcfg = pf.CommonFrame.convert2frame(encode_config(fcfg, SOC, 1))
    with pytest.raises(pf.FrameError, match="FREQ must be in range"):
        pf.CommonFrame.convert2frame(encode_data(fcfg, DataFrame(21, SOC, 10, [block])), pfcfg)  # 50.021 Hz
    with pytest.raises(ValueError, match="FREQ must be in range"):
        pf.DataFrame(21, 0, [(1, 0), (1, 0)], 50.0, 0.0, [1], [0], pfcfg, SOC, 1)
    small = PmuData(0, [1.0, 1.0], [0.0, 0.0], 0.05, 0.0, [1.0], [0])
    fgot = pf.CommonFrame.convert2frame(encode_data(fcfg, DataFrame(21, SOC, 10, [small])), pfcfg)
    assert fgot.get_freq() == pytest.approx(0.05)
    assert fgot.get_measurements()["measurements"][0]["frequency"] == pytest.approx(50.0 + 0.05 / 1000)
    # 3. a header frame's text comes back as the repr of its bytes (frame.py:2657)
    assert pf.CommonFrame.convert2frame(encode_header(21, "hello", SOC, 1)).get_header() == "b'hello'"
    # 4. DIGUNIT: a normal-status mask other than 0 makes a valid CFG-2 unreadable (frame.py:1366 keeps
    #    the mask in the top 16 bits, then the setter rejects it)
    dcfg = StreamConfig(21, [_pmu(21, 0b0001, normal=0x0003)], 1_000_000, 50)
    with pytest.raises(pf.FrameError, match="DIGUNIT"):
        pf.CommonFrame.convert2frame(encode_config(dcfg, SOC, 1))
    # 5. STAT: PMU time quality (bits 8-6) or unlocked time (bits 5-4) set makes a data frame
    #    unreadable (frame.py:1967-1968 look the unshifted bits up)
    block.stat = 0x0040
    with pytest.raises(pf.FrameError):
        pf.CommonFrame.convert2frame(encode_data(cfg, DataFrame(21, SOC, 10, [block])), pcfg)
    #    and bits 15-14 are read as one bit (frame.py:1955): 01, "PMU error", reads "ok"
    block.stat = 0x4000
    assert pf.CommonFrame.convert2frame(encode_data(cfg, DataFrame(21, SOC, 10, [block])), pcfg).get_stat()[0] == "ok"
    # 6. FRACSEC: the decoders keep 23 of its 24 bits (frame.py:395), wrong from 2^23 counts on
    big = StreamConfig(21, [_pmu(21, 0b0001)], 0xFFFFFF, 50)
    assert pf.CommonFrame.convert2frame(encode_command(21, Command.START, SOC, 0x900000)).get_frasec()[0] == 0x100000
    assert pf.CommonFrame.convert2frame(encode_config(big, SOC, 0x7FFFFF)).get_frasec()[0] == 0x7FFFFF
    #    a FRACSEC of 0 given to its encoders is replaced by the clock's fraction (frame.py:234), taken
    #    from the digits of its repr (frame.py:242): 0.5 s after a second becomes 5 counts, not 500000
    monkeypatch.setattr(pf, "time", lambda: SOC + 0.5)
    assert decode_frame(pf.CommandFrame(21, "start", None, SOC, 0).convert2bytes()).fracsec == 5
    # 8. the standard's missing values (NaN in float fields, 0x8000 in int16 ones: a PDC's block for
    #    a PMU it did not get) make a data frame unreadable: its decoder goes through setters that
    #    check ranges (frame.py:2051, 2063, 2081, 2144)
    for fmt in (0b0001, 0b0000, 0b1111):
        mcfg = StreamConfig(21, [_pmu(21, fmt)], 1_000_000, 50)
        missing = PmuData(0x8000, [math.nan] * 2, [math.nan] * 2, math.nan, math.nan, [math.nan], [0])
        with pytest.raises(pf.FrameError):
            pf.CommonFrame.convert2frame(
                encode_data(mcfg, DataFrame(21, SOC, 10, [missing])), pf.CommonFrame.convert2frame(encode_config(mcfg))
            )
    # 9. without the collections.Sequence alias (Python >= 3.10) no frame decodes (frame.py:235)
    monkeypatch.delattr(collections, "Sequence")
    with pytest.raises(pf.FrameError, match="Sequence"):
        pf.CommonFrame.convert2frame(encode_command(21, Command.START, SOC, 1))
