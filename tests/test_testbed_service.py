"""`gridbus testbed` in its own process, driven over real DDS from this one."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.testbed.system import load_system

SPEED = 10.0


@pytest.fixture
def testbed(env):
    """A testbed process at 10x speed; yields its 'ready' info."""
    proc = subprocess.Popen([sys.executable, "-m", "gridbus.cli.main", "testbed", "--speed", str(SPEED),
                             "--duration", "600", "--rate", "50"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith('{"ready"'):
        proc.kill()
        raise AssertionError(f"testbed did not start: {line} {proc.stderr.read()}")
    yield json.loads(line)["ready"] | {"process": proc}
    proc.terminate()
    proc.wait(timeout=10)


def wait_for(reader, predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sample in reader.take(0.2):
            if predicate(sample):
                return sample
    raise AssertionError("no sample matched in time")


def test_every_measured_object_publishes(testbed, domain):
    system = load_system()
    with Bus(domain) as bus:
        reader = bus.reader("*")
        seen: set[str] = set()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            seen.update(s.id for s in reader.take(0.2))
            measured = {o for o in system.object_ids() if "Measurement" in bus.registry.parse_id(o).topics}
            if measured <= seen:
                break
        assert measured - seen == set()
        # state of every breaker and generator is there for a late joiner (transient local)
        states = bus.reader("CB", "State")
        got: dict[str, str] = {}
        deadline = time.monotonic() + 5
        while len(got) < len(system.breakers) and time.monotonic() < deadline:
            got.update({s.id: s.status.name for s in states.take(0.2)})
        assert set(got) == set(system.breakers) and set(got.values()) == {"OPEN"}


def test_commands_start_a_generator_and_close_its_breaker(testbed, domain):
    with Bus(domain) as bus:
        g_state = bus.reader("G_1", "State")
        g_meas = bus.reader("G_1")
        cb_state = bus.reader("CB_G1", "State")
        protection = bus.reader("CB_G2", "Protection")
        bus.writer("G_1", "Command").wait_for_readers(1)
        bus.command("G_1", action="START")
        wait_for(g_state, lambda s: s.status.name == "RUNNING" and s.ready, timeout=15)
        sample = wait_for(g_meas, lambda s: abs(s.f - 60) < 0.1)
        assert 115 < sample.Va < 121 and sample.source_time <= sample.reception_time
        bus.command("CB_G1", status="CLOSED")
        wait_for(cb_state, lambda s: s.status.name == "CLOSED")
        # G_2 at 61.5 Hz closed onto the live grid: an out-of-phase closure, refused and reported
        bus.command("CB_1-2", status="CLOSED")
        bus.command("G_2", action="START", f_ref=61.5)
        g2 = bus.reader("G_2")
        wait_for(g2, lambda s: s.f > 61.4, timeout=15)
        bus.command("CB_G2", status="CLOSED")
        fault = wait_for(protection, lambda s: s.fault.name == "OUT_OF_PHASE_CLOSURE")
        assert fault.trip and abs(fault.df) > 1.0
        assert testbed["process"].poll() is None


def test_a_command_for_an_object_the_system_lacks_is_logged_and_ignored(testbed, domain):
    with Bus(domain) as bus:
        bus.writer("G_7", "Command").wait_for_readers(1)
        bus.command("G_7", action="START")
        bus.command("G_1", action="START")
        state = bus.reader("G_1", "State")
        wait_for(state, lambda s: s.status.name in ("STARTING", "RUNNING"))
    proc = testbed["process"]
    proc.terminate()
    _out, err = proc.communicate(timeout=10)
    assert "G_7" in err and "not an object of system" in err
