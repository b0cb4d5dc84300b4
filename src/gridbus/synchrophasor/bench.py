"""Benchmarks of the C37.118.2 gateway and of the synchrophasor path into the historian.

- ``client_rate``: a socket sends pre-encoded data frames as fast as TCP takes them; the
  gateway client decodes them and publishes every PMU block (frames/s into the bus).
- ``server_rate``: bus writers publish PMU_Measurement as fast as they can; the server side
  aligns, encodes and sends them; a socket reads them back (frames/s out of the bus).
- ``delay``: PMUs publish at ``rate`` frames/s -> gateway server -> gateway client (another
  partition) -> historian (SQLite) -> measurement time to database row, per PMU (the PMU
  seed's figure; its batch-1000 PDC adapter is the baseline, the goal is p99 <= 100 ms).

Every function returns a plain dict of figures.  Everything runs in one process, on
127.0.0.1 and the loopback DDS configuration; the figures include the GIL's share.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..bus import Bus
from ..c37time import to_soc_fracsec
from .adapter import WireFormat
from .client import GatewayClient
from .command import Command, encode_command
from .config import PhasorChannel, PmuConfig, StreamConfig, encode_config
from .data import DataFrame, PmuData, encode_data
from .frame import FrameSplitter, FrameType
from .pdc import Concentrator
from .server import GatewayServer
from .stream import StreamFeed

PHASORS = ("VA", "VB", "VC", "IA", "IB", "IC")  # the vPMU: 3 voltage and 3 current phasors


def _stream(pmus: int) -> StreamConfig:
    blocks = [
        PmuConfig(f"BENCH {i}", i, [PhasorChannel(n, n.startswith("I")) for n in PHASORS], f_nominal=50.0)
        for i in range(1, pmus + 1)
    ]
    return StreamConfig(1, blocks, 1_000_000, 50)


def _block(k: int) -> PmuData:
    return PmuData(0, [230.0] * 3 + [10.0] * 3, [0.0, -2.094, 2.094] * 2, 50.0 + k % 10 / 1000, 0.0, [], [])


def _config_fields(pmu: int) -> dict[str, Any]:
    kinds = ["CURRENT" if n.startswith("I") else "VOLTAGE" for n in PHASORS]
    return {"idcode": pmu, "station": f"BENCH {pmu}", "time_base": 1_000_000, "f_nominal": 50.0,
            "data_rate": 100, "cfgcnt": 1, "phasor_names": list(PHASORS), "phasor_kinds": kinds}  # fmt: skip


def client_rate(bus: Bus, seconds: float, pmus: int) -> dict[str, Any]:
    """Frames/s from TCP into the bus through the gateway client."""
    cfg = _stream(pmus)
    start = time.time()
    frames = []
    for k in range(1000):
        soc, frac = to_soc_fracsec(start + k / 100, cfg.time_base)
        frames.append(encode_data(cfg, DataFrame(1, soc, frac, [_block(k)] * pmus)))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()

    def pump() -> None:
        conn, _ = listener.accept()
        chunk = b"".join(frames)
        with conn, contextlib.suppress(OSError):  # the client leaves when its time is up
            conn.sendall(encode_config(cfg))
            while not stop.is_set():
                conn.sendall(chunk)

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    client = GatewayClient(bus, "127.0.0.1", listener.getsockname()[1], 1, link_id="LINK_bench-client")
    runner = threading.Thread(target=client.run, args=(seconds,))
    began = time.monotonic()
    runner.start()
    runner.join(seconds + 10)
    elapsed = time.monotonic() - began
    stop.set()
    listener.close()
    pumper.join(5)
    return {"frames_per_s": round(client.frames / elapsed, 1), "pmus_per_frame": pmus, "frames": client.frames,
            "errors": client.health.fields["errors"]}  # fmt: skip


def server_rate(bus: Bus, seconds: float, pmus: int) -> dict[str, Any]:
    """Frames/s from the bus out to a TCP client through the gateway server (aligned, encoded, sent)."""
    ids = [f"PMU_{i}" for i in range(1, pmus + 1)]
    for i, pid in enumerate(ids, start=1):
        bus.writer(pid, "Config").write(**_config_fields(i))
    server = GatewayServer("127.0.0.1", 0, 1).start()
    pdc = Concentrator(bus, ids, 0.2, pdc_id=None, feed=StreamFeed(server, WireFormat(), ids))
    stop = threading.Event()
    aligner = threading.Thread(target=pdc.run, args=(seconds + 5,))
    aligner.start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(encode_command(1, Command.START))
    writers = [bus.writer(pid) for pid in ids]
    block = _block(0)

    def publish() -> None:
        k = 0
        while not stop.is_set():
            soc, frac = to_soc_fracsec(time.time(), 1_000_000)
            for i, writer in enumerate(writers, start=1):
                writer.write(timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac,
                             magnitude=block.magnitude, angle=block.angle, freq=block.freq, rocof=0.0)  # fmt: skip
            k += 1
            if k % 50 == 0:
                time.sleep(0.0005)  # let the other threads in

    publisher = threading.Thread(target=publish)
    publisher.start()
    splitter, received, began = FrameSplitter(), 0, time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - began < seconds:
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            continue
        splitter.feed(data)
        received += sum(1 for f in splitter.frames() if not isinstance(f, Exception) and f.type is FrameType.DATA)
    elapsed = time.monotonic() - began
    stop.set()
    publisher.join(5)
    pdc.stop()
    aligner.join(10)
    sock.close()
    server.close()
    pdc.close()
    return {"frames_per_s": round(received / elapsed, 1), "pmus_per_frame": pmus, "frames": received}


def delay(
    domain: int | None, seconds: float, rate: int, pmus: int, batch: int = 10, flush: float = 0.02
) -> dict[str, Any]:
    """Measurement time -> SQLite row through server, client and historian, at ``rate`` frames/s.

    ``batch`` and ``flush`` are the recorder's rows per write and seconds between writes.
    """
    from ..historian.analysis import delays
    from ..historian.recorder import Recorder
    from ..historian.sinks import open_sink

    tag = f"c37bench-{os.getpid()}"
    ids = [f"PMU_{i}" for i in range(1, pmus + 1)]
    with (
        tempfile.TemporaryDirectory(prefix="gridbus-c37-") as tmp,
        Bus(domain, partition=f"{tag}-a") as near,
        Bus(domain, partition=f"{tag}-b") as far,
    ):
        db = str(Path(tmp) / "pmu.sqlite")
        for i, pid in enumerate(ids, start=1):
            near.writer(pid, "Config").write(**_config_fields(i) | {"data_rate": rate})
        server = GatewayServer("127.0.0.1", 0, 1).start()
        pdc = Concentrator(near, ids, 0.02, pdc_id=None, feed=StreamFeed(server, WireFormat(), ids))
        client = GatewayClient(far, "127.0.0.1", server.port, 1, link_id="LINK_bench-delay")
        recorder = Recorder(far, open_sink(db), ["PMU"], ["Measurement"], batch=batch, flush_interval=flush,
                            spool=Path(tmp) / "spool", commit_interval=0.01)  # fmt: skip
        threads = [
            threading.Thread(target=pdc.run, args=(seconds + 3,)),
            threading.Thread(target=client.run, args=(seconds + 2,)),
            threading.Thread(target=recorder.run, args=(seconds + 2.5,)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # connected, configured, started
        writers = [near.writer(pid) for pid in ids]
        block = _block(0)
        period, sent = 1.0 / rate, 0
        begin = math.ceil(time.time() * rate) / rate
        while sent < seconds * rate:
            due = begin + sent * period
            time.sleep(max(0.0, due - time.time()))
            soc, frac = to_soc_fracsec(due, 1_000_000)
            for i, writer in enumerate(writers, start=1):
                writer.write(timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac,
                             magnitude=block.magnitude, angle=block.angle, freq=block.freq, rocof=0.0)  # fmt: skip
            sent += 1
        for thread in threads:
            thread.join(15)
        server.close()
        pdc.close()
        per_pmu = delays(db, "PMU_Measurement", by_object=True)
    out: dict[str, Any] = {"rate": rate, "frames_sent": sent, "recorder_batch": batch, "recorder_flush_s": flush}
    for name, row in per_pmu.items():
        pid = name.split()[-1]
        out[pid] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items() if k != "_values"}
    return out


def run_benchmarks(
    domain: int | None, seconds: float, rate: int, pmus: int, record_defaults: bool = True
) -> dict[str, Any]:
    """All three, each on its own partitions; the delay also with ``gridbus record``'s defaults
    (batch 100, 1 s flush) when ``record_defaults``."""
    tag = f"c37bench-{os.getpid()}"
    with Bus(domain, partition=f"{tag}-client") as bus:
        into_bus = client_rate(bus, seconds, pmus)
    with Bus(domain, partition=f"{tag}-server") as bus:
        out_of_bus = server_rate(bus, seconds, pmus)
    out = {
        "gateway_client_tcp_to_bus": into_bus,
        "gateway_server_bus_to_tcp": out_of_bus,
        "measurement_to_sqlite_row_ms": delay(domain, seconds, rate, pmus),
    }
    if record_defaults:
        out["measurement_to_sqlite_row_ms_record_defaults"] = delay(domain, seconds, rate, pmus, 100, 1.0)
    return out
