"""Serial translators against simulated devices over real pseudo-terminals, driven over the bus."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.translators.profile import ProfileError, available, load_profile, profile_dir

CLI = [sys.executable, "-m", "gridbus.cli.main"]


class Rig:
    """device-sim + translate processes on one pty; this process is the bus side."""

    def __init__(self, profile: str, obj: str, domain: int, tmp_path) -> None:
        self.obj = obj
        self.link_id = f"LINK_{obj.replace('_', '')}"
        self.sim = subprocess.Popen([*CLI, "device-sim", profile, "--link", str(tmp_path / "tty")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        self.port = json.loads(self.sim.stdout.readline())["port"]
        self.log = tmp_path / "translate.log"
        self.translator = subprocess.Popen([*CLI, "translate", profile, "--port", self.port, "--object", obj,
                                            "--domain", str(domain), "--duration", "60"],
                                           stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True)
        assert self.translator.stdout.readline().startswith('{"ready"')
        self.bus = Bus(domain)
        self.health = self.bus.reader(self.link_id, "State")
        self.measurement = self.bus.reader(obj)
        self.state = self.bus.reader(obj, "State") if obj.startswith("G") else None
        self.bus.writer(obj, "Command").wait_for_readers(1)

    def control(self, line: str) -> None:
        self.sim.stdin.write(line + "\n")
        self.sim.stdin.flush()
        assert json.loads(self.sim.stdout.readline())["control"]

    def wait_measurement(self, predicate, timeout: float = 6.0):
        return _wait(self.measurement, predicate, timeout)

    def wait_health(self, predicate, timeout: float = 6.0):
        return _wait(self.health, predicate, timeout)

    def close(self) -> str:
        self.bus.close()
        self.translator.terminate()
        self.translator.wait(timeout=10)
        err = self.log.read_text()
        self.sim.stdin.write("quit\n")
        self.sim.stdin.flush()
        self.sim.wait(timeout=10)
        return err


def _wait(reader, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sample in reader.take(0.1):
            if predicate(sample):
                return sample
    raise AssertionError("condition not seen on the bus in time")


@pytest.fixture
def rig(domain, tmp_path, request):
    profile, obj = request.param
    r = Rig(profile, obj, domain, tmp_path)
    yield r
    r.close()


DRIVES = [("vfd-modbus", "G_2"), ("speed-controller-ascii", "G_3")]


@pytest.mark.parametrize("rig", DRIVES, indirect=True, ids=[d[0] for d in DRIVES])
def test_drive_starts_ramps_and_stops_from_bus_commands(rig):
    rig.bus.command(rig.obj, action="START", f_ref=60.0)
    _wait(rig.state, lambda s: s.status.name == "RUNNING", 4)
    sample = rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
    assert sample.speed == pytest.approx(1800.0, abs=2.0)
    rig.bus.command(rig.obj, f_ref=55.0)
    rig.wait_measurement(lambda s: abs(s.f - 55.0) < 0.05)
    rig.bus.command(rig.obj, action="STOP")
    _wait(rig.state, lambda s: s.status.name == "OFF", 4)
    health = rig.wait_health(lambda s: s.commands_applied >= 4 and s.connected)
    assert health.errors == 0 and health.poll_rate > 5


@pytest.mark.parametrize("rig", [("load-scpi", "L_2")], indirect=True, ids=["load-scpi"])
def test_scpi_load_follows_its_power_reference(rig):
    rig.bus.command("L_2", P_ref=800.0)
    rig.wait_measurement(lambda s: abs(s.P - 800.0) < 0.5)
    rig.bus.command("L_2", P_ref=1200.0, Q_ref=-150.0)
    sample = rig.wait_measurement(lambda s: abs(s.P - 1200.0) < 0.5 and abs(s.Q + 150.0) < 0.5)
    assert sample.P == pytest.approx(1200.0, abs=0.5)


@pytest.mark.parametrize("rig", [("load-scpi", "L_2"), ("vfd-modbus", "G_2"),
                                 ("speed-controller-ascii", "G_3")], indirect=True,
                         ids=["scpi", "modbus", "ascii"])
def test_a_rejected_command_is_reported_and_the_translator_carries_on(rig):
    if rig.obj.startswith("L"):
        rig.bus.command("L_2", P_ref=9999.0)             # the load's limit is 3 kW
    else:
        rig.bus.command(rig.obj, f_ref=95.0)             # the drive's limit is 70 Hz
    health = rig.wait_health(lambda s: s.commands_rejected >= 1)
    assert "rejected" in health.last_error and health.connected
    if rig.obj.startswith("L"):
        rig.bus.command("L_2", P_ref=500.0)
        rig.wait_measurement(lambda s: abs(s.P - 500.0) < 0.5)
    else:
        rig.bus.command(rig.obj, action="START", f_ref=50.0)
        rig.wait_measurement(lambda s: abs(s.f - 50.0) < 0.05)


@pytest.mark.parametrize("rig", DRIVES, indirect=True, ids=[d[0] for d in DRIVES])
@pytest.mark.parametrize("fault, kind", [("silent 1.5", "timeout"), ("garbage", "garbage"),
                                         ("corrupt", "garbage")])
def test_line_faults_are_reported_and_survived(rig, fault, kind):
    rig.bus.command(rig.obj, action="START", f_ref=60.0)
    rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
    rig.control(fault)
    health = rig.wait_health(lambda s: s.errors >= 1)
    assert health.last_error.startswith(kind), health.last_error
    rig.bus.command(rig.obj, f_ref=57.0)                 # accepted during or right after the fault
    rig.wait_measurement(lambda s: abs(s.f - 57.0) < 0.05, timeout=8)
    assert rig.translator.poll() is None


@pytest.mark.parametrize("rig", DRIVES, indirect=True, ids=[d[0] for d in DRIVES])
def test_unplugged_port_comes_back_and_the_newest_command_is_reapplied(rig):
    rig.bus.command(rig.obj, action="START", f_ref=60.0)
    rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
    rig.control("unplug 1.5")                            # the USB adapter is pulled for 1.5 s
    rig.wait_health(lambda s: not s.connected)
    rig.bus.command(rig.obj, f_ref=52.0)                 # accepted while the port is gone...
    rig.bus.command(rig.obj, f_ref=54.0)                 # ...and superseded: the newest wins
    health = rig.wait_health(lambda s: s.connected and s.reconnects >= 1, timeout=8)
    assert health.port == rig.port
    rig.wait_measurement(lambda s: abs(s.f - 54.0) < 0.05, timeout=8)
    _wait(rig.state, lambda s: s.status.name == "RUNNING", 4)


def test_every_shipped_profile_loads():
    assert set(available()) >= {"vfd-modbus", "speed-controller-ascii", "load-scpi"}
    protocols = {load_profile(name).protocol for name in available()}
    assert protocols == {"modbus-rtu", "ascii", "scpi"}


@pytest.mark.parametrize("old, new, reason", [
    ('protocol = "modbus-rtu"', 'protocol = "profibus"', "protocol 'profibus' is not known"),
    ('f_ref = { register = 0x2001, scale = 100.0', 'f_ref = { regster = 0x2001, scale = 100.0',
     "unknown key 'regster'"),
    ('parity = "E"', 'parity = "X"', "[serial] parity has a bad value"),
    ('speed = { register = 0x210C, scale = 1.0 }', 'speed = { register = 0x210C, scale = 0.0 }',
     "scale must be a number other than 0"),
    ('object = "G"', 'object = "ZZ"', "unknown object type prefix"),
    ('stop = { register = 0x2000, value = 5 }', 'stop = { send = "STOP" }', "maps it to a register"),
])
def test_malformed_profile_names_file_line_and_reason(tmp_path, old, new, reason):
    text = (profile_dir() / "vfd-modbus.toml").read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and reason in message, message
    line = int(message.split(":")[1])
    assert new.split("=")[0].strip() in path.read_text().splitlines()[line - 1]


def test_serial_bench_reports_latency_and_poll_rate(env):
    from conftest import gridbus
    proc = gridbus("bench", "serial", "--profiles", "vfd-modbus", "--bauds", "115200", "--count", "4", "--json",
                   env=env, timeout=60, check=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["baud"] == 115200 and row["confirmed"] == 4
    assert 0 < row["bus_to_line_ms_p50"] <= row["bus_to_confirmed_ms_p50"]
    assert row["poll_rate_hz"] > 0
