"""The ANDES engine (issue 14): scenarios, commands, and the co-simulation against ANDES alone.

ANDES generates and caches its model code on first use (~20 s once per
machine): the ``andes_case`` fixture pays that once per session.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import ROOT, gridbus

from gridbus import Bus, CommandRejected, ScenarioError, UnknownObjectError
from gridbus.bench.peers import read_line
from gridbus.testbed.andes import Event, empty_scenario, load_scenario, scenario_file

andes = pytest.importorskip("andes")

from gridbus.testbed.andes.case import AndesCase  # noqa: E402
from gridbus.testbed.andes.engine import AndesEngine  # noqa: E402
from gridbus.testbed.andes.offline import run_offline  # noqa: E402

TRIP = [Event(t=1.0, kind="generator_trip", object="G_2")]
READY_TIMEOUT = 60.0  # s for a testbed child to load its case and say ready


@pytest.fixture(scope="session")
def andes_case() -> AndesCase:
    """IEEE 14-bus loaded once (the first load of a session generates ANDES's code)."""
    return AndesCase(empty_scenario("ieee14"))


def engine(events: list[Event] | None = None, **scenario: object) -> AndesEngine:
    chosen = empty_scenario("ieee14")
    chosen.events = list(events or [])
    for key, value in scenario.items():
        setattr(chosen, key, value)
    return AndesEngine(AndesCase(chosen))


# -- scenario files --------------------------------------------------------------------------
def test_shipped_scenario_loads_and_matches_its_copy():
    scenario = load_scenario(scenario_file("ieee14-gen-trip.toml"))
    assert scenario.case == "ieee14" and scenario.events[0].kind == "generator_trip"
    assert scenario.events[0].object == "G_2" and scenario.pmu_buses and scenario.loss
    assert (ROOT / "scenarios" / "ieee14-gen-trip.toml").read_text() == scenario_file(
        "ieee14-gen-trip.toml"
    ).read_text()


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[scenario]\nduration = -1\n", 2, "duration must be > 0"),
        ("[scenario]\ncase='ieee14'\n\n[[event]]\nt = 1\nkind = 'explode'\n", 6, "event kind must be one of"),
        ("[[event]]\nt = 1\nkind = 'fault'\nbus = 'Bus_4'\n", 1, "fault: missing clear"),
        ("[[event]]\nt = 1\nkind = 'line_trip'\nobject = 'TL_1-2'\ncolour = 3\n", 5, "unknown key 'colour'"),
        ("[[event]]\nt = 'soon'\nkind = 'line_trip'\nobject = 'TL_1-2'\n", 2, "t must be a number"),
        ("[loss]\n'L_*' = 1.5\n", 2, "probability"),
        ("[weather]\nrain = 1\n", 1, "unknown section 'weather'"),
        ("[scenario\n", 1, ""),
    ],
)
def test_bad_scenarios_name_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}:{line}:") and reason in str(info.value)


def test_an_event_on_an_object_the_case_lacks_names_its_line(tmp_path, andes_case):
    path = tmp_path / "s.toml"
    path.write_text("[scenario]\ncase = 'ieee14'\n\n[[event]]\nt = 1\nkind = 'generator_trip'\nobject = 'G_9'\n")
    with pytest.raises(ScenarioError, match=rf"^{path}:4: generator_trip: 'G_9' is not in the case"):
        AndesCase(load_scenario(path))


def test_cli_refuses_a_bad_scenario_with_exit_2(tmp_path, env):
    path = tmp_path / "bad.toml"
    path.write_text("[[event]]\nt = 1\nkind = 'fault'\nbus = 'Bus_4'\nclear = 0\n")
    proc = gridbus("testbed", "--engine", "andes", "--scenario", str(path), "--check", env=env)
    assert proc.returncode == 2 and proc.stderr.startswith(f"gridbus: error: {path}:5: fault: clear must be > 0")
    assert "Traceback" not in proc.stderr


# -- the engine -------------------------------------------------------------------------------
def test_case_ids_and_si_measurements(andes_case):
    e = AndesEngine(andes_case)
    m = e.measurements()
    assert set(e.ids.gen) == {"G_1", "G_2", "G_3", "G_4", "G_5"} and "TL_1-2" in e.ids.line and "L_3" in e.ids.load
    # 69 kV bus at about 1.06 pu: ~42 kV phase; the slack machine's power is the power flow's
    assert 40e3 < m["Bus_1"]["Va"] < 44e3 and m["Bus_1"]["Va"] == m["Bus_1"]["Vc"]
    assert m["G_2"]["P"] == pytest.approx(40e6, rel=1e-6) and m["G_1"]["f"] == pytest.approx(60.0)
    # power balance: generation = load + losses (losses a few %)
    gen = sum(m[g]["P"] for g in e.ids.gen)
    load = sum(m[x]["P"] for x in e.ids.load)
    assert 1.0 < gen / load < 1.05
    assert {"V", "angle", "f", "live"} <= set(m["PMU_1"])


def test_commands_switch_lines_set_governors_and_loads():
    e = engine()
    e.command("CB_4-5", {"status": "OPEN"})
    assert ("state", "CB_4-5") in e.take_events() and e.state("CB_4-5") == {"status": "OPEN"}
    before = e.power_reference("G_3")
    v3 = e.measurements()["Bus_3"]["Va"]
    e.command("G_3", {"P_ref": before + 10e6, "f_ref": math.nan})
    e.command("L_3", {"P_ref": 60e6, "Q_ref": math.nan})
    for _ in range(300):  # 10 s: the governors settle
        e.step()
    m = e.measurements()
    assert m["TL_4-5"]["Ia"] == 0.0
    assert m["Bus_3"]["Va"] != v3
    assert e.state("G_3")["P_ref_applied"] == pytest.approx(before + 10e6)
    assert m["L_3"]["P"] == pytest.approx(60e6, rel=0.05)  # constant impedance: near its voltage
    with pytest.raises(UnknownObjectError):
        e.command("G_7", {"P_ref": 1e6})
    with pytest.raises(CommandRejected, match="f_ref"):
        e.command("G_1", {"f_ref": 61.0})


def test_line_flows_are_andes_own_at_the_from_end():
    """P/Q of every line equal ANDES's own line injections Pij/Qij (the a1/v1 equations), in W/var."""
    e = engine()
    e.command("CB_4-5", {"status": "OPEN"})  # a changed flow pattern, not just the power flow's
    for _ in range(15):
        e.step()
    m = e.measurements()
    line, watts = e.ss.Line, e.ss.config.mva * 1e6
    for tid, idx in e.ids.line.items():
        uid = line.idx2uid(idx)
        assert m[tid]["P"] == pytest.approx(line.a1.e[uid] * watts, rel=1e-6, abs=10.0), tid
        assert m[tid]["Q"] == pytest.approx(line.v1.e[uid] * watts, rel=1e-6, abs=10.0), tid
    assert m["TL_4-5"]["P"] == m["TL_4-5"]["Q"] == 0.0
    # the slack (bus 1) exports into its lines: positive at their from end
    assert m["TL_1-2"]["P"] > 0 and m["TL_1-5"]["P"] > 0


def test_voltage_reference_raises_the_terminal_voltage():
    e = engine()
    before = e.measurements()["Bus_3"]["Va"]
    e.command("G_3", {"V_ref": before * 1.02})
    for _ in range(150):
        e.step()
    after = e.measurements()["Bus_3"]["Va"]
    assert 1.003 < after / before <= 1.02  # the exciter's reference moved; its regulation does the rest


def test_scenario_trip_is_a_state_change_and_a_protection_trip():
    e = engine(TRIP)
    for _ in range(45):
        e.step()
    events = e.take_events()
    assert ("state", "CB_G2") in events and ("state", "G_2") in events
    trips = [p for kind, p in events if kind == "protection"]
    assert trips and trips[0]["id"] == "CB_G2" and trips[0]["trip"]
    assert e.state("G_2")["status"] == "OFF" and e.measurements()["G_2"]["P"] == 0.0
    assert e.mean_frequency() < 59.95  # the system lost 40 MW


def test_stepped_engine_reproduces_the_offline_run():
    """The engine stepped in chunks integrates the same model as ANDES in one call."""
    events = [
        *TRIP,
        Event(t=2.0, kind="fault", bus="Bus_9", clear=0.1),
        Event(t=3.0, kind="load_ramp", object="L_3", scale=1.2, duration=1.0),
    ]
    ref = run_offline(_scenario(events), 5.0)
    e = engine(events)
    errors_v, errors_f = [], []
    for _ in range(150):
        e.step()
        if any(abs(e.t - t) < 1e-6 for t in (1.0, 2.0, 2.1)):
            continue  # at an event instant both sides of the jump are right
        m = e.measurements()
        V, f = ref.at(e.t)
        errors_v.append(np.max(np.abs(np.array([m[b]["Va"] for b in ref.bus_ids]) - V) / V.clip(1e3)))
        errors_f.append(np.max(np.abs(np.array([m[g]["f"] for g in ref.gen_ids]) - f)))
    assert max(errors_v) < 5e-3 and float(np.sqrt(np.mean(np.square(errors_v)))) < 5e-4
    assert max(errors_f) < 1e-3


def _scenario(events: list[Event]):
    s = empty_scenario("ieee14")
    s.events = events
    return s


# -- the co-simulation on the bus -------------------------------------------------------------
COSIM = """[scenario]
case = 'ieee14'
duration = 3.0

[[event]]
t = 1.0
kind = 'generator_trip'
object = 'G_2'

[[event]]
t = 1.5
kind = 'fault'
bus = 'Bus_9'
clear = 0.1

[[event]]
t = 2.0
kind = 'load_step'
object = 'L_3'
scale = 1.2
"""
JUMPS = (1.0, 1.5, 1.6, 2.0)  # event instants: both sides of a jump are right there


@dataclass
class AndesAlone:
    """IEEE 14 run by ANDES by itself (no gridbus code): bus voltages (V, phase RMS) and machine speeds (Hz)."""

    t: np.ndarray
    V: dict[str, np.ndarray]  # Bus_n -> series
    f: dict[str, np.ndarray]  # G_n -> series
    nominal: dict[str, float]  # Bus_n -> nominal phase voltage

    def volts(self, bus: str, t: float) -> float:
        return float(np.interp(t, self.t, self.V[bus]))

    def hertz(self, gen: str, t: float) -> float:
        return float(np.interp(t, self.t, self.f[gen]))


def andes_alone(duration: float) -> AndesAlone:
    """COSIM's events written by hand with ANDES's own API, run in one TDS call.

    The independent reference of item 6: the names follow the documented
    mapping (``G_n`` = ``GENROU_n``, ``Bus_n`` = bus ``n``, ``L_n`` = ``PQ_n``),
    and the events are ANDES's ``Toggle``, ``Fault`` and ``Alter`` models, so a
    wrong translation of a scenario by gridbus shows up as a trajectory that
    differs from this one.
    """
    ss = andes.load(andes.get_case("ieee14/ieee14_full.xlsx"), setup=False, no_output=True, default_config=True)
    ss.add("Toggle", {"model": "GENROU", "dev": "GENROU_2", "t": 1.0})
    ss.add("Fault", {"bus": 9, "tf": 1.5, "tc": 1.6, "rf": 0.0, "xf": 1e-4})
    for src in ("Ppf", "Qpf", "Req", "Xeq", "Ipeq", "Iqeq"):  # a PQ load's parts in a TDS, all x1.2
        ss.add("Alter", {"model": "PQ", "dev": "PQ_3", "src": src, "method": "*", "amount": 1.2, "t": 2.0})
    ss.setup()
    ss.PFlow.run()
    ss.TDS.config.tf, ss.TDS.config.tstep, ss.TDS.config.criteria, ss.TDS.config.no_tqdm = duration, 1 / 30, 0, 1
    assert ss.TDS.run(no_summary=True)
    ts = ss.dae.ts
    x, y = np.asarray(ts.x), np.asarray(ts.y)
    nominal = {f"Bus_{b}": kv * 1e3 / math.sqrt(3) for b, kv in zip(ss.Bus.idx.v, ss.Bus.Vn.v, strict=True)}
    V = {bus: y[:, ss.Bus.v.a[n]] * nominal[bus] for n, bus in enumerate(nominal)}
    f0 = float(ss.config.freq)
    f = {f"G_{idx.split('_')[1]}": x[:, ss.GENROU.omega.a[n]] * f0 for n, idx in enumerate(ss.GENROU.idx.v)}
    return AndesAlone(np.asarray(ts.t, dtype=float), V, f, nominal)


@pytest.mark.integration
def test_cosimulation_on_the_bus_reproduces_andes_alone(tmp_path, env, domain, andes_case):
    """Perfect sensors, no control: what the bus carried is what ANDES alone computes (item 6).

    A generator trip, a fault and a load step, so each kind of event the
    scenario compiles is checked against the same event written for ANDES by hand.
    """
    path = tmp_path / "events.toml"
    path.write_text(COSIM)
    speed = 3.0
    with Bus(domain) as bus:
        buses, machines = bus.reader("Bus"), bus.reader("G")
        frames = bus.reader("PMU")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridbus.cli.main", "testbed", "--engine", "andes", "--scenario", str(path),
             "--speed", str(speed)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            line = read_line(proc, READY_TIMEOUT)
            assert line, f"the testbed did not say ready within {READY_TIMEOUT:g} s"
            epoch = json.loads(line)["ready"]["epoch"]
            samples = []
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                samples += buses.take(0.1) + machines.take(0)
            samples += buses.take(0.5) + machines.take(0)
            pmu = frames.take(0)
            assert proc.wait(timeout=10) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    ref = andes_alone(3.0)
    worst_v = worst_f = 0.0
    checked = tripped = 0
    for s in samples:
        t = (s.source_time - epoch) * speed
        if any(abs(t - jump) < 1e-6 for jump in JUMPS):
            continue
        if s.id in ref.V:
            worst_v = max(worst_v, abs(s.Va - ref.volts(s.id, t)) / ref.nominal[s.id])
        elif s.id == "G_2" and t > 1.0:  # out of service: the engine reports 0 Hz, not a rotor speed
            assert s.f == 0.0
            tripped += 1
        else:
            worst_f = max(worst_f, abs(s.f - ref.hertz(s.id, t)))
        checked += 1
    assert checked > 14 * 30 and tripped >= 5 and pmu  # most of 3 s of 30 Hz reports from every bus
    # PMU frames carry the same voltages (perfect sensors): VA at the bus, VB and VC 120° apart
    for frame in pmu[-5:]:
        bus = "Bus_" + frame.id[4:]
        assert abs(frame.magnitude[0] - ref.volts(bus, (frame.source_time - epoch) * speed)) / ref.nominal[bus] < 2e-3
        assert abs(math.remainder(frame.angle[0] - frame.angle[1] - 2 * math.pi / 3, 2 * math.pi)) < 1e-9
    assert worst_v < 2e-3 and worst_f < 1e-3, (worst_v, worst_f)


def test_ieee39_steps_in_chunks():
    """Chunks end exactly on their end time (an ulp short, ANDES's next 1e-17 s step fails on IEEE 39)."""
    e = AndesEngine(AndesCase(empty_scenario("ieee39")))
    for _ in range(60):
        e.step()
    assert e.t == pytest.approx(2.0) and abs(e.mean_frequency() - 60.0) < 0.01
    assert len(e.ids.gen) == 10 and len(e.system.pmus) == 10


@pytest.mark.integration
def test_sensors_lose_reports_and_keep_per_object_rates(tmp_path, env, domain, andes_case):
    """[loss] drops a share of a device's reports; [rates] sets a type's or one object's rate."""
    path = tmp_path / "sensors.toml"
    path.write_text(
        "[scenario]\ncase = 'ieee14'\nduration = 3.0\n\n[loss]\n'L_*' = 0.5\n\n[rates]\nTL = 10\nBus_4 = 5\n"
    )
    counts: dict[str, int] = {}
    with Bus(domain) as bus:
        reader = bus.reader("*")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridbus.cli.main", "testbed", "--engine", "andes", "--scenario", str(path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            line = read_line(proc, READY_TIMEOUT)
            assert line and json.loads(line)["ready"], f"the testbed did not say ready within {READY_TIMEOUT:g} s"
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                for s in reader.take(0.1):
                    if s.topic.endswith("_Measurement"):
                        counts[s.id] = counts.get(s.id, 0) + 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
    full = counts["G_1"]  # 30 Hz
    assert full > 50
    assert 0.3 < counts["L_3"] / full < 0.7  # half lost
    assert 0.25 < counts["TL_1-2"] / full < 0.45  # 10 Hz of 30
    assert 0.1 < counts["Bus_4"] / full < 0.25  # 5 Hz of 30
    assert 0.9 < counts["Bus_5"] / full < 1.1


def test_case_and_scenario_need_the_andes_engine(env, tmp_path):
    proc = gridbus("testbed", "--case", "ieee14", "--check", env=env)
    assert proc.returncode == 2 and "--case and --scenario need --engine andes" in proc.stderr
    proc = gridbus("testbed", "--engine", "andes", "--case", str(tmp_path / "missing.xlsx"), "--check", env=env)
    assert proc.returncode == 2 and "unknown ANDES case" in proc.stderr
