"""Controller state machines against the testbed process: transitions on the bus, stale data,
and simulated time read from the testbed's data (a starved testbed slows it, never makes it jump)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.control.clock import DataClock
from gridbus.control.generators import PowerStartup, SlackStartup
from gridbus.control.view import GridView, StaleMeasurement

pytestmark = pytest.mark.integration  # joins DDS or starts processes

SPEED = 10.0


def start_testbed(domain: int, clock: DataClock) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridbus.cli.main",
            "testbed",
            "--domain",
            str(domain),
            "--speed",
            str(SPEED),
            "--epoch",
            repr(clock.epoch),
            "--duration",
            "900",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith('{"ready"'), proc.stderr.read()
    return proc


def run_until(machines, view: GridView, done, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        view.update()
        for machine in machines:
            machine.tick(view)
        time.sleep(0.02)


def test_a_sequence_without_measurements_stops_in_fault_and_says_why(domain):
    clock = DataClock(time.time(), SPEED)
    with Bus(domain) as bus:
        watcher = bus.reader("CTRL_G1", "State")
        view = GridView(clock, stale_after=2.0).attach(bus)
        slack = SlackStartup(bus, clock, "G_1", "CB_G1")
        commands = bus.reader("CB_G1", "Command")
        slack.start()
        run_until([slack], view, lambda: slack.finished, timeout=5)
        assert slack.stage == "FAULT" and "no measurement received from G_1" in slack.reason
        stages = [s.stage for s in watcher.take(2.0)]
        deadline = time.monotonic() + 3
        while "FAULT" not in stages and time.monotonic() < deadline:
            stages += [s.stage for s in watcher.take(0.2)]
        assert stages[:3] == ["IDLE", "SET_SPEED", "STARTING"] and stages[-1] == "FAULT"
        assert commands.take(0.5) == []  # it never tried to close the breaker


def test_every_transition_is_published_and_stale_data_stops_the_synchronizer(domain):
    clock = DataClock(time.time() + 1.5, SPEED)
    testbed = start_testbed(domain, clock)
    try:
        with Bus(domain) as bus:
            log = bus.reader("CTRL", "State")
            view = GridView(clock, stale_after=1.0).attach(bus)
            slack = SlackStartup(bus, clock, "G_1", "CB_G1")
            slack.start()
            run_until([slack], view, lambda: slack.finished)
            assert slack.stage == "READY", slack.reason
            bus.command("CB_1-2", status="CLOSED")
            unit = PowerStartup(bus, clock, "G_2", "CB_G2", "PMU_2", 300.0)
            breaker_commands = bus.reader("CB_G2", "Command")
            unit.start()
            run_until([unit], view, lambda: unit.stage == "SYNCHRONIZING")
            assert unit.stage == "SYNCHRONIZING", unit.reason
            testbed.kill()  # the plant falls silent mid-synchronization
            testbed.wait(timeout=10)
            run_until([unit], view, lambda: unit.finished, timeout=5)
            # its clock stopped with it: only the wall clock can tell, after view.silence seconds
            assert unit.stage == "FAULT" and "no data from the testbed" in unit.reason, unit.reason
            assert breaker_commands.take(0.5) == []  # it did not close on old data
            published: dict[str, list[str]] = {}
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and published.get("CTRL_G2", [""])[-1] != "FAULT":
                for s in log.take(0.2):
                    published.setdefault(s.id, []).append(s.stage)
            assert published["CTRL_G1"] == ["IDLE", "SET_SPEED", "STARTING", "CONNECTING", "READY"]
            assert published["CTRL_G2"] == ["IDLE", "STARTING", "SYNCHRONIZING", "FAULT"]
            assert published["CTRL_sync-G2"][-1] == "FAULT"
    finally:
        if testbed.poll() is None:
            testbed.kill()
            testbed.wait(timeout=10)


def test_a_frozen_testbed_slows_simulated_time_instead_of_making_it_jump(domain):
    """SIGSTOP the testbed for 1 s (10 simulated s at x10), as CPU starvation would.

    Simulated time is what the data says: it must resume where it stopped (no
    10 s jump), and a controller watching meanwhile must not call the data stale.
    """
    clock = DataClock(time.time() + 1.0, SPEED)
    testbed = start_testbed(domain, clock)
    try:
        with Bus(domain) as bus:
            view = GridView(clock, stale_after=1.0).attach(bus)
            g1 = bus.reader("G_1")
            slack = SlackStartup(bus, clock, "G_1", "CB_G1")
            slack.start()
            run_until([slack], view, lambda: slack.finished)
            assert slack.stage == "READY", slack.reason
            times = [clock.sim_time(s.source_time) for s in g1.take(0)]
            os.kill(testbed.pid, signal.SIGSTOP)
            try:
                frozen_until = time.monotonic() + 1.0
                while time.monotonic() < frozen_until:
                    view.update()
                    view.value("G_1", "f")  # raises StaleMeasurement if judged stale
                    times += [clock.sim_time(s.source_time) for s in g1.take(0)]
                    time.sleep(0.02)
            finally:
                os.kill(testbed.pid, signal.SIGCONT)
            resumed_until = time.monotonic() + 1.0
            while time.monotonic() < resumed_until:
                view.update()
                times += [clock.sim_time(s.source_time) for s in g1.take(0)]
                time.sleep(0.02)
            assert len(times) > 20 and times == sorted(times)
            # one tick of the testbed is 0.1 simulated s at x10 (two at most when it is late);
            # with wall-clock time the freeze would show as a 10 s gap
            assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 1.0
            assert times[-1] - times[0] < 2.0 * SPEED  # 2 s of wall time passed, 1 s of it frozen
            view.value("G_1", "f")
            testbed.kill()
            testbed.wait(timeout=10)
            with pytest.raises(StaleMeasurement, match="no data from the testbed"):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    view.update()
                    view.value("G_1", "f")
                    time.sleep(0.05)
    finally:
        if testbed.poll() is None:
            os.kill(testbed.pid, signal.SIGCONT)
            testbed.kill()
            testbed.wait(timeout=10)


def test_a_measurement_is_stale_when_the_rest_of_the_data_moved_on_without_it(domain):
    """Staleness in simulated time: G_2 falls silent while G_1 goes on (stamps in the time base)."""
    clock = DataClock(time.time(), SPEED)
    with Bus(domain) as bus:
        view = GridView(clock, stale_after=2.0).attach(bus, measured=("G",), stateful=())
        # offer the testbed's deadline (its publishing period): the view asks for a tight one
        g1, g2 = bus.writer("G_1", deadline=0.01), bus.writer("G_2", deadline=0.01)
        assert g1.wait_for_readers(1) and g2.wait_for_readers(1)
        for t in (0.0, 0.5, 1.0):
            g1.write(f=60.0, timestamp=clock.stamp(t))
            g2.write(f=60.0, timestamp=clock.stamp(t))
        for t in (1.5, 2.0, 2.5, 3.0, 3.5):  # G_2 silent from 1.0 s on
            g1.write(f=60.0, timestamp=clock.stamp(t))
        deadline = time.monotonic() + 5
        while clock.now() < 3.5 - 1e-6 and time.monotonic() < deadline:
            view.update()
            time.sleep(0.02)
        assert clock.now() == pytest.approx(3.5)
        assert view.value("G_1", "f") == 60.0
        assert view.age("G_2") == pytest.approx(2.5)
        with pytest.raises(StaleMeasurement, match=r"G_2 measurement is 2.5 s old \(limit 2 s\)"):
            view.value("G_2", "f")
        assert math.isinf(view.age("G_3"))
        # a writer on another time base (wall-clock stamps, another testbed) cannot make time jump
        bus.writer("G_3", deadline=0.01).write(f=60.0, timestamp=clock.stamp(1000.0))
        deadline = time.monotonic() + 5
        while not clock.foreign and time.monotonic() < deadline:
            view.update()
            time.sleep(0.02)
        assert clock.foreign == {"G_3": 1} and clock.now() == pytest.approx(3.5)
        assert math.isinf(view.age("G_3"))  # and the view does not use it


def test_a_controller_says_testbed_gone_when_the_testbed_leaves(domain):
    clock = DataClock(time.time() + 1.0, SPEED)
    testbed = start_testbed(domain, clock)
    try:
        with Bus(domain) as bus:
            view = GridView(clock, silence=30.0).attach(bus)  # silence alone would take 30 s
            slack = SlackStartup(bus, clock, "G_1", "CB_G1")
            slack.start()
            run_until([slack], view, lambda: slack.finished)
            assert slack.stage == "READY", slack.reason
            testbed.terminate()  # exits cleanly: its writers leave
            testbed.wait(timeout=10)
            with pytest.raises(StaleMeasurement, match="G_1 measurement: testbed gone"):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    view.update()
                    view.value("G_1", "f")
                    time.sleep(0.05)
    finally:
        if testbed.poll() is None:
            testbed.kill()
            testbed.wait(timeout=10)
