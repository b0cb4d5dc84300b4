"""The EMS (issue 14, item 4): WLS state estimation against ANDES's true states, and bad data."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from gridbus import Bus

pytest.importorskip("andes")

from gridbus.ems.service import EMS  # noqa: E402
from gridbus.ems.snapshot import Snapshot  # noqa: E402
from gridbus.ems.wls import estimate  # noqa: E402
from gridbus.testbed.andes import empty_scenario, load_scenario, scenario_file  # noqa: E402
from gridbus.testbed.andes.case import AndesCase  # noqa: E402
from gridbus.testbed.andes.engine import AndesEngine  # noqa: E402


@pytest.fixture(scope="module")
def noisy() -> AndesEngine:
    """IEEE 14 with the shipped scenario's sensors and PMUs (no events: the truth stays put)."""
    scenario = load_scenario(scenario_file("ieee14-gen-trip.toml"))
    scenario.events = []
    return AndesEngine(AndesCase(scenario))


def truth(engine: AndesEngine, snap: Snapshot) -> np.ndarray:
    V = engine.voltages()
    return V * np.exp(-1j * np.angle(V[snap.reference]))


def noisy_values(engine: AndesEngine, snap: Snapshot, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """What the meters report: the true values plus each meter's noise (the scenario's sensor models)."""
    values = engine.measurements()
    for object_id, fields in values.items():
        for name in list(fields):
            key = {"V": "magnitude", "angle": "angle"}.get(name, name) if object_id.startswith("PMU_") else name
            fields[name] += engine.system.sensor(object_id, key).noise * rng.standard_normal()
    return values


def test_exact_measurements_give_andes_state_exactly():
    """The EMS's network model is ANDES's: noiseless measurements give the state to 1e-9 pu."""
    engine = AndesEngine(AndesCase(empty_scenario("ieee39")))
    snap = Snapshot(engine.case, engine.system)
    values = engine.measurements()
    model = snap.model()
    result = estimate(model, snap.vector(values), snap.sigma, snap.flat_start(model, values))
    assert result.converged and result.bad is None
    assert np.max(np.abs(result.V - truth(engine, snap))) < 1e-9
    # line flows are measurements too, and fit the state exactly
    flows = [i for i, name in enumerate(snap.layout.names) if name.endswith((".P", ".Q")) and name.startswith("TL_")]
    assert len(flows) == 2 * len(engine.ids.line) and np.max(np.abs(result.residuals[flows])) < 1e-6


def test_noisy_estimate_is_within_the_sensors_noise(noisy):
    snap = Snapshot(noisy.case, noisy.system)
    model = snap.model()
    rng = np.random.default_rng(7)
    true = truth(noisy, snap)
    errors, flagged = [], 0
    for _ in range(20):
        values = noisy_values(noisy, snap, rng)
        result = estimate(model, snap.vector(values), snap.sigma, snap.flat_start(model, values))
        errors.append(np.abs(np.abs(result.V) - np.abs(true)))
        flagged += result.bad is not None
    sigma_v = snap.sigma[: snap.net.n]  # the voltmeters' sigma (pu), Bus_n.V first in the layout
    # redundancy filters noise: the estimate is better than one voltmeter, at every bus
    assert np.all(np.sqrt(np.mean(np.square(errors), axis=0)) < sigma_v)
    assert flagged <= 1  # 1 % false alarms expected


@pytest.mark.parametrize(
    ("object_id", "field", "factor", "name"),
    [
        ("Bus_9", "Va", 1.02, "Bus_9.V"),
        ("TL_2-3", "Ia", 1.3, "TL_2-3.I"),
        ("TL_1-2", "P", 1.1, "TL_1-2.P"),  # a line's flow meter (5 MW off, σ 0.2 MW)
    ],
)
def test_a_corrupted_measurement_is_named(noisy, object_id, field, factor, name):
    snap = Snapshot(noisy.case, noisy.system)
    model = snap.model()
    values = noisy_values(noisy, snap, np.random.default_rng(3))
    values[object_id][field] *= factor
    result = estimate(model, snap.vector(values), snap.sigma, snap.flat_start(model, values))
    assert result.objective > result.chi2_limit and result.bad is not None
    assert snap.layout.names[result.bad] == name


@pytest.mark.integration
def test_ems_on_the_bus_estimates_and_names_a_biased_meter(tmp_path, env, domain, noisy):
    """Testbed (ANDES, noisy sensors, Bus_9's voltmeter 2 % high) -> bus -> EMS -> Estimate_State."""
    text = scenario_file("ieee14-gen-trip.toml").read_text().split("[[event]]")[0]
    text += '\n[sensors]\n"Bus_*.V?" = { noise = 40.0 }\n"Bus_9.Va" = { noise = 40.0, bias = 1600.0 }\n'
    text += '"PMU_*.magnitude" = { noise = 20.0 }\n"PMU_*.angle" = { noise = 0.0005 }\n'
    text += '\n[pmus]\nbuses = ["Bus_1", "Bus_2", "Bus_3", "Bus_6", "Bus_8"]\n'
    path = tmp_path / "biased.toml"
    path.write_text(text.replace("duration = 30.0", "duration = 8.0"))
    scenario = load_scenario(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "testbed", "--engine", "andes", "--scenario", str(path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert json.loads(proc.stdout.readline())["ready"]
        with Bus(domain) as bus:
            estimates = bus.reader("SE_ems", "State")
            ems = EMS(bus, Snapshot(AndesCase(scenario)), period=0.5)
            got = []
            deadline = time.monotonic() + 15
            while len(got) < 3 and time.monotonic() < deadline:
                ems.poll()
                got += estimates.take(0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert len(got) >= 3, "no estimates published"
    last = got[-1]
    assert last.bad_data and last.bad_measurement == "Bus_9.V" and last.largest_normalized_residual > 3
    true = noisy.measurements()
    errors = [abs(v - true[b]["Va"]) for b, v in zip(last.buses, last.V, strict=True)]
    assert max(errors) < 3 * 40.0  # within the voltmeters' 3 sigma, Bus_9 too: its bad meter was left out
    residual = last.residuals[list(last.measurements).index("Bus_9.V")]
    assert 1000 < residual < 2200  # and its residual shows the 1600 V bias
    assert len(last.residuals) == len(last.measurements) == len(last.normalized)


@pytest.mark.integration
def test_ems_command_publishes_estimates(tmp_path, env, domain):
    """`gridbus ems` as its own process next to the testbed: estimates come out on Estimate_State."""
    path = tmp_path / "quiet.toml"
    path.write_text("[scenario]\ncase = 'ieee14'\nduration = 8.0\n")
    testbed = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "testbed", "--engine", "andes", "--scenario", str(path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    ems = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "ems", "--scenario", str(path), "--period", "0.5",
         "--duration", "5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with Bus(domain) as bus:
            estimates = bus.reader("SE_ems", "State")
            got = []
            deadline = time.monotonic() + 20
            while not got and time.monotonic() < deadline:
                got += estimates.take(0.2)
        if got:  # its --duration is only the bound: SIGTERM ends it as cleanly, with the same summary
            ems.terminate()
        done = json.loads(ems.communicate(timeout=30)[0].splitlines()[-1])["done"]
    finally:
        for proc in (testbed, ems):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
    assert got and got[0].converged and not got[0].bad_data and len(got[0].buses) == 14
    assert done["estimates"] >= 1 and not done["bad_data"]


def test_ems_refuses_an_unknown_case(env):
    proc = subprocess.run(
        [sys.executable, "-m", "gridbus.cli.main", "ems", "--case", "ieee999", "--duration", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "gridbus: error: unknown ANDES case 'ieee999'" in proc.stderr
