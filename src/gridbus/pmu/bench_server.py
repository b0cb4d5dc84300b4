"""The C37.118 leg of the vPMU benchmark: estimated frames served to a PDC over TCP.

Issue 13 counts vPMUs per core "through estimation and the C37.118 server".  Here the
group's PMUs are one multi-PMU stream (NUM_PMU = the group's size, each PMU block 3 V +
3 I float polar phasors, as a vPMU host or the gateway server sends to a PDC): every
frame is encoded by :class:`~gridbus.synchrophasor.server.GatewayServer` and sent to one
TCP client in this process, a thread that asks for CFG-2, sends START and counts the data
frames it reads.  ``per_core`` divides by the whole process's CPU time, so it includes
the client's decoding (conservative); the client's own thread CPU is reported apart.
"""

from __future__ import annotations

import math
import socket
import threading
import time

import numpy as np

from ..c37time import to_soc_fracsec
from ..errors import GridbusError
from ..synchrophasor.command import Command, encode_command
from ..synchrophasor.config import PhasorChannel, PmuConfig, StreamConfig
from ..synchrophasor.data import DataFrame, PmuData
from ..synchrophasor.frame import FrameSplitter, FrameType
from ..synchrophasor.server import GatewayServer
from .estimator import Estimate
from .frames import PHASOR_KINDS, PHASOR_NAMES

STREAM_IDCODE = 1
TIME_BASE = 1_000_000


class PdcCounter:
    """A bare PDC on 127.0.0.1: CFG-2, START, then counts data frames until told to stop."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.sock.settimeout(0.2)
        self.frames = 0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-pdc", daemon=True)

    def start(self) -> PdcCounter:
        self.sock.sendall(encode_command(STREAM_IDCODE, Command.SEND_CFG2))
        self.sock.sendall(encode_command(STREAM_IDCODE, Command.START))
        self._thread.start()
        return self

    def _run(self) -> None:
        splitter = FrameSplitter()
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            splitter.feed(data)
            self.frames += sum(
                1 for f in splitter.frames() if not isinstance(f, Exception) and f.type is FrameType.DATA
            )
        self.cpu_s = time.thread_time()

    def finish(self, expected: int, timeout: float = 10.0) -> None:
        """Wait (bounded) until ``expected`` frames came, then stop and close."""
        deadline = time.monotonic() + timeout
        while self.frames < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.sock.close()


def bench_stream(pmus: int, f0: float, rate: float) -> StreamConfig:
    """The multi-PMU stream the benchmark serves."""
    channels = [PhasorChannel(p, k == "CURRENT") for p, k in zip(PHASOR_NAMES, PHASOR_KINDS, strict=True)]
    blocks = [PmuConfig(f"bench{n}", n + 1, list(channels), f_nominal=f0) for n in range(pmus)]
    return StreamConfig(STREAM_IDCODE, blocks, TIME_BASE, round(rate))


class BenchServer:
    """A gateway server with one started PDC client, fed estimates frame by frame."""

    def __init__(self, pmus: int, f0: float, rate: float) -> None:
        self.server = GatewayServer("127.0.0.1", 0, STREAM_IDCODE).start()
        self.server.set_config(bench_stream(pmus, f0, rate))
        self.client = PdcCounter(self.server.port).start()
        self.pmus, self.sent = pmus, 0  # data frames the server sent, the START probe excluded
        deadline = time.monotonic() + 10.0
        started = self._started()
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
            started = self._started()
        if not started:
            self.close()
            raise GridbusError("vPMU benchmark: the C37.118 client did not START within 10 s")

    def _started(self) -> bool:
        """Sends a filler frame (all PMUs data-invalid) once the client has STARTed: the probe."""
        nan6 = [math.nan] * len(PHASOR_NAMES)
        probe = DataFrame(STREAM_IDCODE, 0, 0, [PmuData(0, nan6, nan6, math.nan, math.nan, [], [])] * self.pmus)
        return self.server.clients == 1 and self.server.publish(probe) == 1

    def serve(self, when: float, est: Estimate, n: int) -> None:
        """Encode and send frame ``n`` of ``est`` (measurement time ``when``, UTC)."""
        soc, frac = to_soc_fracsec(when, TIME_BASE)
        phasors = est.phasors[:, n]
        mags, angles = np.abs(phasors).tolist(), np.angle(phasors).tolist()
        freq, rocof = est.freq[:, n].tolist(), est.rocof[:, n].tolist()
        blocks = [PmuData(0, mags[p], angles[p], freq[p], rocof[p], [], []) for p in range(self.pmus)]
        self.sent += self.server.publish(DataFrame(STREAM_IDCODE, soc, frac, blocks))

    def close(self) -> int:
        """Data frames the client counted, the probe excluded (after waiting, bounded, for all)."""
        self.client.finish(self.sent + 1)
        self.server.close()
        return max(0, self.client.frames - 1)
