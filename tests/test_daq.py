"""The DAQ agent: per-cycle DSP accuracy, configuration errors, the agent on the bus."""

from __future__ import annotations

import json
import math
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ROOT

from gridbus import Bus
from gridbus.daq.agent import DaqConfigError, load_config
from gridbus.daq.backend import Channel, SimulatedADC
from gridbus.daq.dsp import COLUMNS, CycleProcessor

EXAMPLE = ROOT / "examples" / "daq-agent.toml"


@pytest.mark.parametrize("f", [59.5, 60.0, 60.3, 61.0])
def test_per_cycle_values_match_the_waveforms(f):
    adc = SimulatedADC([Channel("G_1", V=118.0, I=5.0, pf=0.9, f=f, noise=0.001)], 7680.0)
    dsp = CycleProcessor(1, 7680.0)
    for _ in range(6):
        dsp.push(adc.read(77))
        cycle = dsp.compute()
    values = dict(zip(COLUMNS, cycle.rows[0], strict=True))
    assert values["f"] == pytest.approx(f, abs=0.01)
    assert np.allclose([values["Va"], values["Vb"], values["Vc"]], 118.0, rtol=0.01)
    assert np.allclose([values["Ia"], values["Ib"], values["Ic"]], 5.0, rtol=0.01)
    s = 3 * 118.0 * 5.0
    assert values["P"] == pytest.approx(s * 0.9, rel=0.02)
    assert values["Q"] == pytest.approx(s * math.sqrt(1 - 0.81), rel=0.05)
    a, b, c = np.angle(cycle.phasors[0, :3])
    assert values["angle"] == pytest.approx(a)
    assert (a - b) % (2 * math.pi) == pytest.approx(2 * math.pi / 3, abs=0.02)  # abc sequence
    assert (a - c) % (2 * math.pi) == pytest.approx(4 * math.pi / 3, abs=0.02)


def test_a_stopped_machine_reads_zero_frequency():
    adc = SimulatedADC([Channel("G_2", running=False)], 7680.0)
    dsp = CycleProcessor(1, 7680.0)
    dsp.push(adc.read(128))
    assert dsp.compute().column("f") == [0.0]


def test_simulated_adc_blocks_join_up_and_a_command_shows_in_the_next_block():
    """The ADC synthesizes a few ticks ahead; reading in blocks must not show it."""

    def adc() -> SimulatedADC:
        return SimulatedADC([Channel("G_1", V=118.0, f=60.3, noise=0.0)], 7680.0)

    whole = adc().read(7 * 77)
    pieces = adc()
    joined = np.concatenate([pieces.read(77) for _ in range(7)], axis=2)
    assert np.allclose(joined, whole, atol=1e-9)
    commanded = adc()
    commanded.read(77)
    commanded.apply("G_1", {"V_ref": 60.0})
    block = commanded.read(128)  # one cycle, all after the command
    assert math.sqrt(np.mean(block[0, 0] ** 2)) == pytest.approx(60.0, rel=1e-3)
    phase = commanded.phase[0]  # phase a at the last sample read: the next block turns on from it
    step = 2 * math.pi * 60.3 / 7680.0
    assert commanded.read(1)[0, 0, 0] == pytest.approx(60.0 * math.sqrt(2) * math.cos(phase + step), abs=1e-6)


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ('id = "G_3"', 'id = "CB_3"', "a DAQ agent measures"),
        ('id = "G_4"\nI = 0.5', 'id = "G_4"\nI = "lots"', "I must be a number"),
        ("rate = 100.0", "rate = -1", "rate must be a number > 0"),
        ('id = "Bus_7"\nV = 114.0', 'id = "Bus_7"\nVolts = 114.0', "unknown key 'Volts'"),
        ('id = "G_4"\nI = 0.5', 'id = "G_4"\nedits = 3', "unknown key 'edits'"),  # a class attribute, no key
        ('backend = "simulated"', 'backend = "pru"', "backend 'pru' is not available"),
        ("f_ref = { min = 45.0, max = 75.0 }", "f_ref = { min = 75.0, max = 45.0 }", "min 75 is above max 45"),
        ("V_ref = { min = 0.0, max = 280.0 }", "V_ref = { min = 0.0, max = inf }", "of finite numbers"),
        ("P_ref = { min = 0.0", "Q_ref = { min = 0.0", "[limits] Q_ref: not an output the agent drives"),
        ('name = "daq-1"', 'name = "daq_1"', "[agent] name must be 1-29 letters"),
    ],
)
def test_bad_configuration_names_file_line_and_reason(tmp_path, old, new, reason):
    text = EXAMPLE.read_text()
    assert old in text
    path = tmp_path / "agent.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(DaqConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and reason in message
    line = int(message.split(":")[1])
    assert new.split("\n")[-1].split("=")[0].strip() in path.read_text().splitlines()[line - 1]


@pytest.mark.integration
def test_agent_publishes_its_objects_and_obeys_commands(env, domain):
    config = load_config(EXAMPLE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "daq", "--config", str(EXAMPLE), "--duration", "30", "--stats"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())["ready"]
        assert set(ready["objects"]) == {c.id for c in config.channels}
        with Bus(domain) as bus:
            g2 = bus.reader("G_2")
            first = g2.take_one(5.0)
            assert first is not None and first.f == 0.0 and first.Va < 5  # configured as not running
            load = bus.reader("L_4").take_one(5.0)
            assert load.P == pytest.approx(3 * 114.0 * 4.9 * 0.98, rel=0.03)
            bus.writer("G_2", "Command").wait_for_readers(1)
            bus.command("G_2", action="START", f_ref=59.8)
            deadline = time.monotonic() + 5
            latest = None
            while time.monotonic() < deadline:
                for sample in g2.take(0.2):
                    latest = sample
                if latest is not None and latest.f > 59:
                    break
            time.sleep(0.3)  # a few cycles for the window to fill
            g2.take(0)
            # off nominal, one estimate ripples by +-0.0205 Hz around 59.8 (measured; CI saw 59.821
            # against the 0.02 allowed): judge the mean of half a second of them
            settled = _samples_for(g2, 0.5)
            f = statistics.fmean(s.f for s in settled)
            va = statistics.fmean(s.Va for s in settled)
            assert f == pytest.approx(59.8, abs=0.02) and va == pytest.approx(119.5, rel=0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_limits_default_when_left_out(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(EXAMPLE.read_text().replace("f_ref = { min = 45.0, max = 75.0 }", ""))
    config = load_config(path)
    assert config.limits["f_ref"] == (45.0, 75.0) and config.limits["V_ref"] == (0.0, 280.0)


def _raw_command(bus, object_id: str, **values) -> None:
    """A command as any process on the domain can write it: without gridbus's checks."""
    topic = bus.topic_type(object_id, "Command")
    fields = {n: info.default() for n, info in topic.fields.items() if n != "id"}
    if "action" in values:
        values["action"] = topic.fields["action"].enum[values["action"]]
    bus.writer(object_id, "Command").write(topic.cls(id=object_id, **(fields | values)))


def _samples_for(reader, seconds: float) -> list:
    """What ``reader`` receives during the next ``seconds`` (at least one sample, within 5 s)."""
    end, got = time.monotonic() + seconds, []
    while time.monotonic() < end or (not got and time.monotonic() < end + 5):
        got += reader.take(0.1)
    assert got, "no sample received"
    return got


def _latest(reader, predicate, timeout: float = 5.0):
    deadline, latest = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        for sample in reader.take(0.2):
            latest = sample
        if latest is not None and predicate(latest):
            return latest
    raise AssertionError(f"condition not seen in time; latest {latest}")


@pytest.mark.integration
def test_agent_refuses_bad_commands_whole_reports_them_and_keeps_the_last_good_setting(env, domain):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "daq", "--config", str(EXAMPLE), "--duration", "30"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "ready" in json.loads(proc.stdout.readline())
        with Bus(domain) as bus:
            g1, g2 = bus.reader("G_1"), bus.reader("G_2")
            events = bus.reader("EV_daq-1", "Log")
            bus.writer("G_1", "Command").wait_for_readers(1)
            bus.command("G_1", f_ref=59.5)  # good
            _latest(g1, lambda s: abs(s.f - 59.5) < 0.02)
            _raw_command(bus, "G_1", f_ref=math.inf)  # not finite (was obeyed: f = inf)
            _raw_command(bus, "G_1", f_ref=80.0)  # within the IDL, beyond the limits
            _raw_command(bus, "G_1", P_ref=-5.0)  # negative power reference
            _raw_command(bus, "G_2", action="START", V_ref=1e5)  # one bad field refuses the whole
            seen, deadline = [], time.monotonic() + 5
            while len(seen) < 4 and time.monotonic() < deadline:
                seen += [e for e in events.take(0.2) if e.kind == "COMMAND_REJECTED"]
            assert [(e.object_id, e.field, e.value) for e in seen] == [
                ("G_1", "f_ref", math.inf),
                ("G_1", "f_ref", 80.0),
                ("G_1", "P_ref", -5.0),
                ("G_2", "V_ref", 1e5),
            ]
            assert "outside the agent's output limits 45..75" in seen[1].detail
            time.sleep(0.3)
            g1.take(0)
            settled = _samples_for(g1, 0.5)  # the mean: one estimate ripples by about 0.02 Hz
            assert statistics.fmean(s.f for s in settled) == pytest.approx(59.5, abs=0.02)  # the last good setting
            assert settled[-1].Ia == pytest.approx(5.0, rel=0.02)
            assert g2.take(1.0)[-1].Va < 5  # the START was refused with it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        done = json.loads(proc.stdout.read().strip().splitlines()[-1])["done"]
        assert done["commands_rejected"] == 4 and done["commands_applied"] == 1
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
