"""Controller state machines against the testbed process: transitions on the bus, stale data."""
from __future__ import annotations

import subprocess
import sys
import time


from gridbus import Bus
from gridbus.control.generators import PowerStartup, SlackStartup
from gridbus.control.view import GridView
from gridbus.testbed.service import SimClock

SPEED = 10.0


def start_testbed(domain: int, clock: SimClock) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "gridbus.cli.main", "testbed", "--domain", str(domain),
                             "--speed", str(SPEED), "--epoch", repr(clock.epoch), "--duration", "900"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    clock = SimClock(time.time(), SPEED)
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
        assert commands.take(0.5) == []                      # it never tried to close the breaker


def test_every_transition_is_published_and_stale_data_stops_the_synchronizer(domain):
    clock = SimClock(time.time() + 1.5, SPEED)
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
            testbed.kill()                                   # the plant falls silent mid-synchronization
            testbed.wait(timeout=10)
            run_until([unit], view, lambda: unit.finished, timeout=5)
            assert unit.stage == "FAULT" and "deadline missed" in unit.reason
            assert breaker_commands.take(0.5) == []          # it did not close on old data
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
