"""``gridbus pmu sim|test|bench-sim``: bad input, reports, and a vPMU read by another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import gridbus, gridbus_each, next_domain

from gridbus import Bus
from gridbus.pmu.time import TIME_BASE, from_soc_fracsec

BAD_INPUT = [
    (["pmu", "test", "G_1", "--test", "steady"], "'G_1' is not a PMU id"),
    (["pmu", "test", "XYZ_1", "--test", "steady"], "unknown object id 'XYZ_1'"),
    (["pmu", "test", "PMU_1", "--test", "bogus"], "invalid choice: 'bogus'"),
    (["pmu", "test", "PMU_1", "--test", "steady", "--rate", "25"], "not a C37.118 rate for 60 Hz"),
    (["pmu", "test", "PMU_1", "--test", "rocof", "--f-nominal", "50", "--rate", "60"], "for 50 Hz; use 10, 25"),
    (["pmu", "test", "PMU_1", "--test", "steady", "--f-nominal", "55"], "must be 50 or 60 Hz"),
    (["pmu", "sim", "--pmu", "Bus_1", "--duration", "1"], "'Bus_1' is not a PMU id"),
    (["pmu", "sim", "--pmu", "PMU_a", "--count", "3", "--duration", "1"], "numbered first PMU id"),
    (["pmu", "sim", "--pmu", "PMU_1", "--signal", "square"], "invalid choice: 'square'"),
    (["pmu", "bench-sim", "--rate", "50"], "not a C37.118 rate for 60 Hz"),
    (["pmu", "test", "PMU_1", "--test", "ramp", "--from-bus"], "--from-bus needs --origin"),
    (["pmu", "test", "PMU_1", "--test", "ramp", "--from-bus", "--origin", "1.5"], "whole UTC second"),
    (
        ["pmu", "test", "PMU_9", "--test", "ramp", "--from-bus", "--origin", "1800000000", "--timeout", "1"],
        "no PMU_Config from PMU_9",
    ),
]


@pytest.fixture(scope="module")
def bad_input_runs() -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """Every bad input's process, run once for the module with their start-ups overlapping."""
    env = dict(os.environ, GRIDBUS_DOMAIN=str(next_domain()))
    env.pop("CYCLONEDDS_URI", None)
    argvs = [tuple(args) for args, _message in BAD_INPUT]
    return dict(zip(argvs, gridbus_each(*argvs, env=env), strict=True))


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(bad_input_runs, args, message):
    proc = bad_input_runs[tuple(args)]
    assert proc.returncode == 2, proc.stderr
    assert "gridbus: error:" in proc.stderr and message in proc.stderr and "Traceback" not in proc.stderr


def test_pmu_test_prints_the_table_and_writes_the_report(env, tmp_path):
    out = tmp_path / "rocof"
    proc = gridbus("pmu", "test", "PMU_3", "--test", "rocof", "--f-nominal", "50", "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "ROCOF sequence" in proc.stdout and "max RFE" in proc.stdout and "pass" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["pass"] and report["rate"] == 50.0 and report["test"] == "rocof"
    assert (out / "rocof.png").stat().st_size > 10_000


def test_bench_sim_reports_vpmus_per_core(env):
    proc = gridbus("pmu", "bench-sim", "--pmus", "5", "--seconds", "0.5", "--no-bus", env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["pmus"] == 5 and result["phasors"] == 6 and result["per_core"] > 0 and not result["with_bus"]


def test_bench_sim_serves_every_frame_through_the_c37118_server(env):
    proc = gridbus("pmu", "bench-sim", "--pmus", "3", "--seconds", "0.25", "--no-bus", "--server", env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["with_c37118_server"] and result["pmus"] == 3 and result["per_core"] > 0
    assert result["c37118_frames_sent"] == result["c37118_frames_received"] == 15  # 0.25 s at 60 frames/s
    assert result["cpu_serving_s"] >= 0 and result["c37118_client_cpu_s"] >= 0


@pytest.mark.integration
def test_sim_frames_reach_another_process_with_utc_soc_fracsec(env, domain):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "pmu", "sim", "--pmu", "PMU_5", "--count", "2"]
        + ["--signal", "steady", "--offset", "0.5", "--rate", "30", "--duration", "15", "--unlocked", "0.005"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())["ready"]
        assert ready["pmus"] == ["PMU_5", "PMU_6"]
        with Bus(domain) as bus:
            frames = bus.reader("PMU", "Measurement")
            got: dict[str, list] = {"PMU_5": [], "PMU_6": []}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and min(len(v) for v in got.values()) < 10:
                for sample in frames.take(0.2):
                    got[sample.id].append(sample)
            assert min(len(v) for v in got.values()) >= 10, {k: len(v) for k, v in got.items()}
            # a late joiner still gets each PMU's configuration (transient-local)
            configs = {s.id: s for s in bus.reader("PMU", "Config").take(5.0)}
            deadline = time.monotonic() + 5
            while len(configs) < 2 and time.monotonic() < deadline:
                configs |= {s.id: s for s in bus.reader("PMU", "Config").take(1.0)}
        assert configs["PMU_6"].data.time_base == TIME_BASE and configs["PMU_6"].data.data_rate == 30
        assert list(configs["PMU_5"].data.phasor_names) == ["VA", "VB", "VC", "IA", "IB", "IC"]
        for sample in got["PMU_5"]:
            frame = sample.data
            when = from_soc_fracsec(frame.soc, frame.fracsec)
            assert abs(when - time.time()) < 5, "SOC is UTC now (not TAI: that would be 37 s ahead)"
            k = round(frame.fracsec * 30 / TIME_BASE)  # frames sit on the 1/30 s grid of the UTC second
            assert abs(frame.fracsec - k * TIME_BASE / 30) <= 1
            assert sample.source_time == pytest.approx(when, abs=1e-6)
            assert frame.freq == pytest.approx(60.5, abs=1e-3) and frame.stat & 0xC000 == 0
            # the source lost its lock (--unlocked 0.005): quality code 8 (within 10 ms), STAT sync bit
            assert frame.time_quality & 0x0F == 0x8 and frame.stat & 0x2000 and (frame.stat >> 6) & 7 == 6
            assert frame.magnitude[0] == pytest.approx(120.0, rel=1e-3) and len(frame.magnitude) == 6
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["done"]["published"] >= 20


def _sim(env, pmu: str, signal: str, origin: int, seconds: float, *extra: str) -> subprocess.Popen:
    cmd = ["pmu", "sim", "--pmu", pmu, "--signal", signal, "--origin", str(origin), "--duration", str(seconds)]
    return subprocess.Popen([sys.executable, "-m", "gridbus.cli.main", *cmd, *extra], env=env, stdout=subprocess.PIPE)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("test", "signal", "extra", "passed"),
    [
        ("ramp", "ramp", [], True),
        ("steady", "steady", ["--offset", "0.02"], False),  # fed 60.02 Hz, judged against 60 Hz: FE 0.02 Hz
    ],
)
def test_compliance_of_frames_read_from_the_bus(env, tmp_path, test, signal, extra, passed):
    """A vPMU in one process, the test in another: the compliance core judges frames from the bus."""
    origin = int(time.time()) + 2
    sim = _sim(env, "PMU_8", signal, origin, 10.0, *extra)
    try:
        proc = gridbus(
            "pmu", "test", "PMU_8", "--test", test, "--from-bus", "--origin", str(origin), "--out", str(tmp_path),
            env=env, timeout=40,
        )  # fmt: skip
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    assert proc.returncode == (0 if passed else 1), proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pass"] is passed and all(r["condition"].endswith("(bus)") for r in report["checks"])
    fe = next(r for r in report["checks"] if r["check"] == "max FE")
    if passed:
        assert fe["measured"] < 1e-3 and len(report["checks"]) == 3
    else:
        assert fe["measured"] == pytest.approx(0.02, abs=1e-3) and not fe["pass"]
