"""``gridbus pmu pdc --serve``: the aligned sets as one multi-PMU C37.118.2 stream, from the CLI."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.c37time import to_soc_fracsec
from gridbus.synchrophasor import Command, FrameSplitter, FrameType, decode_config, decode_data, encode_command
from gridbus.synchrophasor.frame import Frame


def _invalid(frame) -> bool:
    return bool(frame.pmus[1].stat & 0x8000)


def _after_complete(data: list):
    """The first set with PMU_2 missing after one with both PMUs (None yet)."""
    first = next((n for n, d in enumerate(data) if not _invalid(d)), None)
    return None if first is None else next((d for d in data[first + 1 :] if _invalid(d)), None)


@pytest.mark.integration
def test_pdc_serves_its_sets_with_a_missing_pmu_marked_invalid(domain, partition, env):
    pdc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "pmu", "pdc", "--pmu", "PMU_1", "--pmu", "PMU_2",
         "--window", "0.05", "--serve", "127.0.0.1:0", "--idcode", "11", "--partition", partition, "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        ready = json.loads(pdc.stdout.readline())["ready"]
        assert ready["pdc"] == "PDC_1" and ready["idcode"] == 11
        with Bus(domain, partition=partition) as bus:
            for i in (1, 2):
                bus.writer(f"PMU_{i}", "Config").write(
                    idcode=i, station=f"ST{i}", time_base=1_000_000, f_nominal=60.0, data_rate=30, cfgcnt=1,
                    phasor_names=["VA"], phasor_kinds=["VOLTAGE"],
                )  # fmt: skip
            sock = socket.create_connection(("127.0.0.1", ready["port"]), timeout=10)
            splitter, frames = FrameSplitter(), []
            sock.sendall(encode_command(11, Command.SEND_CFG2))
            while not any(f.type is FrameType.CFG2 for f in frames):
                splitter.feed(sock.recv(65536))
                frames += [f for f in splitter.frames() if isinstance(f, Frame)]
            cfg = decode_config(next(f for f in frames if f.type is FrameType.CFG2))
            assert [p.station for p in cfg.pmus] == ["ST1", "ST2"] and cfg.pmus[0].f_nominal == 60.0
            sock.sendall(encode_command(11, Command.START))
            sock.settimeout(0.05)
            data: list = []
            deadline = time.monotonic() + 15
            while not any(d.pmus[1].stat & 0x8000 for d in data[1:]) and time.monotonic() < deadline:
                soc, frac = to_soc_fracsec(time.time(), 1_000_000)
                both_seen = any(not d.pmus[1].stat & 0x8000 for d in data)
                for i in (1,) if both_seen else (1, 2):  # PMU_2 stops once a complete set came back
                    bus.writer(f"PMU_{i}").write(
                        timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac,
                        magnitude=[100.0 * i], angle=[0.1], freq=60.01, rocof=0.0,
                    )  # fmt: skip
                try:
                    splitter.feed(sock.recv(65536))
                except TimeoutError:
                    continue
                data += [
                    decode_data(cfg, f) for f in splitter.frames() if isinstance(f, Frame) and f.type is FrameType.DATA
                ]
            sock.close()
        complete = next(d for d in data if not _invalid(d))
        assert complete.pmus[1].magnitude == pytest.approx([200.0])
        missing = _after_complete(data)
        assert missing is not None
        assert missing.pmus[0].magnitude == pytest.approx([100.0]) and math.isnan(missing.pmus[1].freq)
    finally:
        pdc.terminate()
        pdc.communicate(timeout=20)
    assert pdc.returncode == 0
