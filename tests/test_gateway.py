"""The C37.118.2 gateway, both sides, over real TCP sockets on 127.0.0.1 and a real bus."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from gridbus import Bus
from gridbus.c37time import to_soc_fracsec
from gridbus.synchrophasor import (
    Command,
    DataFrame,
    FrameSplitter,
    FrameType,
    PhasorChannel,
    PmuConfig,
    PmuData,
    StreamConfig,
    crc_ccitt,
    decode_config,
    decode_config3,
    decode_data,
    decode_frame,
    encode_command,
    encode_config,
    encode_data,
    encode_frame,
)
from gridbus.synchrophasor.adapter import WireFormat
from gridbus.synchrophasor.client import GatewayClient
from gridbus.synchrophasor.frame import Frame
from gridbus.synchrophasor.pdc import Concentrator
from gridbus.synchrophasor.server import GatewayServer
from gridbus.synchrophasor.stream import StreamFeed


def _wait(
    condition: Callable[[], object],
    timeout: float = 10.0,
    step: Callable[[], None] | None = None,
    required: bool = True,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if not required:
                return
            raise AssertionError("condition not met in time")
        (step or (lambda: time.sleep(0.02)))()


class PdcSocket:
    """A bare C37.118.2 client (what a PDC does), to check the server byte for byte."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(5)
        self.splitter = FrameSplitter()
        self.queue: list[Frame] = []

    def send(self, idcode: int, command: Command) -> None:
        self.sock.sendall(encode_command(idcode, command))

    def next(self, kind: FrameType | None = None) -> Frame:
        """The next frame (of ``kind``), skipping others; fails after the socket's timeout."""
        while True:
            while self.queue:
                frame = self.queue.pop(0)
                if kind is None or frame.type is kind:
                    return frame
            data = self.sock.recv(65536)
            assert data, "server closed the connection"
            self.splitter.feed(data)
            for item in self.splitter.frames():
                assert isinstance(item, Frame), item
                self.queue.append(item)

    def close(self) -> None:
        self.sock.close()


def _publish_configs(bus: Bus) -> None:
    for i in (1, 2):
        bus.writer(f"PMU_{i}", "Config").write(
            idcode=i, station=f"ST{i}", time_base=1_000_000, f_nominal=50.0, data_rate=50, cfgcnt=1,
            phasor_names=["VA", "IA"], phasor_kinds=["VOLTAGE", "CURRENT"], analog_names=["P"], analog_units=["RMS"],
        )  # fmt: skip


@contextmanager
def _serving(bus: Bus, fmt: WireFormat) -> Iterator[tuple[GatewayServer, Concentrator, list[str]]]:
    errors: list[str] = []
    server = GatewayServer("127.0.0.1", 0, 5, on_error=lambda e: errors.append(str(e))).start()
    feed = StreamFeed(server, fmt, ["PMU_1", "PMU_2"])
    pdc = Concentrator(bus, ["PMU_1", "PMU_2"], 0.05, pdc_id=None, feed=feed)
    runner = threading.Thread(target=pdc.run, args=(40.0,))
    runner.start()
    try:
        yield server, pdc, errors
    finally:
        pdc.stop()
        runner.join(10)
        server.close()
        pdc.close()


def _write_both(bus: Bus, k: int) -> float:
    soc, frac = to_soc_fracsec(time.time(), 1_000_000)
    for i in (1, 2):
        bus.writer(f"PMU_{i}").write(
            timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac, magnitude=[100.0 * i, 5.0],
            angle=[0.5 * i, -1.0], freq=50.0 + k / 100, rocof=0.2, analog=[12.5], digital=[],
        )  # fmt: skip
    return soc + frac / 1e6


@pytest.mark.integration
def test_server_answers_commands_and_streams_the_bus_pmus(domain, partition):
    """Header, CFG-1, CFG-2 (NUM_PMU 2, rect int16 as asked), START, data aligned by time, STOP."""
    with Bus(domain, partition=partition) as bus:
        _publish_configs(bus)
        with _serving(bus, WireFormat.parse("rect,int", volts_per_bit=0.01, amps_per_bit=0.001)) as (
            server,
            pdc,
            errors,
        ):
            _wait(lambda: server.config is not None)
            pdc_socket = PdcSocket(server.port)
            try:
                pdc_socket.send(5, Command.SEND_HEADER)
                assert b"gridbus" in pdc_socket.next(FrameType.HEADER).payload
                pdc_socket.send(5, Command.SEND_CFG1)
                assert pdc_socket.next().type is FrameType.CFG1
                pdc_socket.send(5, Command.SEND_CFG2)
                cfg = decode_config(pdc_socket.next(FrameType.CFG2))
                assert cfg.idcode == 5 and [p.station for p in cfg.pmus] == ["ST1", "ST2"]
                assert [p.idcode for p in cfg.pmus] == [1, 2] and cfg.data_rate == 50
                pmu = cfg.pmus[0]
                assert (pmu.polar, pmu.phasor_float, pmu.freq_float) == (False, False, False)
                assert [(c.name, c.current, c.scale) for c in pmu.phasors] == [
                    ("VA", False, pytest.approx(0.01)), ("IA", True, pytest.approx(0.001))
                ]  # fmt: skip
                pdc_socket.send(5, Command.SEND_CFG3)  # CFG-3: the same PMUs, names length-prefixed
                cfg3 = decode_config3(pdc_socket.next(FrameType.CFG3))
                assert [p.station for p in cfg3.pmus] == ["ST1", "ST2"] and cfg3.data_rate == 50
                assert [c.name for c in cfg3.pmus[0].phasors] == ["VA", "IA"]
                pdc_socket.send(5, Command.EXTENDED)  # not supported: refused, counted, no reply
                pdc_socket.send(7, Command.START)  # another stream's IDCODE: refused
                pdc_socket.send(5, Command.START)
                sent: dict[float, int] = {}
                frame = None
                for k in range(200):
                    sent[_write_both(bus, k)] = k
                    pdc_socket.sock.settimeout(0.05)
                    try:
                        frame = pdc_socket.next(FrameType.DATA)
                        break
                    except TimeoutError:
                        continue
                assert frame is not None
                data = decode_data(cfg, frame)
                t = frame.soc + frame.fracsec / 1e6
                k = next(v for when, v in sent.items() if abs(when - t) < 1e-6)
                for i, block in enumerate(data.pmus, start=1):
                    assert block.stat == 0
                    assert block.magnitude == pytest.approx([100.0 * i, 5.0], abs=0.02)
                    assert block.angle == pytest.approx([0.5 * i, -1.0], abs=1e-3)
                    assert block.freq == pytest.approx(50.0 + k / 100, abs=1e-3)
                    assert block.analog == pytest.approx([12.5], abs=0.01)
                assert any("EXTENDED not supported" in e for e in errors)
                assert any("START to IDCODE 7" in e for e in errors)
                # STOP: frames sent after the server took it are none
                pdc_socket.sock.settimeout(5)
                pdc_socket.send(5, Command.STOP)
                pdc_socket.send(5, Command.SEND_HEADER)
                pdc_socket.next(FrameType.HEADER)  # STOP was handled before this
                before = pdc.feed.sent if pdc.feed else 0
                _wait(lambda: (pdc.feed.sent if pdc.feed else 0) > before + 3, step=lambda: _write_both(bus, 0))
                pdc_socket.send(5, Command.SEND_HEADER)
                assert pdc_socket.next().type is FrameType.HEADER  # no data frame in between
            finally:
                pdc_socket.close()


def _stream(cfgcnt: int, phasors: int) -> StreamConfig:
    channels = [PhasorChannel(f"V{n}", False, 0.01) for n in range(phasors)]
    pmu = PmuConfig("REMOTE", 42, channels, f_nominal=60.0, cfgcnt=cfgcnt, polar=True, phasor_float=False)
    return StreamConfig(9, [pmu], time_base=1_000_000, data_rate=30)


def _frame(k: int, phasors: int, stat: int = 0) -> DataFrame:
    soc, frac = to_soc_fracsec(time.time(), 1_000_000)
    block = PmuData(stat, [120.0 + n for n in range(phasors)], [0.25] * phasors, 60.0 + k / 1000, -0.5, [], [])
    return DataFrame(9, soc, frac, [block])


@contextmanager
def _client(bus: Bus, port: int, **kw: object) -> Iterator[GatewayClient]:
    client = GatewayClient(bus, "127.0.0.1", port, 9, backoff=(0.05, 0.2), **kw)  # type: ignore[arg-type]
    runner = threading.Thread(target=client.run, args=(40.0,))
    runner.start()
    try:
        yield client
    finally:
        client.stop()
        runner.join(10)


@pytest.mark.integration
def test_client_publishes_frames_with_their_measurement_time_and_follows_a_config_change(domain, partition):
    server = GatewayServer("127.0.0.1", 0, 9).start()
    server.set_config(_stream(cfgcnt=1, phasors=2))
    with Bus(domain, partition=partition) as bus, _client(bus, server.port, ids={42: "PMU_7"}) as client:
        measurements = bus.reader("PMU_7", "Measurement")
        configs = bus.reader("PMU_7", "Config")
        frame = _frame(1, 2)
        _wait(lambda: server.publish(frame))  # until the client has sent START
        sample = measurements.take_one(timeout=10)
        assert sample is not None and sample.idcode == 42
        assert sample.source_time == pytest.approx(frame.soc + frame.fracsec / 1e6, abs=1e-6)
        assert (sample.soc, sample.fracsec) == (frame.soc, frame.fracsec)
        assert list(sample.magnitude) == pytest.approx([120.0, 121.0], abs=0.01)
        assert list(sample.angle) == pytest.approx([0.25, 0.25], abs=1e-4)
        assert sample.freq == pytest.approx(60.001) and sample.rocof == pytest.approx(-0.5)
        cfg = configs.take_one(timeout=10)
        assert cfg is not None and cfg.cfgcnt == 1 and list(cfg.phasor_names) == ["V0", "V1"]
        assert cfg.f_nominal == 60.0 and cfg.data_rate == 30 and cfg.station == "REMOTE"
        # the PMU gets a third phasor: STAT bit 10 tells the client, which reads CFG-2 again
        server.set_config(_stream(cfgcnt=2, phasors=3))
        seen: list = []
        _wait(
            lambda: any(len(s.magnitude) == 3 for s in seen),
            step=lambda: (server.publish(_frame(2, 3)), seen.extend(measurements.take(0.05))),
        )
        new = configs.take_one(timeout=10)
        assert new is not None and new.cfgcnt == 2 and list(new.phasor_names) == ["V0", "V1", "V2"]
        assert client.health.fields["errors"] == 0 or "configuration changed" in client.health.fields["last_error"]
    server.close()


def _fake_pmu(cfg: StreamConfig, frames: list[bytes], stop: threading.Event) -> tuple[int, threading.Thread]:
    """A PMU that sends ``frames`` (good and bad) once a client asked for CFG-2, then idles."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        conn, _ = listener.accept()
        splitter = FrameSplitter()
        with conn:
            conn.settimeout(0.1)
            sent = False
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                splitter.feed(data)
                for item in splitter.frames():
                    if isinstance(item, Frame) and item.payload[:2] == b"\x00\x05" and not sent:
                        conn.sendall(b"".join(frames[:1]) + encode_config(cfg) + b"".join(frames[1:]))
                        sent = True
        listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.integration
def test_client_counts_malformed_frames_on_link_state_and_keeps_the_connection(domain, partition):
    cfg = _stream(cfgcnt=1, phasors=2)
    good = [encode_data(cfg, _frame(k, 2)) for k in range(3)]
    bad_crc = bytearray(good[0])
    bad_crc[-1] ^= 0x55
    unknown = bytes([0xAA, 0x72]) + good[0][2:-2]
    unknown += crc_ccitt(unknown).to_bytes(2, "big")
    wrong_size = encode_frame(FrameType.DATA, 9, 0, 0, b"\x00" * 10)  # fits no configuration
    late = _frame(9, 2)
    beyond = encode_data(cfg, DataFrame(9, late.soc, 1_000_000, late.pmus))  # FRACSEC = TIME_BASE: not a fraction
    frames = [good[0], bytes(bad_crc), unknown, b"\xaa\x02\x00\x05", wrong_size, beyond, *good]  # good[0]: no CFG yet
    stop = threading.Event()
    port, pmu = _fake_pmu(cfg, frames, stop)
    try:
        with Bus(domain, partition=partition) as bus:
            health = bus.reader("LINK_*", "State")
            measurements = bus.reader("PMU_42", "Measurement")
            with _client(bus, port, link_id="LINK_pmu-test") as client:
                got: list = []
                _wait(lambda: client.health.fields["errors"] >= 6, step=lambda: got.extend(measurements.take(0.1)))
                _wait(
                    lambda: len(got) >= 3, timeout=2.0, step=lambda: got.extend(measurements.take(0.1)), required=False
                )
                client.health.publish(force=True)
                states: list = []
                _wait(lambda: any(s.errors >= 6 for s in states), step=lambda: states.extend(health.take(0.2)))
            last = states[-1]
        # PMU_Measurement is best effort: on a loaded machine a frame may be lost, never reordered or invented
        sent = [decode_frame(g).fracsec for g in good]
        received = [s.fracsec for s in got]
        assert received and received == [f for f in sent if f in received], (received, sent)
        assert last.reconnects == 0 and last.errors >= 6
        text = client.health.fields
        assert "FRACSEC 1000000 is not below TIME_BASE 1000000" in text["last_error"]  # counted, never published
        assert text["port"] == f"tcp://127.0.0.1:{port}" and text["profile"] == "c37.118.2-client"
    finally:
        stop.set()
        pmu.join(10)


@pytest.mark.integration
def test_client_reconnects_after_the_server_drops(domain, partition):
    server = GatewayServer("127.0.0.1", 0, 9).start()
    port = server.port
    server.set_config(_stream(cfgcnt=1, phasors=1))
    with Bus(domain, partition=partition) as bus, _client(bus, port) as client:
        measurements = bus.reader("PMU_42", "Measurement")
        _wait(lambda: server.publish(_frame(0, 1)))
        assert measurements.take_one(timeout=10) is not None
        server.close()
        server = GatewayServer("127.0.0.1", port, 9).start()
        server.set_config(_stream(cfgcnt=1, phasors=1))
        _wait(lambda: server.publish(_frame(1, 1)))
        assert measurements.take_one(timeout=10) is not None
        _wait(lambda: client.health.fields["reconnects"] >= 1 and client.health.fields["connected"])
        assert math.isfinite(client.health.fields["poll_rate"])
    server.close()


@pytest.mark.integration
def test_pmu_bench_reports_rates_both_ways_and_the_delay_per_pmu(domain):
    """The benchmark's shape and sanity only: figures are printed, never asserted against a speed."""
    from gridbus.synchrophasor.bench import run_benchmarks

    out = run_benchmarks(domain, 0.5, 50, 2, record_defaults=False)
    into, out_of = out["gateway_client_tcp_to_bus"], out["gateway_server_bus_to_tcp"]
    assert into["frames"] > 0 and into["errors"] == 0 and into["frames_per_s"] > 0
    assert out_of["frames"] > 0 and out_of["pmus_per_frame"] == 2
    delay = out["measurement_to_sqlite_row_ms"]
    assert delay["frames_sent"] == 25 and set(delay) >= {"PMU_1", "PMU_2"}
    assert 0 < delay["PMU_1"]["count"] <= 25 and delay["PMU_1"]["p50_ms"] > 0


@pytest.mark.integration
def test_commanded_udp_client_and_server(domain, partition):
    """Commands by UDP to the server's port, frames back by UDP to the client's socket."""
    server = GatewayServer("127.0.0.1", 0, 9, udp=True).start()
    server.set_config(_stream(cfgcnt=1, phasors=2))
    try:
        with Bus(domain, partition=partition) as bus, _client(bus, server.port, udp=True) as client:
            measurements = bus.reader("PMU_42", "Measurement")
            frame = _frame(3, 2)
            _wait(lambda: server.publish(frame))
            sample = measurements.take_one(timeout=10)
            assert sample is not None and list(sample.magnitude) == pytest.approx([120.0, 121.0], abs=0.01)
            assert sample.source_time == pytest.approx(frame.soc + frame.fracsec / 1e6, abs=1e-6)
            assert client.health.fields["port"] == f"udp://127.0.0.1:{server.port}"
            assert client.health.fields["errors"] == 0
    finally:
        server.close()


def test_spontaneous_udp_sends_cfg2_then_data_unasked():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    server = GatewayServer("127.0.0.1", 0, 9, udp_to=[receiver.getsockname()], cfg_period=60).start()
    try:
        server.set_config(_stream(cfgcnt=1, phasors=2))
        for k in range(3):
            assert server.publish(_frame(k, 2)) == 1
        kinds = [decode_frame(receiver.recv(65536)) for _ in range(4)]
        assert [f.type for f in kinds] == [FrameType.CFG2, FrameType.DATA, FrameType.DATA, FrameType.DATA]
        cfg = decode_config(kinds[0])
        assert [decode_data(cfg, f).pmus[0].freq for f in kinds[1:]] == pytest.approx([60.0, 60.001, 60.002])
    finally:
        server.close()
        receiver.close()
