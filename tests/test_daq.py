"""The DAQ agent: per-cycle DSP accuracy, configuration errors, the agent on the bus."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from gridbus import Bus
from gridbus.daq.agent import DaqConfigError, load_config
from gridbus.daq.backend import Channel, SimulatedADC
from gridbus.daq.dsp import CycleProcessor

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "daq-agent.toml"


@pytest.mark.parametrize("f", [59.5, 60.0, 60.3, 61.0])
def test_per_cycle_values_match_the_waveforms(f):
    adc = SimulatedADC([Channel("G_1", V=118.0, I=5.0, pf=0.9, f=f, noise=0.001)], 7680.0)
    dsp = CycleProcessor(1, 7680.0)
    for _ in range(6):
        dsp.push(adc.read(77))
        values = dsp.compute()
    assert values["f"][0] == pytest.approx(f, abs=0.01)
    assert np.allclose(values["V"][0], 118.0, rtol=0.01)
    assert np.allclose(values["I"][0], 5.0, rtol=0.01)
    s = 3 * 118.0 * 5.0
    assert values["P"][0] == pytest.approx(s * 0.9, rel=0.02)
    assert values["Q"][0] == pytest.approx(s * math.sqrt(1 - 0.81), rel=0.05)
    a, b, c = np.angle(values["V_phasor"][0])
    assert (a - b) % (2 * math.pi) == pytest.approx(2 * math.pi / 3, abs=0.02)     # abc sequence
    assert (a - c) % (2 * math.pi) == pytest.approx(4 * math.pi / 3, abs=0.02)


def test_a_stopped_machine_reads_zero_frequency():
    adc = SimulatedADC([Channel("G_2", running=False)], 7680.0)
    dsp = CycleProcessor(1, 7680.0)
    dsp.push(adc.read(128))
    assert dsp.compute()["f"][0] == 0.0


@pytest.mark.parametrize("old, new, reason", [
    ('id = "G_3"', 'id = "CB_3"', "a DAQ agent measures"),
    ('id = "G_4"\nI = 0.5', 'id = "G_4"\nI = "lots"', "I must be a number"),
    ('rate = 100.0', 'rate = -1', "rate must be a number > 0"),
    ('id = "Bus_7"\nV = 114.0', 'id = "Bus_7"\nVolts = 114.0', "unknown key 'Volts'"),
    ('backend = "simulated"', 'backend = "pru"', "backend 'pru' is not available"),
])
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


def test_agent_publishes_its_objects_and_obeys_commands(env, domain):
    config = load_config(EXAMPLE)
    proc = subprocess.Popen([sys.executable, "-m", "gridbus.cli.main", "daq", "--config", str(EXAMPLE),
                             "--duration", "30", "--stats"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())["ready"]
        assert set(ready["objects"]) == {c.id for c in config.channels}
        with Bus(domain) as bus:
            g2 = bus.reader("G_2")
            first = g2.take_one(5.0)
            assert first is not None and first.f == 0.0 and first.Va < 5     # configured as not running
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
            time.sleep(0.3)                      # a few cycles for the window to fill
            latest = g2.take(1.0)[-1]
            assert latest.f == pytest.approx(59.8, abs=0.02) and latest.Va == pytest.approx(119.5, rel=0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
