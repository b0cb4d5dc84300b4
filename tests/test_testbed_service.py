"""`gridbus testbed` in its own process, driven over real DDS from this one."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.testbed.system import load_system

pytestmark = pytest.mark.integration  # joins DDS or starts processes

SPEED = 10.0


@pytest.fixture
def testbed(env):
    """A testbed process at 10x speed; yields its 'ready' info."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridbus.cli.main",
            "testbed",
            "--speed",
            str(SPEED),
            "--duration",
            "600",
            "--rate",
            "50",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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


def start_slack(bus: Bus, *breakers: str) -> None:
    """Start G_1, wait until it is ready, close its breaker and ``breakers``."""
    state = bus.reader("G_1", "State")
    closed = bus.reader("CB", "State")
    bus.writer("G_1", "Command").wait_for_readers(1)
    bus.command("G_1", action="START")
    wait_for(state, lambda s: s.status.name == "RUNNING" and s.ready, timeout=15)
    for cb in ("CB_G1", *breakers):
        bus.command(cb, status="CLOSED")
    pending = {"CB_G1", *breakers}

    def all_closed(sample) -> bool:
        if sample.status.name == "CLOSED":
            pending.discard(sample.id)
        return not pending

    wait_for(closed, all_closed)


def raw_command(bus: Bus, object_id: str, **fields) -> None:
    """Write a command as any process on the domain can: without gridbus's checks."""
    writer = bus.writer(object_id, "Command")
    topic = writer.topic
    values = {name: info.default() for name, info in topic.fields.items() if name != "id"}
    writer._dds.write(topic.cls(id=object_id, **(values | fields)))


def readings(reader, field: str, seconds: float) -> list[float]:
    deadline = time.monotonic() + seconds
    out: list[float] = []
    while time.monotonic() < deadline:
        out.extend(getattr(s, field) for s in reader.take(0.1))
    return out


def test_out_of_range_commands_are_refused_reported_and_the_last_good_setting_stays(testbed, domain):
    with Bus(domain) as bus:
        events = bus.reader("EV_testbed", "Log")
        g1, bus8, l1 = bus.reader("G_1"), bus.reader("Bus_8"), bus.reader("L_1")
        start_slack(bus, "CB_1-8", "CB_L1")
        wait_for(g1, lambda s: abs(s.f - 60) < 0.05)

        def refused(object_id: str, field: str, value: float):
            return wait_for(
                events,
                lambda s: (
                    s.kind == "COMMAND_REJECTED"
                    and s.object_id == object_id
                    and s.field == field
                    and (s.value == value or math.isnan(value))
                ),
            )

        raw_command(bus, "G_1", f_ref=math.inf)  # caught by the IDL range
        ev = refused("G_1", "f_ref", math.inf)
        assert ev.data.topic == "Generator_Command" and ev.severity.name == "WARNING" and "inf" in ev.detail
        raw_command(bus, "G_1", f_ref=80.0)  # inside the IDL, beyond the machine's f_max
        assert "f_max" in refused("G_1", "f_ref", 80.0).detail
        raw_command(bus, "L_1", P_ref=1e12)
        refused("L_1", "P_ref", 1e12)
        raw_command(bus, "L_1", P_ref=5e4)  # beyond the load's 10 kVA rating
        assert "rating" in refused("L_1", "P_ref", 5e4).detail
        g1.take(0), bus8.take(0)  # older samples (the closure's dip) out
        frequencies = readings(g1, "f", 1.5)  # 15 s of simulated time
        voltages = readings(bus8, "Va", 0.5)
        assert frequencies and all(abs(f - 60.0) < 0.2 for f in frequencies), (min(frequencies), max(frequencies))
        assert voltages and all(v > 110.0 for v in voltages), min(voltages)
        # the testbed still obeys good commands
        bus.command("L_1", P_ref=900.0)
        wait_for(l1, lambda s: abs(s.P - 900.0) < 10)


def test_a_feeder_collapse_and_its_end_are_reported_on_the_event_log(testbed, domain):
    with Bus(domain) as bus:
        events = bus.reader("EV_testbed", "Log")
        l4 = bus.reader("L_4")
        start_slack(bus, "CB_1-6", "CB_6-7", "CB_L4")
        bus.command("L_4", P_ref=9000.0)  # past the radial feeder's collapse point
        ev = wait_for(events, lambda s: s.kind == "FEEDER_COLLAPSE")
        assert ev.severity.name == "ERROR" and ev.object_id == "L_4" and 1000 < ev.value < 7000
        sample = wait_for(l4, lambda s: 1000 < s.P < 8000)
        assert sample.P == pytest.approx(ev.value, rel=0.05)  # what arrives, not the 9 kW demanded
        bus.command("L_4", P_ref=1700.0)
        back = wait_for(events, lambda s: s.kind == "FEEDER_RESTORED")
        assert back.object_id == "L_4" and back.severity.name == "INFO"


@pytest.mark.parametrize("duration", ["3", "4"])
def test_testbed_ends_after_its_duration(env, partition, duration):
    """--duration ends the run even when the float sum of steps falls just short of it."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridbus.cli.main",
            "testbed",
            "--speed",
            "20",
            "--duration",
            duration,
            "--partition",
            partition,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
