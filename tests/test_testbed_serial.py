"""Controller → bus → translator → serial line → the testbed's simulated drive, as in the lab."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.control.generators import SlackStartup
from gridbus.control.view import GridView
from gridbus.testbed.service import SimClock

CLI = [sys.executable, "-m", "gridbus.cli.main"]
SPEED = 5.0


@pytest.mark.integration
def test_slack_startup_through_a_modbus_drive(domain, tmp_path):
    clock = SimClock(time.time() + 1.0, SPEED)
    drives = tmp_path / "drives"
    testbed = subprocess.Popen(
        [
            *CLI,
            "testbed",
            "--domain",
            str(domain),
            "--speed",
            str(SPEED),
            "--epoch",
            repr(clock.epoch),
            "--duration",
            "300",
            "--serial-drives",
            str(drives),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    translators = []
    try:
        ready = json.loads(testbed.stdout.readline())["ready"]
        assert set(ready["serial_drives"]) == {"G_1", "G_2", "G_3", "G_4"}
        for gid in ("G_1",):
            translators.append(
                subprocess.Popen(
                    [
                        *CLI,
                        "translate",
                        ready["drive_profile"],
                        "--port",
                        ready["serial_drives"][gid],
                        "--object",
                        gid,
                        "--no-state",
                        "--no-measurement",
                        "--domain",
                        str(domain),
                        "--duration",
                        "60",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            assert translators[-1].stdout.readline().startswith('{"ready"')
        with Bus(domain) as bus:
            link = bus.reader("LINK_G1", "State")
            view = GridView(clock).attach(bus)
            g3 = bus.reader("G_3", "State")
            bus.writer("G_1", "Command").wait_for_readers(2)  # the testbed and the translator
            # a start sent straight to G_3 is not obeyed: its drive (with no translator) owns it
            bus.command("G_3", action="START", f_ref=60.0)
            slack = SlackStartup(bus, clock, "G_1", "CB_G1")
            slack.start()
            deadline = time.monotonic() + 20
            while not slack.finished and time.monotonic() < deadline:
                view.update()
                slack.tick(view)
                time.sleep(0.02)
            assert slack.stage == "READY", slack.reason
            assert abs(view.value("G_1", "f") - 60.0) < 0.1
            health = None
            for sample in link.take(1.0):
                health = sample
            assert health is not None and health.connected and health.commands_applied >= 2
            assert health.errors == 0
            assert {s.status.name for s in g3.take(0.5)} == {"OFF"}
    finally:
        for proc in translators:
            proc.terminate()
            proc.wait(timeout=10)
        testbed.terminate()
        testbed.wait(timeout=10)
    assert not any(drives.iterdir()), "the testbed leaves no pty links behind"


def test_a_drive_command_beyond_the_machine_rating_is_refused_and_reported(tmp_path):
    """The vfd-modbus profile accepts 13.8 kW, G_3 is rated 10.4 kVA: the plant refuses it."""
    from gridbus.testbed.drives import SerialDrives
    from gridbus.testbed.plant import Plant
    from gridbus.testbed.system import load_system

    plant = Plant(load_system())
    refused = []
    drives = SerialDrives(plant, tmp_path / "drives", on_reject=refused.append)
    try:
        drives._command("G_3", "P_ref", 12000.0)  # what the Modbus line delivered
        drives._command("G_3", "P_ref", 5000.0)
        drives.apply(plant)
    finally:
        drives.close()
    assert [(r.object_id, r.field, r.value) for r in refused] == [("G_3", "P_ref", 12000.0)]
    assert plant.machines["G_3"].P_ref == 5000.0
