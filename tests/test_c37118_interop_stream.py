"""C37.118.2 streams against an independent implementation: pypmu (PyPI ``synchrophasor`` 1.0.0a0).

A pypmu ``Pmu`` server (its own process) streams to ``gridbus pmu gateway --connect``: the
bus shows its values at its measurement times.  ``gridbus pmu gateway --serve`` streams the
bus's PMUs to a pypmu ``Pdc`` client: it reads the header, CFG-2 and data frames and gets
the values published.  Where pypmu deviates from the standard (test_c37118_interop.py lists
how), the tests say so and check the standard's values.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import ModuleType

import pytest
from pypmu_compat import PYPMU_SERVER, pypmu_frame

from gridbus import Bus
from gridbus.c37time import to_soc_fracsec

SOC = 1_700_000_000

# two streams: one PMU polar float (FREQ int16); two PMUs (NUM_PMU 2) rect int16 at 60 Hz and polar int16
STREAMS = {
    "one": {"formats": [0b0111], "fnom": [50]},
    "two": {"formats": [0b0000, 0b0001], "fnom": [60, 50]},
}


def _pypmu_stream(name: str) -> tuple[list, list[dict]]:
    """ConfigFrame2's arguments for pypmu and, per PMU, what the bus should show (gridbus's terms)."""
    formats, fnom = STREAMS[name]["formats"], STREAMS[name]["fnom"]
    n = len(formats)
    ids = [70 + i for i in range(n)]
    per = {
        "stn": [f"PYPMU {i}" for i in ids],
        "names": [["VA", "IA", "P"] + [f"B{j}" for j in range(16)] for _ in ids],
        "ph": [[[10_000, "v"], [1_000, "i"]] for _ in ids],
        "an": [[[100_000, "rms"]] for _ in ids],
        "dg": [[[0, 0xFFFF]] for _ in ids],
    }

    def one(values: list) -> object:
        return values if n > 1 else values[0]

    cfg = [7, 1_000_000, n, one(per["stn"]), one(ids), one(formats), one([2] * n), one([1] * n), one([1] * n)]
    cfg += [one(per["names"]), one(per["ph"]), one(per["an"]), one(per["dg"]), one(fnom), one([1] * n), 50]
    pmus = [{"id": f"PMU_{i}", "idcode": i, "fmt": f, "fnom": fn} for i, f, fn in zip(ids, formats, fnom, strict=True)]
    return cfg, pmus


def _pypmu_values(pmu: dict, k: int) -> tuple[list, dict]:
    """One PMU block as pypmu takes it (wire counts for int16) and the values gridbus should read."""
    fmt, j = pmu["fmt"], k + pmu["idcode"] % 10
    mag, ang = [230.0 + j, 12.5], [0.25 * (j % 5), -2.5]
    if fmt & 2:
        phasors = [[m, a] for m, a in zip(mag, ang, strict=True)]
    elif fmt & 1:
        phasors = [[round(m / s), round(a * 1e4)] for m, a, s in zip(mag, ang, (0.1, 0.01), strict=True)]
    else:
        phasors = [
            [round(m * math.cos(a) / s), round(m * math.sin(a) / s)]
            for m, a, s in zip(mag, ang, (0.1, 0.01), strict=True)
        ]
    analog = [100.5 + j] if fmt & 4 else [100 + j]
    freq_mhz, rocof_centi = 20 + j, -25
    want = {
        "magnitude": mag,
        "angle": ang,
        "freq": pmu["fnom"] + freq_mhz / 1000,
        "rocof": rocof_centi / 100,
        "analog": [float(a) for a in analog],
        "digital": [0x0A00 + j],
    }
    return [phasors, freq_mhz, rocof_centi, analog, want["digital"]], want


def _frame_line(pmus: list[dict], k: int, soc: int, frasec: int) -> tuple[str, list[dict]]:
    blocks, wants = zip(*(_pypmu_values(p, k) for p in pmus), strict=True)
    columns = list(zip(*blocks, strict=True))  # phasors, freq, dfreq, analog, digital: one list per PMU
    multi = len(pmus) > 1
    row = [[0] * len(pmus) if multi else 0] + [list(c) if multi else c[0] for c in columns] + [soc, frasec]
    return json.dumps(row) + "\n", list(wants)


@pytest.mark.integration
@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_gateway_reads_a_pypmu_pmu_onto_the_bus(monkeypatch, domain, partition, env, tmp_path, stream):
    pypmu_frame(monkeypatch)  # skips without pypmu
    cfg, pmus = _pypmu_stream(stream)
    procs: list[subprocess.Popen] = []
    with open(tmp_path / "pypmu.log", "w") as log, Bus(domain, partition=partition) as bus:
        configs, measurements = bus.reader("PMU", "Config"), bus.reader("PMU")
        try:
            server = subprocess.Popen(
                [sys.executable, "-c", PYPMU_SERVER, json.dumps({"cfg": cfg})], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
            )  # fmt: skip
            procs.append(server)
            port = json.loads(server.stdout.readline())["port"]
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gridbus.cli.main", "pmu", "gateway", "--connect", f"127.0.0.1:{port}",
                 "--idcode", "7", "--partition", partition], stdout=subprocess.PIPE, stderr=log, text=True, env=env,
            )  # fmt: skip
            procs.append(gateway)
            assert gateway.stdout.readline().startswith('{"ready"'), (tmp_path / "pypmu.log").read_text()
            seen: dict = {}
            _wait(lambda: seen.update({s.id: s for s in configs.take(0.1)}) or len(seen) == len(pmus))
            for pmu in pmus:
                label = seen[pmu["id"]]
                assert (label.idcode, label.station, label.f_nominal, label.data_rate) == (
                    pmu["idcode"], f"PYPMU {pmu['idcode']}", pmu["fnom"], 50
                )  # fmt: skip
                assert list(label.phasor_names) == ["VA", "IA"] and list(label.analog_units) == ["RMS"]
                assert [getattr(k, "name", k) for k in label.phasor_kinds] == ["VOLTAGE", "CURRENT"]
            # warm up until the gateway's measurement writers match our reader, then the frames to check
            warm = iter(range(1, 200))
            _wait(lambda: _send(server, _frame_line(pmus, 0, SOC, next(warm) * 1000)[0]) or measurements.take(0.1))
            got: dict[tuple[str, int], object] = {}
            wants = {}
            for k in range(4):
                line, want = _frame_line(pmus, k, SOC + 10, 100_000 * (k + 1))
                _send(server, line)
                wants |= {(p["id"], 100_000 * (k + 1)): w for p, w in zip(pmus, want, strict=True)}
            _wait(lambda: got.update({(s.id, s.fracsec): s for s in measurements.take(0.1) if s.soc == SOC + 10})
                  or len(got) == len(wants))  # fmt: skip
        finally:
            os.killpg(procs[0].pid, signal.SIGKILL)  # pypmu's client process spins on a closed socket: its session
            procs[0].wait(10)
            codes = [_end(proc) for proc in procs[1:]]
    assert codes == [0]  # the gateway ended cleanly on SIGTERM
    for (oid, frac), want in wants.items():
        sample = got[(oid, frac)]
        assert sample.source_time == pytest.approx(SOC + 10 + frac / 1e6, abs=1e-6)  # measurement time, UTC
        assert (sample.stat, sample.time_quality) == (0, 0)
        assert list(sample.magnitude) == pytest.approx(want["magnitude"], abs=0.08)  # rect int16: re, im +-0.05
        assert list(sample.angle) == pytest.approx(want["angle"], abs=2e-3)
        assert (sample.freq, sample.rocof) == pytest.approx((want["freq"], want["rocof"]), abs=1e-4)
        assert list(sample.analog) == pytest.approx(want["analog"], abs=1e-4)
        assert list(sample.digital) == want["digital"]


def _end(proc: subprocess.Popen) -> int:
    """SIGTERM, then the exit code; killed (and the test failed) if it does not end."""
    proc.terminate()
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise


def _send(proc: subprocess.Popen, line: str) -> None:
    proc.stdin.write(line)
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["queued"] >= 1  # a client (the gateway) is connected


def _wait(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")


# --- gridbus pmu gateway --serve -> a pypmu Pdc client --------------------------------------------


def _publish_set(bus: Bus, k: int, float_freq: bool) -> float:
    """Both PMUs at one measurement time; returns it.  pypmu decodes no float FREQ above 32.767
    (deviation 2): with a float FREQ the test publishes a small one."""
    soc, frac = to_soc_fracsec(time.time(), 1_000_000)
    for i in (1, 2):
        bus.writer(f"PMU_{i}").write(
            timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac, stat=0, magnitude=[100.0 * i + k, 5.5],
            angle=[0.5 * i, -2.5], freq=(0.0 if float_freq else 50.0) + 0.013 * (k % 50), rocof=0.25 * i,
            analog=[12.5 + k], digital=[],
        )  # fmt: skip
    return soc + frac / 1e6


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["polar,float", "polar,int", "rect,int", "rect,float"])
def test_pypmu_pdc_reads_the_gateway_server(monkeypatch, domain, partition, env, tmp_path, fmt):
    pf = pypmu_frame(monkeypatch)
    from synchrophasor.pdc import Pdc

    floats = fmt.endswith("float")
    with Bus(domain, partition=partition) as bus, open(tmp_path / "gateway.log", "w") as log:
        for i in (1, 2):
            bus.writer(f"PMU_{i}", "Config").write(
                idcode=i, station=f"ST{i}", time_base=1_000_000, f_nominal=50.0, data_rate=50, cfgcnt=1,
                phasor_names=["VA", "IA"], phasor_kinds=["VOLTAGE", "CURRENT"], analog_names=["P"],
                analog_units=["RMS"],
            )  # fmt: skip
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gridbus.cli.main", "pmu", "gateway", "--serve", "127.0.0.1:0", "--pmu", "PMU_1",
             "--pmu", "PMU_2", "--idcode", "5", "--format", fmt, "--volts-per-bit", "0.1", "--amps-per-bit", "0.01",
             "--analog-per-bit", "0.5", "--partition", partition], stdout=subprocess.PIPE, stderr=log, text=True,
            env=env,
        )  # fmt: skip
        try:
            port = json.loads(gateway.stdout.readline())["ready"]["port"]
            # buffer_size 4: pypmu's Pdc.get() takes one recv() for at most one frame (pdc.py:129)
            pdc = Pdc(pdc_id=5, pmu_ip="127.0.0.1", pmu_port=port, buffer_size=4)
            pdc.run()
            pdc.pmu_socket.settimeout(10)
            assert "gridbus C37.118.2 gateway" in pdc.get_header().get_header()
            pcfg = pdc.get_config()
            assert isinstance(pcfg, pf.ConfigFrame2) and pcfg.get_id_code() == 5 and pcfg.get_num_pmu() == 2
            assert pcfg.get_stream_id_code() == [1, 2] and [s.strip() for s in pcfg.get_station_name()] == [
                "ST1",
                "ST2",
            ]
            polar = fmt.startswith("polar")
            assert pcfg.get_data_format() == [(polar, floats, floats, floats)] * 2
            assert pcfg.get_ph_units() == [[(10_000, "v"), (1_000, "i")]] * 2
            assert pcfg.get_analog_units() == [[(50_000, "rms")]] * 2
            assert (pcfg.get_fnom(), pcfg.get_data_rate(), pcfg.get_time_base()) == ([50, 50], 50, 1_000_000)
            pdc.start()
            frames, sent = _pdc_frames(pdc, bus, floats, pf)
            pdc.quit()
        finally:
            code = _end(gateway)
    assert code == 0
    assert len(frames) >= 3
    for frame in frames:
        when = frame.get_soc() + frame.get_frasec()[0] / 1e6
        k = next(v for t, v in sent.items() if abs(t - when) < 1e-6)
        phasors = frame.get_phasors()
        assert [s[0] for s in frame.get_stat()] == ["ok", "ok"]
        for i in (1, 2):
            (mag_v, ang_v), (mag_i, ang_i) = phasors[i - 1]
            if polar and not floats:  # pypmu scales the angle by PHUNIT too (deviation 1): undo it
                ang_v, ang_i = ang_v / 0.1 * 1e-4, ang_i / 0.01 * 1e-4
            assert (mag_v, mag_i) == pytest.approx((100.0 * i + k, 5.5), abs=0.08)
            assert (ang_v, ang_i) == pytest.approx((0.5 * i, -2.5), abs=2e-3)
            freq, dfreq, (analog,) = frame.get_freq()[i - 1], frame.get_dfreq()[i - 1], frame.get_analog()[i - 1]
            if floats:  # the standard's float: Hz, Hz/s, the value
                assert (freq, dfreq, analog) == pytest.approx((0.013 * (k % 50), 0.25 * i, 12.5 + k), abs=1e-4)
            else:  # int16: mHz from nominal, ROCOF x 100, counts of 0.5
                assert (freq, dfreq, analog) == (round(13 * (k % 50)), round(25 * i), round((12.5 + k) / 0.5))


def _pdc_frames(pdc: object, bus: Bus, floats: bool, pf: ModuleType) -> tuple[list, dict[float, int]]:
    """Publish sets until pypmu's Pdc has read three data frames of them; bounded."""
    sent: dict[float, int] = {}
    frames: list = []
    pdc.pmu_socket.settimeout(0.2)  # type: ignore[attr-defined]
    for k in range(150):
        sent[_publish_set(bus, k, floats)] = k
        try:
            got = pdc.get()  # type: ignore[attr-defined]
        except TimeoutError:
            continue
        if got is None and not frames:
            # the first sets may miss a PMU the gateway's reader has not matched yet: its block then
            # holds the standard's "missing" values (NaN, 0x8000), which pypmu cannot decode (deviation 8)
            continue
        assert isinstance(got, pf.DataFrame), got  # None: pypmu could not decode it
        frames.append(got)
        if len(frames) == 3:
            break
    return frames, sent
