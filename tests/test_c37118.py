"""IEEE C37.118.2-2011 codec: frames worked out byte by byte, round trips, malformed frames."""

from __future__ import annotations

import binascii
import itertools
import math

import pytest

from gridbus import C37118Error
from gridbus.c37time import from_soc_fracsec, to_soc_fracsec
from gridbus.synchrophasor import (
    AnalogChannel,
    Command,
    DataFrame,
    DigitalWord,
    FrameSplitter,
    FrameType,
    PhasorChannel,
    PmuConfig,
    PmuData,
    StreamConfig,
    crc_ccitt,
    decode_command,
    decode_config,
    decode_data,
    decode_frame,
    encode_command,
    encode_config,
    encode_data,
    encode_frame,
    encode_header,
)
from gridbus.synchrophasor.frame import decode_header

SOC = 0x5F5E1000  # 2020-09-13 12:26:40 UTC


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def _name(text: str) -> bytes:
    return text.encode().ljust(16, b" ")


# -- CHK -------------------------------------------------------------------------------------
def test_crc_ccitt_check_value():
    assert crc_ccitt(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert crc_ccitt(b"") == 0xFFFF


def test_crc_agrees_with_an_independent_implementation_and_leaves_no_residue():
    for data in (b"\xaa\x42", bytes(range(256)), b"gridbus" * 31):
        crc = crc_ccitt(data)
        assert crc == binascii.crc_hqx(data, 0xFFFF)
        assert crc_ccitt(data + crc.to_bytes(2, "big")) == 0  # a whole frame checks to zero


# -- frames worked out by hand ---------------------------------------------------------------
START_TO_7 = _hex("""
    AA 42        # SYNC: 0xAA, frame type 100 (command), version 2 (2011)
    00 12        # FRAMESIZE = 18 bytes
    00 07        # IDCODE 7: the data stream the command is for
    5F 5E 10 00  # SOC
    00 00 00 00  # FRACSEC: time quality 0, fraction 0
    00 02        # CMD 2: turn on transmission of data frames
    75 07        # CHK = CRC-CCITT of the 16 bytes above
""")


def test_command_frame_byte_by_byte():
    assert encode_command(7, Command.START, SOC, 0) == START_TO_7
    frame = decode_frame(START_TO_7)
    assert (frame.type, frame.version, frame.idcode, frame.soc, frame.fracsec) == (FrameType.COMMAND, 2, 7, SOC, 0)
    assert decode_command(frame) == (Command.START, b"")


CFG2 = (
    _hex("""
    AA 32        # SYNC: frame type 011 (CFG-2), version 2
    01 62        # FRAMESIZE = 354
    00 07        # IDCODE 7
    5F 5E 10 00  # SOC
    00 00 00 00  # FRACSEC
    00 0F 42 40  # TIME_BASE = 1 000 000 counts per second
    00 01        # NUM_PMU = 1
""")
    + _name("STATION A")  # STN, 16 bytes, space padded
    + _hex("""
    00 07        # IDCODE of the PMU
    00 00        # FORMAT: FREQ/DFREQ int16, analogs int16, phasors int16, rectangular
    00 01        # PHNMR: one phasor
    00 01        # ANNMR: one analog
    00 01        # DGNMR: one digital status word
""")
    + _name("VA")  # CHNAM of the phasor
    + _name("MW")  # CHNAM of the analog
    + b"".join(_name(f"BRK{i}") for i in range(1, 17))  # CHNAM of the 16 digital bits
    + _hex("""
    00 0D F8 47  # PHUNIT: voltage, 915527 x 10^-5 V per bit
    01 00 00 64  # ANUNIT: RMS, scale 100 (x 10^-5 per bit in gridbus)
    00 00 FF FF  # DIGUNIT: normal status 0x0000, all 16 inputs valid
    00 00        # FNOM: bit 0 = 0, 60 Hz
    00 16        # CFGCNT = 22
    00 1E        # DATA_RATE = 30 frames per second
    ED DD        # CHK
""")
)

STATION_A = StreamConfig(
    7,
    [
        PmuConfig(
            "STATION A",
            7,
            [PhasorChannel("VA", current=False, scale=9.15527)],
            [AnalogChannel("MW", kind=1, scale=0.001)],
            [DigitalWord([f"BRK{i}" for i in range(1, 17)], 0x0000, 0xFFFF)],
            f_nominal=60.0,
            cfgcnt=22,
            polar=False,
            phasor_float=False,
            analog_float=False,
            freq_float=False,
        )
    ],
    time_base=1_000_000,
    data_rate=30,
)


def test_cfg2_frame_byte_by_byte():
    assert len(CFG2) == 354
    assert encode_config(STATION_A, SOC, 0) == CFG2
    cfg = decode_config(decode_frame(CFG2))
    pmu = cfg.pmus[0]
    assert (cfg.idcode, cfg.time_base, cfg.data_rate) == (7, 1_000_000, 30)
    assert (pmu.station, pmu.idcode, pmu.format, pmu.f_nominal, pmu.cfgcnt) == ("STATION A", 7, 0, 60.0, 22)
    assert pmu.phasors[0].name == "VA" and not pmu.phasors[0].current
    assert pmu.phasors[0].scale == pytest.approx(9.15527)
    assert (pmu.analogs[0].name, pmu.analogs[0].kind, pmu.analogs[0].scale) == ("MW", 1, pytest.approx(0.001))
    assert pmu.digitals[0].names[15] == "BRK16" and pmu.digitals[0].valid == 0xFFFF


@pytest.mark.parametrize(
    ("word", "flags"),
    [
        (0x0001, (True, False, False, False)),  # bit 0: 1 = polar (magnitude and angle)
        (0x0002, (False, True, False, False)),  # bit 1: 1 = phasors float
        (0x0004, (False, False, True, False)),  # bit 2: 1 = analogs float
        (0x0008, (False, False, False, True)),  # bit 3: 1 = FREQ/DFREQ float
        (0x000F, (True, True, True, True)),
    ],
)
def test_format_word_bits_as_the_standard_numbers_them(word, flags):
    raw = bytearray(CFG2)
    raw[38:40] = word.to_bytes(2, "big")  # FORMAT follows SYNC..FRACSEC (14), TIME_BASE, NUM_PMU, STN, IDCODE
    raw[-2:] = crc_ccitt(bytes(raw[:-2])).to_bytes(2, "big")
    pmu = decode_config(decode_frame(bytes(raw))).pmus[0]
    assert (pmu.polar, pmu.phasor_float, pmu.analog_float, pmu.freq_float) == flags
    assert pmu.format == word and encode_config(StreamConfig(7, [pmu], 1_000_000, 30), SOC) == bytes(raw)


DATA = _hex("""
    AA 02        # SYNC: frame type 000 (data), version 2
    00 1E        # FRAMESIZE = 30
    00 07        # IDCODE 7
    5F 5E 10 00  # SOC
    15 07 A1 20  # FRACSEC: time quality 0x15 (leap second pending, code 5), count 500 000 = 0.5 s
    00 00        # STAT: good data
    39 34        # phasor VA, real = 14644 x 9.15527 V
    E1 C8        #            imaginary = -7736 x 9.15527 V
    00 32        # FREQ: +50 mHz from 60 Hz
    FF 9C        # DFREQ: -100 / 100 = -1.00 Hz/s
    00 64        # ANALOG MW: 100 x 0.001
    3C 12        # DIGITAL word
    C3 41        # CHK
""")


def test_data_frame_byte_by_byte():
    frame = decode_frame(DATA)
    assert (frame.fracsec, frame.time_quality) == (500_000, 0x15)
    assert from_soc_fracsec(frame.soc, frame.fracsec, 1_000_000) == SOC + 0.5
    data = decode_data(STATION_A, frame)
    block = data.pmus[0]
    re, im = 14644 * 9.15527, -7736 * 9.15527
    assert block.magnitude[0] == pytest.approx(math.hypot(re, im))
    assert block.angle[0] == pytest.approx(math.atan2(im, re))
    assert (block.stat, block.digital) == (0, [0x3C12])
    assert block.freq == pytest.approx(60.05)
    assert block.rocof == pytest.approx(-1.0)
    assert block.analog[0] == pytest.approx(0.1)
    again = DataFrame(7, SOC, 500_000, [block], time_quality=0x15)
    assert encode_data(STATION_A, again) == DATA


def test_header_frame():
    raw = encode_header(7, "Station A, 2 phasors", SOC, 0)
    assert raw[:2] == b"\xaa\x12"  # frame type 001, version 2
    assert decode_header(decode_frame(raw)) == "Station A, 2 phasors"


def test_time_split_and_back():
    soc, frac = to_soc_fracsec(1_700_000_000.999_9996, 1_000_000)
    assert (soc, frac) == (1_700_000_001, 0)  # rounds up into the next second
    assert to_soc_fracsec(1_700_000_000.25, 30) == (1_700_000_000, 8)  # 0.25 s = 7.5 counts -> 8
    assert from_soc_fracsec(1_700_000_000, 15, 30) == 1_700_000_000.5


def test_a_data_frame_whose_fracsec_is_not_below_time_base_is_a_c37118_error():
    """FRACSEC counts a fraction of one second: TIME_BASE - 1 is the last legal count."""
    block = decode_data(STATION_A, decode_frame(DATA)).pmus[0]
    last = decode_frame(encode_data(STATION_A, DataFrame(7, SOC, 999_999, [block])))
    assert decode_data(STATION_A, last).fracsec == 999_999
    assert from_soc_fracsec(last.soc, last.fracsec, STATION_A.time_base) == pytest.approx(SOC + 0.999_999)
    beyond = decode_frame(encode_data(STATION_A, DataFrame(7, SOC, 1_000_000, [block])))
    with pytest.raises(C37118Error, match="FRACSEC 1000000 is not below TIME_BASE 1000000"):
        decode_data(STATION_A, beyond)


# -- round trips of every format -------------------------------------------------------------
def _config(polar: bool, phasor_float: bool, analog_float: bool, freq_float: bool, pmus: int = 1) -> StreamConfig:
    blocks = [
        PmuConfig(
            f"PMU {i}",
            10 + i,
            [PhasorChannel("VA", False, 0.01), PhasorChannel("VB", False, 0.01), PhasorChannel("IA", True, 0.001)],
            [AnalogChannel("P", 1, 0.1)],
            [DigitalWord(["CB"])],
            f_nominal=50.0,
            cfgcnt=3,
            polar=polar,
            phasor_float=phasor_float,
            analog_float=analog_float,
            freq_float=freq_float,
        )
        for i in range(pmus)
    ]
    return StreamConfig(99, blocks, time_base=1_000_000, data_rate=50)


FORMATS = list(itertools.product([True, False], repeat=4))


@pytest.mark.parametrize(("polar", "phasor_float", "analog_float", "freq_float"), FORMATS)
def test_round_trip_every_format(polar, phasor_float, analog_float, freq_float):
    cfg = _config(polar, phasor_float, analog_float, freq_float, pmus=2)
    read = decode_config(decode_frame(encode_config(cfg)))
    for sent_cfg, got_cfg in zip(cfg.pmus, read.pmus, strict=True):
        assert got_cfg.format == sent_cfg.format == (freq_float << 3 | analog_float << 2 | phasor_float << 1 | polar)
        assert [p.name for p in got_cfg.phasors] == ["VA", "VB", "IA"]
        assert [p.current for p in got_cfg.phasors] == [False, False, True]
        assert got_cfg.digitals[0].names[0] == "CB"
    blocks = [
        PmuData(0, [230.1, 229.8, 12.345], [0.5, -2.6, 3.0], 50.012, 0.25, [1234.5], [0x0001]),
        PmuData(0x2000, [231.0, 230.0, 1.5], [-0.1, 2.0, -3.1], 49.987, -0.5, [-10.0], [0xFFFF]),
    ]
    frame = DataFrame(99, SOC, 123_456, blocks, time_quality=0x05)
    raw = encode_data(cfg, frame)
    assert len(raw) == 16 + sum(p.data_size() for p in cfg.pmus)
    back = decode_data(read, decode_frame(raw))
    assert (back.soc, back.fracsec, back.time_quality) == (SOC, 123_456, 0x05)
    for sent, got in zip(blocks, back.pmus, strict=True):
        assert got.stat == sent.stat and got.digital == sent.digital
        mag_tol = 1e-4 if phasor_float else 0.01
        assert got.magnitude == pytest.approx(sent.magnitude, rel=1e-6, abs=mag_tol)
        ang_tol = 1e-6 if phasor_float else (2e-4 if polar else 1e-3)
        assert got.angle == pytest.approx(sent.angle, abs=ang_tol)
        assert got.freq == pytest.approx(sent.freq, abs=1e-4 if freq_float else 1e-3)
        assert got.rocof == pytest.approx(sent.rocof, abs=1e-6 if freq_float else 1e-2)
        assert got.analog == pytest.approx(sent.analog, rel=1e-6, abs=1e-3 if analog_float else 0.1)


def test_missing_values_are_nan_both_ways():
    for fmt in ((True, True, True, True), (False, False, False, False)):
        cfg = _config(*fmt)
        nan = math.nan
        block = PmuData(0x8000, [nan] * 3, [nan] * 3, nan, nan, [nan], [0])
        back = decode_data(cfg, decode_frame(encode_data(cfg, DataFrame(99, SOC, 0, [block])))).pmus[0]
        assert back.stat == 0x8000
        assert all(math.isnan(v) for v in [*back.angle, back.rocof, *back.analog])
        assert math.isnan(back.freq)


def test_int16_values_clip_at_their_range():
    cfg = _config(True, False, False, False)
    block = PmuData(0, [1e9, 0.0, 0.0], [0.0, 0.0, 0.0], 50.0 + 100.0, 1e6, [1e9], [0])
    back = decode_data(cfg, decode_frame(encode_data(cfg, DataFrame(99, SOC, 0, [block])))).pmus[0]
    assert back.magnitude[0] == pytest.approx(65535 * 0.01)
    assert back.freq == pytest.approx(50.0 + 32.767)
    assert back.rocof == pytest.approx(327.67)


# -- malformed frames ------------------------------------------------------------------------
def test_bad_crc():
    raw = bytearray(DATA)
    raw[20] ^= 0x01
    with pytest.raises(C37118Error, match="bad CHK"):
        decode_frame(bytes(raw))


def test_short_frame():
    with pytest.raises(C37118Error, match="short frame"):
        decode_frame(DATA[:10])


def test_wrong_framesize():
    raw = bytearray(DATA)
    raw[3] = 0x20  # says 32 bytes, has 30
    with pytest.raises(C37118Error, match="FRAMESIZE 32 does not match"):
        decode_frame(bytes(raw))


def test_unknown_frame_type():
    raw = encode_frame(FrameType.DATA, 7, SOC, 0, b"")
    bad = bytes([0xAA, 0x72]) + raw[2:-2]  # frame type 111: not defined
    bad += crc_ccitt(bad).to_bytes(2, "big")
    with pytest.raises(C37118Error, match="unknown frame type 7"):
        decode_frame(bad)


def test_data_frame_that_does_not_fit_its_config():
    with pytest.raises(C37118Error, match="configuration changed"):
        decode_data(_config(True, True, True, True), decode_frame(DATA))


def test_unknown_command_and_truncated_config():
    with pytest.raises(C37118Error, match="unknown command 9"):
        decode_command(decode_frame(encode_frame(FrameType.COMMAND, 7, 0, 0, b"\x00\x09")))
    truncated = encode_frame(FrameType.CFG2, 7, 0, 0, CFG2[14:100])
    with pytest.raises(C37118Error, match="frame ends inside"):
        decode_config(decode_frame(truncated))


def test_splitter_resynchronizes_after_garbage_and_bad_frames():
    bad_crc = bytearray(DATA)
    bad_crc[-1] ^= 0xFF
    lying_size = bytearray(START_TO_7)
    lying_size[3] = 0x11  # FRAMESIZE 17 instead of 18
    stream = b"\x01\x02" + DATA + bytes(bad_crc) + bytes(lying_size) + START_TO_7 + b"\xaa\x02\x00\x05" + DATA
    splitter = FrameSplitter()
    items = []
    for i in range(0, len(stream), 7):  # arrives in pieces, as TCP delivers it
        splitter.feed(stream[i : i + 7])
        items += list(splitter.frames())
    frames = [i for i in items if not isinstance(i, C37118Error)]
    errors = [i for i in items if isinstance(i, C37118Error)]
    assert [f.type for f in frames] == [FrameType.DATA, FrameType.COMMAND, FrameType.DATA]
    assert any("bytes before the SYNC" in str(e) for e in errors)
    assert any("bad CHK" in str(e) for e in errors)
    assert any("short frame: FRAMESIZE 5" in str(e) for e in errors)
    assert splitter.pending == 0


# -- the bus adapter -------------------------------------------------------------------------
def test_a_cfg2_block_becomes_a_pmu_config_sample_and_back():
    from gridbus import Registry
    from gridbus.synchrophasor.adapter import WireFormat, config_fields, pmu_config

    topic = Registry.default().by_prefix("PMU").topic("Config")
    sample = topic.build("PMU_7", config_fields(STATION_A.pmus[0], STATION_A))
    assert [k.name for k in sample.phasor_kinds] == ["VOLTAGE"]
    assert (sample.station, sample.time_base, sample.f_nominal, sample.data_rate) == ("STATION A", 10**6, 60.0, 30)
    assert sample.analog_units == ["RMS"] and len(sample.digital_names) == 16
    back = pmu_config(topic.to_dict(sample), WireFormat.parse("rect,int", volts_per_bit=9.15527, analog_per_bit=0.001))
    assert back.format == STATION_A.pmus[0].format == 0
    assert [(p.name, p.current, p.scale) for p in back.phasors] == [("VA", False, pytest.approx(9.15527))]
    assert back.digitals[0].names == [f"BRK{i}" for i in range(1, 17)]


@pytest.mark.parametrize("text", ["polar,rect", "float,int", "polar,double", ""])
def test_wire_format_refuses_contradictions(text):
    from gridbus import GridbusError
    from gridbus.synchrophasor.adapter import WireFormat

    if text == "":
        assert WireFormat.parse(text).polar  # nothing said: polar float
        return
    with pytest.raises(GridbusError, match="--format"):
        WireFormat.parse(text)
