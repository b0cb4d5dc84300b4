"""CFG-3 (IEEE C37.118.2-2011 Table 11): a frame written out field by field, round trips,
malformed frames, and the gateway client reading long channel names (or falling back to CFG-2)."""

from __future__ import annotations

import math
import socket
import struct
import threading
import time

import pytest

from gridbus import Bus, C37118Error
from gridbus.c37time import to_soc_fracsec
from gridbus.synchrophasor import (
    AnalogChannel,
    Command,
    DataFrame,
    DigitalWord,
    Frame,
    FrameSplitter,
    FrameType,
    PhasorChannel,
    PmuConfig,
    PmuData,
    PmuLocation,
    StreamConfig,
    crc_ccitt,
    decode_command,
    decode_config3,
    decode_frame,
    encode_config,
    encode_config3,
    encode_frame,
)
from gridbus.synchrophasor.client import GatewayClient
from gridbus.synchrophasor.server import GatewayServer

LONG_V = "Bus 7 voltage phase A, feeder north"  # 35 characters: CFG-2 keeps 16
LONG_STATION = "Feeder-7 Substation North"


def _name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes([len(raw)]) + raw


def _hand_written_cfg3() -> bytes:
    """One PMU, one phasor, one analog, one digital word, every field spelled out."""
    payload = b"".join(
        [
            bytes.fromhex("0000"),  # CONT_IDX 0: the only frame of this configuration
            bytes.fromhex("000F4240"),  # TIME_BASE 1 000 000 (flags byte 0)
            bytes.fromhex("0001"),  # NUM_PMU 1
            _name("Feeder-7 Substation"),  # STN: length byte 19, then UTF-8
            bytes.fromhex("0007"),  # IDCODE 7
            bytes(range(1, 17)),  # G_PMU_ID: 16 bytes 01..10
            bytes.fromhex("0001"),  # FORMAT: polar, int16 phasors, int16 analogs, int16 FREQ/DFREQ
            bytes.fromhex("0001"),  # PHNMR 1
            bytes.fromhex("0001"),  # ANNMR 1
            bytes.fromhex("0001"),  # DGNMR 1
            _name("Bus 7 voltage phase A"),  # CHNAM of the phasor (21 bytes)
            _name("Feeder active power"),  # CHNAM of the analog
            _name("Breaker 52A closed") + b"\x00" * 15,  # 16 digital names: bit 0, then 15 empty ones
            bytes.fromhex("0000"),  # PHSCALE flags: no modification
            bytes.fromhex("04"),  # PHSCALE type: bit 3 = 0 voltage, bits 2-0 = 100 phase A
            bytes.fromhex("00"),  # PHSCALE user byte
            bytes.fromhex("3F000000"),  # PHSCALE scale Y = 0.5 (float32)
            bytes.fromhex("BE800000"),  # PHSCALE angle offset = -0.25 rad
            bytes.fromhex("40000000"),  # ANSCALE scale M = 2.0
            bytes.fromhex("3FC00000"),  # ANSCALE offset B = 1.5
            bytes.fromhex("0000FFFF"),  # DIGUNIT: normal 0x0000, valid 0xFFFF
            bytes.fromhex("42360000"),  # PMU_LAT 45.5 degrees
            bytes.fromhex("C2930000"),  # PMU_LON -73.5 degrees
            bytes.fromhex("7F800000"),  # PMU_ELEV +infinity: unspecified
            b"P",  # SVC_CLASS
            bytes.fromhex("00004E20"),  # WINDOW 20 000 us
            bytes.fromhex("00002710"),  # GRP_DLY 10 000 us
            bytes.fromhex("0000"),  # FNOM bit 0 = 0: 60 Hz
            bytes.fromhex("0003"),  # CFGCNT 3
            bytes.fromhex("003C"),  # DATA_RATE 60 frames/s
        ]
    )
    size = 14 + len(payload) + 2
    head = bytes.fromhex("AA52") + struct.pack(">HHII", size, 7, 1_700_000_000, 0)  # SYNC: type 5, version 2
    return head + payload + struct.pack(">H", crc_ccitt(head + payload))


def test_hand_written_cfg3_frame_decodes_field_by_field():
    frame = decode_frame(_hand_written_cfg3())
    assert frame.type is FrameType.CFG3 and frame.version == 2
    cfg = decode_config3(frame)
    assert (cfg.idcode, cfg.time_base, cfg.data_rate, len(cfg.pmus)) == (7, 1_000_000, 60, 1)
    pmu = cfg.pmus[0]
    assert (pmu.station, pmu.idcode, pmu.f_nominal, pmu.cfgcnt) == ("Feeder-7 Substation", 7, 60.0, 3)
    assert (pmu.polar, pmu.phasor_float, pmu.analog_float, pmu.freq_float) == (True, False, False, False)
    (phasor,) = pmu.phasors
    assert (phasor.name, phasor.current, phasor.scale, phasor.angle_offset, phasor.component) == (
        "Bus 7 voltage phase A", False, 0.5, -0.25, 4
    )  # fmt: skip
    (analog,) = pmu.analogs
    assert (analog.name, analog.scale, analog.offset) == ("Feeder active power", 2.0, 1.5)
    (word,) = pmu.digitals
    assert word.names == ["Breaker 52A closed"] + [""] * 15 and (word.normal, word.valid) == (0, 0xFFFF)
    where = pmu.location
    assert where.g_pmu_id == bytes(range(1, 17)) and (where.latitude, where.longitude) == (45.5, -73.5)
    assert math.isinf(where.elevation) and where.svc_class == "P"
    assert (where.window, where.group_delay) == (20_000, 10_000)
    # and our encoder writes the same bytes back
    assert encode_config3(cfg, 1_700_000_000, 0) == _hand_written_cfg3()


def _long_config(idcode: int = 9) -> StreamConfig:
    pmu = PmuConfig(
        LONG_STATION,
        42,
        [PhasorChannel(LONG_V, False, 0.125, 0.5, 4), PhasorChannel("Line 3 current, phase A, ÄÖ", True, 0.25)],
        [AnalogChannel("Transformer top-oil temperature", 1, 0.5, -40.0)],
        [DigitalWord([f"breaker {n} closed" for n in range(16)], 0x00FF, 0xFFFF)],
        f_nominal=50.0,
        cfgcnt=4,
        phasor_float=False,
        location=PmuLocation(bytes(range(16)), -33.25, 151.0, 12.5, "P", 40_000, 20_000),
    )
    return StreamConfig(idcode, [pmu, PmuConfig("B", 43)], time_base=100_000, data_rate=-5)


def test_cfg3_round_trip_with_two_pmus():
    cfg = _long_config()
    assert decode_config3(decode_frame(encode_config3(cfg, 5, 6))) == cfg


def test_malformed_cfg3_frames_are_clear_errors():
    raw = _hand_written_cfg3()
    body = raw[14:-2]
    with pytest.raises(C37118Error, match="frame ends inside"):
        decode_config3(decode_frame(encode_frame(FrameType.CFG3, 7, 0, 0, body[:-20])))
    with pytest.raises(C37118Error, match="CONT_IDX 1"):
        decode_config3(decode_frame(encode_frame(FrameType.CFG3, 7, 0, 0, b"\x00\x01" + body[2:])))
    with pytest.raises(C37118Error, match="bytes after DATA_RATE"):
        decode_config3(decode_frame(encode_frame(FrameType.CFG3, 7, 0, 0, body + b"\x00")))
    with pytest.raises(C37118Error, match="expected a CFG-3"):
        decode_config3(decode_frame(encode_frame(FrameType.CFG2, 7, 0, 0, body)))


def _data_frame() -> DataFrame:
    soc, frac = to_soc_fracsec(time.time(), 100_000)
    return DataFrame(9, soc, frac, [PmuData(0, [230.0, 5.0], [0.1, -0.2], 50.0, 0.0, [20.0], [0x0F]), PmuData()])


def _read_over_tcp(domain: int, partition: str, cfg3: bool) -> tuple[object, object, GatewayClient]:
    server = GatewayServer("127.0.0.1", 0, 9, cfg3=cfg3).start()
    try:
        server.set_config(_long_config())
        with Bus(domain, partition=partition) as bus:
            configs, measurements = bus.reader("PMU_42", "Config"), bus.reader("PMU_42", "Measurement")
            client = GatewayClient(bus, "127.0.0.1", server.port, 9, backoff=(0.05, 0.2))
            runner = threading.Thread(target=client.run, args=(30.0,))
            runner.start()
            try:
                deadline = time.monotonic() + 15
                while not server.publish(_data_frame()) and time.monotonic() < deadline:
                    time.sleep(0.05)  # until the client has read a configuration and sent START
                return configs.take_one(timeout=10), measurements.take_one(timeout=10), client
            finally:
                client.stop()
                runner.join(10)
    finally:
        server.close()


@pytest.mark.integration
def test_client_reads_long_channel_names_from_cfg3(domain, partition):
    config, measurement, client = _read_over_tcp(domain, partition, cfg3=True)
    assert client.cfg3_offered is True
    assert config is not None and config.station == LONG_STATION and config.cfgcnt == 4
    assert list(config.phasor_names) == [LONG_V, "Line 3 current, phase A, ÄÖ"]
    assert list(config.analog_names) == ["Transformer top-oil temperature"]
    assert list(config.digital_names)[:2] == ["breaker 0 closed", "breaker 1 closed"]
    assert measurement is not None and list(measurement.magnitude) == pytest.approx([230.0, 5.0], abs=0.25)


@pytest.mark.integration
def test_client_falls_back_to_cfg2_when_the_pmu_ignores_cfg3(domain, partition):
    config, measurement, client = _read_over_tcp(domain, partition, cfg3=False)
    assert client.cfg3_offered is False
    assert config is not None and list(config.phasor_names)[0] == LONG_V[:16] and config.station == LONG_STATION[:16]
    assert measurement is not None and list(measurement.magnitude) == pytest.approx([230.0, 5.0], abs=0.25)


def _answer(conn: socket.socket, cfg: StreamConfig, seen: list[str]) -> None:
    """One connection: CFG-2 on CMD 5, hang up on CMD 6 or when the client closes (bounded by its timeout)."""
    conn.settimeout(10)
    splitter = FrameSplitter()
    for data in iter(lambda: conn.recv(4096), b""):
        splitter.feed(data)
        commands = [decode_command(f)[0] for f in splitter.frames() if isinstance(f, Frame)]
        seen.extend(c.name for c in commands)
        if Command.SEND_CFG3 in commands:
            return
        if Command.SEND_CFG2 in commands:
            conn.sendall(encode_config(cfg))


def _pmu_that_hangs_up_on_cfg3(cfg: StreamConfig, stop: threading.Event) -> tuple[int, threading.Thread, list[str]]:
    """A PMU that closes the connection when asked for CFG-3 (as pypmu 1.0.0a0 does) and answers CFG-2."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    seen: list[str] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                _answer(conn, cfg, seen)
        listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    return listener.getsockname()[1], thread, seen


@pytest.mark.integration
def test_client_reads_cfg2_after_a_pmu_hung_up_on_cfg3(domain, partition):
    stop = threading.Event()
    port, thread, seen = _pmu_that_hangs_up_on_cfg3(_long_config(), stop)
    try:
        with Bus(domain, partition=partition) as bus:
            configs = bus.reader("PMU_42", "Config")
            client = GatewayClient(bus, "127.0.0.1", port, 9, backoff=(0.05, 0.2))
            runner = threading.Thread(target=client.run, args=(20.0,))
            runner.start()
            try:
                config = configs.take_one(timeout=15)
            finally:
                client.stop()
                runner.join(10)
    finally:
        stop.set()
        thread.join(10)
    assert config is not None and list(config.phasor_names)[0] == LONG_V[:16]
    assert seen.count("SEND_CFG3") == 1 and "SEND_CFG2" in seen and client.cfg3_offered is False
