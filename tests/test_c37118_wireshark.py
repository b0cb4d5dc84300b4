"""Our C37.118.2 frames read by an independent implementation: Wireshark's dissector (tshark).

The test writes the frames gridbus's codec encodes (command, header, CFG-2, data frames in
several FORMATs, a two-PMU frame) into a pcap file, as UDP datagrams to port 4713 or a TCP
stream from port 4712 (the ports the "synphasor" dissector takes by default), and checks
what ``tshark -T pdml`` decoded against what was encoded: IDCODE, SOC, FRACSEC, time
quality, STAT, phasor values, frequency, ROCOF, analogs, digitals and the CRC ("Good").
No live capture: the packets exist only in the file, no traffic is sent.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gridbus.synchrophasor import (
    AnalogChannel,
    Command,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    StreamConfig,
    encode_command,
    encode_config,
    encode_config3,
    encode_data,
    encode_header,
)

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")

SOC = 1_700_000_000
LOOPBACK = bytes([127, 0, 0, 1])


# --- a pcap file, written by hand --------------------------------------------------------------


def _inet_checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(proto: int, segment: bytes) -> bytes:
    head = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 1, 0x4000, 64, proto, 0, LOOPBACK, LOOPBACK)
    head = head[:10] + struct.pack(">H", _inet_checksum(head)) + head[12:]
    return b"\0" * 12 + b"\x08\x00" + head + segment  # Ethernet (zero MACs), IPv4


def _udp(payload: bytes, sport: int, dport: int) -> bytes:
    return _ipv4(17, struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload)


class _TcpFlow:
    """One direction of a TCP connection: consecutive sequence numbers, PSH|ACK segments."""

    def __init__(self, sport: int, dport: int) -> None:
        self.sport, self.dport, self.seq = sport, dport, 1000

    def segment(self, payload: bytes) -> bytes:
        head = struct.pack(">HHIIBBHHH", self.sport, self.dport, self.seq, 1, 5 << 4, 0x18, 65535, 0, 0)
        self.seq += len(payload)
        return _ipv4(6, head + payload)


def _pcap(path: Path, packets: list[bytes]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # libpcap, LINKTYPE_ETHERNET
    for i, packet in enumerate(packets):
        out.append(struct.pack("<IIII", SOC + i, 0, len(packet), len(packet)) + packet)
    path.write_bytes(b"".join(out))
    return path


# --- what the dissector says ---------------------------------------------------------------------


@dataclass
class Dissected:
    """The synphasor fields of one packet: name -> [(show, showname, value)], and its expert infos."""

    fields: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    experts: list[str] = field(default_factory=list)
    title: str = ""

    def show(self, name: str, index: int = 0) -> str:
        return self.fields[name][index][0]

    def shownames(self, name: str) -> list[str]:
        return [showname for _show, showname, _value in self.fields.get(name, [])]


def _dissect(pcap: Path) -> list[Dissected]:
    proc = subprocess.run([TSHARK or "tshark", "-n", "-r", str(pcap), "-T", "pdml"], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    packets = []
    for packet in ET.fromstring(proc.stdout).iter("packet"):
        out = Dissected()
        for proto in packet.iter("proto"):
            if proto.get("name") == "synphasor":
                out.title = out.title or proto.get("showname", "")
                for f in proto.iter("field"):
                    out.fields.setdefault(f.get("name", ""), []).append(
                        (f.get("show", ""), f.get("showname") or f.get("show", ""), f.get("value", ""))
                    )
                    if f.get("name") == "_ws.expert":
                        out.experts.append(f.get("showname", ""))
        packets.append(out)
    return packets


_POLAR = re.compile(r"(-?[\d.]+)([VA]) ∠\s*(-?[\d.]+)°")


def _phasors(d: Dissected) -> list[tuple[float, float]]:
    """(magnitude, angle in rad) of every phasor, as the dissector scaled them."""
    out = []
    for text in d.shownames("synphasor.phasor"):
        match = _POLAR.search(text)
        assert match, text
        out.append((float(match.group(1)), math.radians(float(match.group(3)))))
    return out


def _stations(d: Dissected) -> list[str]:
    """The STN of each PMU block (a text item of the tree, not a field)."""
    found = (re.match(r'Station #\d+: "(.*)"$', text) for text in d.shownames(""))
    return [m.group(1).strip() for m in found if m]


def _common(d: Dissected, kind: str, idcode: int, soc: int, fracsec: int, notes: tuple[str, ...] = ()) -> None:
    assert kind in d.title and "[correct]" in d.title, d.title
    assert int(d.show("synphasor.idcode_stream_source")) == idcode
    assert int(d.fields["synphasor.soc"][0][2], 16) == soc
    assert int(d.show("synphasor.fracsec_raw")) == fracsec
    assert d.show("synphasor.checksum.status") == "1"  # Good: the dissector computes the same CRC
    assert [e.split(": ", 1)[1] for e in d.experts] == list(notes), d.experts  # no malformed, no error


# --- the frames -----------------------------------------------------------------------------------


def _pmu(idcode: int, fmt: str, *, nominal: float = 50.0) -> PmuConfig:
    return PmuConfig(
        f"SUB {idcode}",
        idcode,
        [PhasorChannel("VA", False, 0.1), PhasorChannel("VB", False, 0.1), PhasorChannel("IA", True, 0.01)],
        [AnalogChannel("P", 1, 1.0), AnalogChannel("Q", 1, 1.0)],
        [DigitalWord([f"BRK{i}" for i in range(16)], normal=0x0003, valid=0xFFF0)],
        nominal,
        cfgcnt=4,
        polar="polar" in fmt,
        phasor_float="ph_float" in fmt,
        analog_float="an_float" in fmt,
        freq_float="fr_float" in fmt,
    )


def _values(k: int) -> PmuData:
    return PmuData(
        stat=0x0000,
        magnitude=[230.0 + k, 229.5, 12.34],
        angle=[0.5, -1.6, 2.9],
        freq=50.0 + 0.021 * (k + 1),
        rocof=-0.25,
        analog=[120.0 + k, -40.0],
        digital=[0x0A05 + k],
    )


FORMATS = [
    "polar",  # polar int16, FREQ/analogs int16
    "rect",
    "polar ph_float an_float fr_float",
    "rect ph_float an_float fr_float",
    "polar ph_float",  # mixed: float phasors, int16 FREQ and analogs
    "rect an_float fr_float",
]


def _check_data(d: Dissected, pmus: list[PmuConfig], blocks: list[PmuData]) -> None:
    """The dissector's reading of a data frame's PMU blocks against what was encoded."""
    phasors = _phasors(d)
    analogs = d.shownames("synphasor.analog_value")
    for i, (pmu, data) in enumerate(zip(pmus, blocks, strict=True)):
        assert int(d.show("synphasor.data.status", i), 16) == data.stat >> 14
        assert d.show("synphasor.data.CFGchange", i) == str(int(bool(data.stat & 0x400)))
        mine = phasors[3 * i : 3 * i + 3]
        for (mag, ang), want_mag, want_ang, ch in zip(mine, data.magnitude, data.angle, pmu.phasors, strict=True):
            tolerance = 1e-3 if pmu.phasor_float else ch.scale  # int16: one count
            assert mag == pytest.approx(want_mag, abs=tolerance + 1e-3)
            assert ang == pytest.approx(want_ang, abs=2e-4 if pmu.polar or pmu.phasor_float else 2e-3)
        if pmu.freq_float:
            assert float(d.show("synphasor.actual_frequency_value", sum(p.freq_float for p in pmus[:i]))) == (
                pytest.approx(data.freq, abs=1e-4)
            )
        else:
            index = sum(not p.freq_float for p in pmus[:i])
            assert int(d.show("synphasor.frequency_deviation_from_nominal", index)) == round(
                (data.freq - pmu.f_nominal) * 1000
            )
        assert float(d.show("synphasor.rate_change_frequency", i)) == pytest.approx(data.rocof, abs=1e-3)
        for text, want in zip(analogs[2 * i : 2 * i + 2], data.analog, strict=True):
            assert float(text.split(",")[1].split()[0]) == pytest.approx(want, abs=1e-3)  # 1.0 per bit: raw = value
        assert [int(v, 16) for v in [d.show("synphasor.digital_status_word", i)]] == data.digital


@pytest.mark.parametrize("fmt", FORMATS)
def test_dissector_reads_our_config_and_data_frames_over_udp(tmp_path, fmt):
    pmu = _pmu(21, fmt)
    cfg = StreamConfig(21, [pmu], 1_000_000, 50)
    frames = [encode_config(cfg, SOC, 1)]
    blocks = [_values(k) for k in range(3)]
    frames += [encode_data(cfg, DataFrame(21, SOC, 20_000 * (k + 1), [blocks[k]])) for k in range(3)]
    packets = _dissect(_pcap(tmp_path / "udp.pcap", [_udp(f, 40000, 4713) for f in frames]))
    assert len(packets) == 4
    conf = packets[0]
    _common(conf, "Configuration Frame 2", 21, SOC, 1)
    assert int(conf.show("synphasor.conf.timebase")) == 1_000_000 and int(conf.show("synphasor.conf.numpmu")) == 1
    assert _stations(conf) == ["SUB 21"]
    assert int(conf.show("synphasor.idcode_data_source")) == 21
    # the FORMAT bits, one by one (Wireshark's booleans: 1 = float or polar)
    assert conf.show("synphasor.conf.phasor_notation") == str(int(pmu.polar))
    assert conf.show("synphasor.conf.phasor_format") == str(int(pmu.phasor_float))
    assert conf.show("synphasor.conf.analog_format") == str(int(pmu.analog_float))
    assert conf.show("synphasor.conf.dfreq_format") == str(int(pmu.freq_float))
    assert [s.strip() for s, _n, _v in conf.fields["synphasor.channel_name"]] == ["VA", "VB", "IA", "P", "Q"] + [
        f"BRK{i}" for i in range(16)
    ]
    assert [int(v, 16) for v in (s for s, _n, _v in conf.fields["synphasor.conversion_factor"])] == [
        10_000,
        10_000,
        (1 << 24) | 1000,
    ]
    assert int(conf.show("synphasor.status_word_mask.normal_state"), 16) == 0x0003
    assert int(conf.show("synphasor.status_word_mask.valid_bits"), 16) == 0xFFF0
    assert conf.show("synphasor.conf.fnom") == "1" and int(conf.show("synphasor.conf.cfgcnt")) == 4
    assert int(conf.show("synphasor.rate_of_transmission")) == 50
    for k, d in enumerate(packets[1:]):
        _common(d, "Data Frame", 21, SOC, 20_000 * (k + 1))
        _check_data(d, [pmu], [blocks[k]])


def test_dissector_reads_a_two_pmu_frame_with_time_quality_and_stat_over_tcp(tmp_path):
    """NUM_PMU 2 with a different FORMAT and FNOM each, FRACSEC's time-quality byte, STAT bits, one TCP stream."""
    pmus = [_pmu(31, "polar"), _pmu(32, "rect ph_float an_float fr_float", nominal=60.0)]
    cfg = StreamConfig(30, pmus, 1_000_000, 25)
    first, second = _values(1), _values(2)
    second.freq = 59.97
    first.stat = 0x8000 | 0x0400  # data invalid (bits 15-14 = 2), configuration change
    frame = DataFrame(30, SOC + 5, 40_000, [first, second], time_quality=0x40 | 0x10 | 0x05)
    server, client = _TcpFlow(4712, 40001), _TcpFlow(40001, 4712)
    segments = [
        client.segment(encode_command(30, Command.SEND_CFG2, SOC, 0)),
        server.segment(encode_config(cfg, SOC, 0)),
        client.segment(encode_command(30, Command.START, SOC, 0)),
        server.segment(encode_data(cfg, frame)),
    ]
    packets = _dissect(_pcap(tmp_path / "tcp.pcap", segments))
    assert len(packets) == 4
    assert int(packets[0].show("synphasor.command"), 16) == Command.SEND_CFG2
    assert int(packets[2].show("synphasor.command"), 16) == Command.START
    conf = packets[1]
    _common(conf, "Configuration Frame 2", 30, SOC, 0)
    assert int(conf.show("synphasor.conf.numpmu")) == 2
    assert [int(s) for s, _n, _v in conf.fields["synphasor.idcode_data_source"]] == [31, 32]
    assert [s for s, _n, _v in conf.fields["synphasor.conf.fnom"]] == ["1", "0"]  # 50 Hz, 60 Hz
    assert _stations(conf) == ["SUB 31", "SUB 32"]
    data = packets[3]
    _common(data, "Data Frame", 30, SOC + 5, 40_000, notes=("Data Error flag set",))
    assert data.show("synphasor.timeqal.lsdir") == "1"  # the raw bit 6 (the standard: 1 = delete)
    assert data.show("synphasor.timeqal.lsocc") == "0" and data.show("synphasor.timeqal.lspend") == "1"
    assert int(data.show("synphasor.timeqal.timequalindic"), 16) == 0x05
    _check_data(data, pmus, [first, second])


def test_dissector_reads_our_command_and_header_frames(tmp_path):
    commands = [Command.STOP, Command.START, Command.SEND_HEADER, Command.SEND_CFG1, Command.SEND_CFG2]
    frames = [encode_command(9, cmd, SOC, 100 * i) for i, cmd in enumerate(commands)]
    frames.append(encode_header(9, "gridbus PMU stream, 2 PMUs", SOC, 7))
    packets = _dissect(_pcap(tmp_path / "cmd.pcap", [_udp(f, 40002, 4713) for f in frames]))
    for i, (cmd, d) in enumerate(zip(commands, packets, strict=False)):
        _common(d, "Command Frame", 9, SOC, 100 * i)
        assert int(d.show("synphasor.command"), 16) == cmd
    _common(packets[-1], "Header Frame", 9, SOC, 7)
    assert bytes.fromhex(packets[-1].fields["synphasor.data"][0][2]) == b"gridbus PMU stream, 2 PMUs"


def test_dissector_flags_a_bad_check_word_as_ours_does(tmp_path):
    """The negative control: one flipped bit of CHK is a bad checksum to Wireshark too."""
    good = encode_command(9, Command.START, SOC, 1)
    bad = good[:-1] + bytes([good[-1] ^ 0x01])
    packets = _dissect(_pcap(tmp_path / "bad.pcap", [_udp(good, 40003, 4713), _udp(bad, 40003, 4713)]))
    assert packets[0].show("synphasor.checksum.status") == "1"
    assert packets[1].show("synphasor.checksum.status") == "0"  # Bad
    assert any("checksum" in e.lower() for e in packets[1].experts), packets[1].experts


def test_dissector_reads_our_cfg3_frame_with_long_names(tmp_path):
    """Wireshark's own CFG-3 dissector (an independent reading of C37.118.2-2011 Table 11)."""
    from test_c37118_cfg3 import LONG_STATION, LONG_V, _long_config

    raw = encode_config3(_long_config(), SOC, 11)
    (d,) = _dissect(_pcap(tmp_path / "cfg3.pcap", [_udp(raw, 40004, 4713)]))
    _common(d, "Configuration Frame 3", 9, SOC, 11)
    assert d.show("synphasor.conf.contindx") == "0" and d.show("synphasor.conf.numpmu") == "2"
    assert [s for s, _n, _v in d.fields["synphasor.station_name"]] == [LONG_STATION, "B"]
    names = [s for s, _n, _v in d.fields["synphasor.conf.chnam"]]
    assert [names[0], names[2]] == [LONG_V, "Transformer top-oil temperature"]
    ascii_part = "Line 3 current, phase A, "  # then ÄÖ: 4 UTF-8 bytes, which tshark 4.0 shows byte by byte
    assert names[1].startswith(ascii_part) and len(names[1]) == len(ascii_part) + 4
    assert names[3:5] == ["breaker 0 closed", "breaker 1 closed"]
    assert [float(s) for s, _n, _v in d.fields["synphasor.conf.phasor_scale_factor"]] == [0.125, 0.25]
    assert float(d.show("synphasor.conf.phasor_angle_offset")) == 0.5
    assert (float(d.show("synphasor.conf.analog_scale_factor")), float(d.show("synphasor.conf.analog_offset"))) == (
        0.5, -40.0
    )  # fmt: skip
    assert (float(d.show("synphasor.conf.pmu_latitude")), float(d.show("synphasor.conf.pmu_longitude"))) == (
        -33.25, 151.0
    )  # fmt: skip
    assert float(d.show("synphasor.conf.pmu_elevation")) == 12.5
    assert d.fields["synphasor.conf.svc_class"][0][1] == "Service class: Protection"
    assert (int(d.show("synphasor.conf.window")), int(d.show("synphasor.conf.grp_dly"))) == (40_000, 20_000)
    assert int(d.show("synphasor.conf.cfgcnt")) == 4 and d.show("synphasor.rate_of_transmission") == "-5"
