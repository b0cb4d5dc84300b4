"""End to end: PMU publisher -> gateway --serve -> gateway --connect (another partition) -> PDC -> record.

Five processes on one DDS domain: the publisher and the serving gateway on partition A;
the connecting gateway, the PDC and the historian on partition B, so the only way a frame
reaches B is through the C37.118.2 TCP stream on 127.0.0.1.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from helpers import gridbus

from gridbus import Bus

PUBLISHER = r"""
import sys, time
from gridbus import Bus
from gridbus.c37time import to_soc_fracsec
domain, partition, frames, stop_2 = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with Bus(domain, partition=partition) as bus:
    for i in (1, 2):
        bus.writer(f"PMU_{i}", "Config").write(
            idcode=i, station=f"SUB {i}", time_base=1_000_000, f_nominal=50.0, data_rate=50, cfgcnt=1,
            phasor_names=["VA", "IA"], phasor_kinds=["VOLTAGE", "CURRENT"])
    writers = {i: bus.writer(f"PMU_{i}") for i in (1, 2)}
    print("ready", flush=True)
    sys.stdin.readline()  # go
    for k in range(frames):
        soc, frac = to_soc_fracsec(time.time(), 1_000_000)
        for i in (1, 2):
            if i == 2 and k >= stop_2:
                continue
            writers[i].write(timestamp=soc + frac / 1e6, idcode=i, soc=soc, fracsec=frac, stat=0,
                             magnitude=[1000.0 * i, float(k)], angle=[0.25 * i, -0.5], freq=50.0 + k / 10000,
                             rocof=0.1 * i)
        print(f"{k} {soc} {frac}", flush=True)
        time.sleep(0.02)
    time.sleep(0.5)
"""


def _start(args: list[str], env: dict) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    line = proc.stdout.readline()
    if not line.startswith('{"ready"'):
        proc.kill()
        raise AssertionError(f"gridbus {' '.join(args)} did not start: {line} {proc.stderr.read()}")
    return proc, json.loads(line)["ready"]


def _stop(proc: subprocess.Popen) -> dict:
    proc.terminate()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])["done"]


@pytest.mark.integration
def test_pmus_through_both_gateway_sides_pdc_and_historian(domain, tmp_path, env):
    near, far = "pmu-near", "pmu-far"
    db = tmp_path / "pmu.sqlite"
    procs: list[subprocess.Popen] = []
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(domain), near, "100", "50"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    procs.append(publisher)
    try:
        assert publisher.stdout.readline().strip() == "ready", publisher.stderr.read()
        server, ready = _start(["pmu", "gateway", "--serve", "127.0.0.1:0", "--pmu", "PMU_1", "--pmu", "PMU_2",
                                "--idcode", "3", "--format", "polar,int", "--partition", near], env)  # fmt: skip
        procs.append(server)
        port = ready["port"]
        record, _ = _start(["record", "PMU", "PDC", "--db", str(db), "--batch", "10", "--flush-interval", "0.1",
                            "--spool", str(tmp_path / "spool"), "--partition", far], env)  # fmt: skip
        procs.append(record)
        pdc, _ = _start(["pmu", "pdc", "--pmu", "PMU_1", "--pmu", "PMU_2", "--window", "0.2", "--id", "PDC_1",
                         "--partition", far], env)  # fmt: skip
        procs.append(pdc)
        client, ready = _start(["pmu", "gateway", "--connect", f"127.0.0.1:{port}", "--idcode", "3",
                                "--partition", far], env)  # fmt: skip
        procs.append(client)
        assert ready["link"] == f"LINK_127.0.0.1-{port}"
        with Bus(domain, partition=far) as bus:  # the far side has the configuration: the stream is up
            configs = bus.reader("PMU", "Config")
            seen: dict = {}
            deadline = time.monotonic() + 15
            while len(seen) < 2 and time.monotonic() < deadline:
                seen |= {s.id: s for s in configs.take(0.2)}
            assert sorted(seen) == ["PMU_1", "PMU_2"]
            assert list(seen["PMU_2"].phasor_names) == ["VA", "IA"] and seen["PMU_2"].station == "SUB 2"
            time.sleep(0.5)  # the far side's readers match the client's measurement writers
            publisher.stdin.write("go\n")
            publisher.stdin.flush()
            sent = [tuple(map(int, line.split())) for line in publisher.stdout]
        assert publisher.wait(timeout=20) == 0
        time.sleep(0.5)
        done_client = _stop(client)
        done_pdc = _stop(pdc)
        _stop(server)
        _stop(record)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert len(sent) == 100
    times = {k: soc + frac / 1e6 for k, soc, frac in sent}
    assert done_client["errors"] == 0 and done_client["frames"] >= 50
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT object_id, source_time, fields FROM samples WHERE topic = 'PMU_Measurement' ORDER BY source_time"
        ).fetchall()
        sets = [json.loads(f) for (f,) in conn.execute("SELECT fields FROM samples WHERE topic = 'PDC_Measurement'")]
        labels = dict(conn.execute("SELECT object_id, fields FROM samples WHERE topic = 'PMU_Config'").fetchall())
    assert json.loads(labels["PMU_1"])["phasor_kinds"] == ["VOLTAGE", "CURRENT"]  # the historian keeps the labels
    by_pmu: dict[str, list] = {"PMU_1": [], "PMU_2": []}
    for oid, source, fields in rows:
        by_pmu[oid].append((source, json.loads(fields)))
    # every PMU_1 frame that came through carries what was sent, at its measurement time
    assert len(by_pmu["PMU_1"]) >= 50
    for source, fields in by_pmu["PMU_1"]:
        k = round(fields["magnitude"][1])
        assert source == pytest.approx(times[k], abs=1e-6)
        assert fields["soc"] + fields["fracsec"] / 1e6 == pytest.approx(times[k], abs=1e-6)
        assert fields["magnitude"] == pytest.approx([1000.0, k], abs=0.1)  # int16 at 0.1 V per bit
        assert fields["angle"] == pytest.approx([0.25, -0.5], abs=1e-3)
        assert fields["freq"] == pytest.approx(50.0 + k / 10000, abs=1e-3)
    # PMU_2 stopped at frame 50: the stream's filler blocks are not published, the PDC's sets say MISSING
    assert by_pmu["PMU_2"] and all(round(f["magnitude"][1]) < 50 for _s, f in by_pmu["PMU_2"])
    assert all(f["stat"] == 0 and f["magnitude"][0] == pytest.approx(2000.0, abs=0.1) for _s, f in by_pmu["PMU_2"])
    after = [s for s in sets if s["soc"] + s["fracsec"] / 1e6 > times[50] - 1e-6]
    before = [s for s in sets if s["soc"] + s["fracsec"] / 1e6 < times[49] + 1e-6]
    assert after and all(s["arrival"][1] == "MISSING" and s["freq"][1] is None for s in after)
    assert any(s["arrival"] == ["ON_TIME", "ON_TIME"] for s in before)
    assert done_pdc["missing"][1] >= 40 and done_pdc["missing"][0] < 10  # best-effort QoS: a rare loss is allowed
    # gridbus delays: measurement time -> database row, one line per PMU
    out = gridbus("delays", "--db", str(db), "--topic", "PMU_Measurement", "--by-object", "--json", env=env, check=True)
    report = json.loads(out.stdout)
    assert set(report) == {"PMU_Measurement PMU_1", "PMU_Measurement PMU_2"}
    assert report["PMU_Measurement PMU_1"]["count"] == len(by_pmu["PMU_1"])
    assert report["PMU_Measurement PMU_1"]["p99_ms"] > 0
