"""Serial translators against simulated devices over real pseudo-terminals, driven over the bus."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest

from gridbus import Bus
from gridbus.translators.profile import ProfileError, available, load_profile, profile_dir

CLI = [sys.executable, "-m", "gridbus.cli.main"]


class Rig:
    """device-sim + translate processes on one pty; this process is the bus side."""

    def __init__(
        self,
        profile: str,
        obj: str,
        domain: int,
        tmp_path,
        translator_profile: str | None = None,
        sim_args: tuple[str, ...] = (),
        objects: tuple[str, ...] = (),
        translator_args: tuple[str, ...] = (),
    ) -> None:
        """``objects``: more ``--object`` specs (``G_2:unit=2``) for a multidrop line; ``obj`` may
        carry ``:unit=N`` too."""
        obj, _, unit = obj.partition(":")
        self.obj = obj
        self.link_id = f"LINK_{obj.replace('_', '')}"
        specs = [f"{obj}:{unit}" if unit else obj, *objects]
        self.sim = subprocess.Popen(
            [*CLI, "device-sim", profile, "--link", str(tmp_path / "tty"), *sim_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.translator = None
        try:
            self.port = json.loads(self.sim.stdout.readline())["port"]
            self.log = tmp_path / "translate.log"
            self.specs, self.domain, self.translator_args = specs, domain, translator_args
            self.start_translator(translator_profile or profile)
        except BaseException:  # leave no process behind
            for proc in (self.translator, self.sim):
                if proc is not None:
                    proc.kill()
                    proc.wait(timeout=10)
            raise
        self.bus = Bus(domain)
        # every Link_State sample, not only the newest: a fault and its recovery can be 50 ms apart
        self.health = self.bus.reader(self.link_id, "State", history=256)
        self.events = self.bus.reader(f"EV_{self.link_id.replace('_', '-')}", "Log")
        self.measurement = self.bus.reader(obj)
        self.state = self.bus.reader(obj, "State", history=16) if obj.startswith("G") else None
        self.bus.writer(obj, "Command").wait_for_readers(1)

    def start_translator(self, profile: str) -> None:
        """(Re)start the translator on the simulator's port (the previous one must be ended)."""
        self.translator = subprocess.Popen(
            [
                *CLI,
                "translate",
                profile,
                "--port",
                self.port,
                *(a for spec in self.specs for a in ("--object", spec)),
                "--domain",
                str(self.domain),
                "--duration",
                "60",
                *self.translator_args,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log.open("a"),
            text=True,
        )
        assert self.translator.stdout.readline().startswith('{"ready"'), self.log.read_text()

    def raw_command(self, **values) -> None:
        """A command as any process on the domain can write it: without gridbus's checks."""
        topic = self.bus.topic_type(self.obj, "Command")
        fields = {n: info.default() for n, info in topic.fields.items() if n != "id"}
        if "action" in values:
            values["action"] = topic.fields["action"].enum[values["action"]]
        self.bus.writer(self.obj, "Command").write(topic.cls(id=self.obj, **(fields | values)))

    def control(self, line: str) -> str:
        self.sim.stdin.write(line + "\n")
        self.sim.stdin.flush()
        done = json.loads(self.sim.stdout.readline())["control"]
        assert done and not done.startswith(("unknown", "no unit")), done
        return done

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


@pytest.mark.integration
@pytest.mark.parametrize("rig", DRIVES, indirect=True, ids=[d[0] for d in DRIVES])
def test_drive_starts_ramps_and_stops_from_bus_commands(rig):
    rig.bus.command(rig.obj, action="START", f_ref=60.0)
    _wait(rig.state, lambda s: s.status.name == "RUNNING", 4)
    sample = rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
    assert sample.speed == pytest.approx(1800.0, abs=2.0)
    # what a drive does not measure is NaN ("not measured"), not 0 V / 0 A (a dead machine)
    assert all(math.isnan(getattr(sample, n)) for n in ("Va", "Vb", "Vc", "Ia", "Ib", "Ic", "Q", "angle"))
    rig.bus.command(rig.obj, f_ref=55.0)
    rig.wait_measurement(lambda s: abs(s.f - 55.0) < 0.05)
    rig.bus.command(rig.obj, action="STOP")
    _wait(rig.state, lambda s: s.status.name == "OFF", 4)
    health = rig.wait_health(lambda s: s.commands_applied >= 4 and s.connected)
    assert health.errors == 0 and health.poll_rate > 5


@pytest.mark.integration
@pytest.mark.parametrize("rig", [("load-scpi", "L_2")], indirect=True, ids=["load-scpi"])
def test_scpi_load_follows_its_power_reference(rig):
    rig.bus.command("L_2", P_ref=800.0)
    rig.wait_measurement(lambda s: abs(s.P - 800.0) < 0.5)
    rig.bus.command("L_2", P_ref=1200.0, Q_ref=-150.0)
    sample = rig.wait_measurement(lambda s: abs(s.P - 1200.0) < 0.5 and abs(s.Q + 150.0) < 0.5)
    assert sample.P == pytest.approx(1200.0, abs=0.5)


@pytest.mark.parametrize(
    "rig",
    [("load-scpi", "L_2"), ("vfd-modbus", "G_2"), ("speed-controller-ascii", "G_3")],
    indirect=True,
    ids=["scpi", "modbus", "ascii"],
)
@pytest.mark.integration
def test_a_rejected_command_is_reported_and_the_translator_carries_on(rig):
    if rig.obj.startswith("L"):
        rig.bus.command("L_2", P_ref=9999.0)  # the load's limit is 3 kW
    else:
        rig.bus.command(rig.obj, f_ref=95.0)  # the drive's limit is 70 Hz
    health = rig.wait_health(lambda s: s.commands_rejected >= 1)
    assert "rejected" in health.last_error and health.connected
    if rig.obj.startswith("L"):
        rig.bus.command("L_2", P_ref=500.0)
        rig.wait_measurement(lambda s: abs(s.P - 500.0) < 0.5)
    else:
        rig.bus.command(rig.obj, action="START", f_ref=50.0)
        rig.wait_measurement(lambda s: abs(s.f - 50.0) < 0.05)


@pytest.mark.parametrize("rig", DRIVES, indirect=True, ids=[d[0] for d in DRIVES])
@pytest.mark.parametrize("fault, kind", [("silent 1.5", "timeout"), ("garbage", "garbage"), ("corrupt", "garbage")])
@pytest.mark.integration
def test_line_faults_are_reported_and_survived(rig, fault, kind):
    rig.bus.command(rig.obj, action="START", f_ref=60.0)
    rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
    rig.control(fault)
    # on a starved machine an unrelated timeout may come first: wait for the fault's own report
    health = rig.wait_health(lambda s: s.errors >= 1 and s.last_error.startswith(kind))
    assert health.last_error.startswith(kind), health.last_error
    rig.bus.command(rig.obj, f_ref=57.0)  # accepted during or right after the fault
    rig.wait_measurement(lambda s: abs(s.f - 57.0) < 0.05, timeout=8)
    # once the line works again, last_error says so (the counters keep the history)
    rig.wait_health(lambda s: s.connected and s.last_error == "" and s.errors >= 1)
    assert rig.translator.poll() is None


@pytest.mark.integration
@pytest.mark.parametrize("rig", DRIVES, indirect=True, ids=[d[0] for d in DRIVES])
def test_unplugged_port_comes_back_and_the_newest_command_is_reapplied(rig):
    rig.bus.command(rig.obj, action="START", f_ref=60.0)
    rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
    rig.control("unplug 1.5")  # the USB adapter is pulled for 1.5 s
    down = rig.wait_health(lambda s: not s.connected)
    _wait(rig.state, lambda s: s.status.name == "FAULT", 4)  # State shows the link is down
    # the whole reason, not a fragment of the port's path (Link_State.port names the port)
    reasons = [down.last_error] + [s.last_error for s in rig.health.take(1.0)]
    assert any(r.startswith("port: ") and r.endswith(")") and "errno" in r for r in reasons), reasons
    rig.bus.command(rig.obj, f_ref=52.0)  # accepted while the port is gone...
    rig.bus.command(rig.obj, f_ref=54.0)  # ...and superseded: the newest wins
    health = rig.wait_health(lambda s: s.connected and s.reconnects >= 1, timeout=8)
    assert health.port == rig.port
    rig.wait_measurement(lambda s: abs(s.f - 54.0) < 0.05, timeout=8)
    _wait(rig.state, lambda s: s.status.name == "RUNNING", 4)


def test_every_shipped_profile_loads():
    assert set(available()) >= {"vfd-modbus", "speed-controller-ascii", "load-scpi"}
    protocols = {load_profile(name).protocol for name in available()}
    assert protocols == {"modbus-rtu", "ascii", "scpi"}


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ('protocol = "modbus-rtu"', 'protocol = "profibus"', "protocol 'profibus' is not known"),
        (
            "f_ref = { address = 0x2001, scale = 100.0",
            "f_ref = { adress = 0x2001, scale = 100.0",
            "unknown key 'adress'",
        ),
        ('parity = "E"', 'parity = "X"', "[serial] parity has a bad value"),
        (
            "speed = { address = 0x210C, scale = 1.0 }",
            "speed = { address = 0x210C, scale = 0.0 }",
            "scale must be a finite number other than 0",
        ),
        (
            "speed = { address = 0x210C, scale = 1.0 }",
            "speed = { address = 0x210C, scale = nan }",
            "scale must be a finite number other than 0, got nan",
        ),
        (
            "f_ref = { address = 0x2001, scale = 100.0",
            "f_ref = { address = 0x2001, scale = inf",
            "scale must be a finite number other than 0, got inf",
        ),
        (
            "f_ref = { address = 0x2001, scale = 100.0",
            "f_ref = { address = 0x1FFFFF, scale = 100.0",
            "address must be an integer 0..65535",
        ),
        (
            "fault = { address = 0x2100, bit = 3 }",
            "fault = { address = 0x2100, bit = 16 }",
            "bit must be an integer 0..15",
        ),
        ("unit = 1 ", "unit = 300 ", "unit 300 is not a Modbus device id: use 1..247"),
        ("min = 0.0, max = 70.0", "min = 70.0, max = 0.0", "min 70 is above max 0"),
        (
            "f_ref = { address = 0x2001, scale = 100.0",
            "f_rf = { address = 0x2001, scale = 100.0",
            "[commands] f_rf: not a command of G_x objects; known: f_ref, P_ref, V_ref, start, stop, synchronize",
        ),
        (
            "speed = { address = 0x210C, scale = 1.0 }",
            "rpm = { address = 0x210C, scale = 1.0 }",
            "[status] rpm: not a status value of G_x objects",
        ),
        ('object = "G"', 'object = "ZZ"', "unknown object type prefix"),
        ("stop = { address = 0x2000, value = 5 }", 'stop = { send = "STOP" }', "maps it to a register"),
    ],
)
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


@pytest.mark.integration
def test_serial_bench_reports_latency_and_poll_rate(env):
    from helpers import gridbus

    proc = gridbus(
        "bench",
        "serial",
        "--profiles",
        "vfd-modbus",
        "--bauds",
        "115200",
        "--count",
        "4",
        "--json",
        env=env,
        timeout=60,
        check=True,
    )
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["baud"] == 115200 and row["confirmed"] == 4
    assert 0 < row["bus_to_line_ms_p50"] <= row["bus_to_confirmed_ms_p50"]
    assert row["poll_rate_hz"] > 0


def _profile_copy(tmp_path, name: str, *edits: tuple[str, str], base: str = "vfd-modbus") -> str:
    """A shipped profile with some lines changed, as a file (for the device or the translator)."""
    text = (profile_dir() / f"{base}.toml").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def _events(rig, kind: str, timeout: float = 4.0) -> list:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not any(e.kind == kind for e in seen):
        seen += rig.events.take(0.1)
    return [e for e in seen if e.kind == kind]


@pytest.mark.integration
def test_out_of_range_commands_are_refused_whole_and_reported(domain, tmp_path):
    # the profile's P_ref limit is wrong (10 MW): the 16-bit register still refuses what does not fit
    wrong = _profile_copy(tmp_path, "vfd-wrong-limit", ("max = 13800.0", "max = 1e7"))
    rig = Rig(wrong, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=55.0)
        rig.wait_measurement(lambda s: abs(s.f - 55.0) < 0.05)
        applied = rig.wait_health(lambda s: s.commands_applied == 2).commands_applied
        rig.raw_command(f_ref=700.0)  # beyond the IDL's 0..100 Hz: was written as 4464
        health = rig.wait_health(lambda s: s.commands_rejected == 1)
        assert health.last_error == (
            "f_ref=700 rejected: G_2.f_ref (Generator_Command): 700.0 is above the maximum 100 Hz"
        ), health.last_error
        rig.raw_command(action="STOP", f_ref=math.inf)  # one bad field refuses the whole command
        rig.bus.command("G_2", f_ref=95.0)  # within the IDL, beyond the drive's 70 Hz
        rig.bus.command("G_2", P_ref=1e6)  # 1e6 x 0.0724638 = 72464 > 65535
        health = rig.wait_health(lambda s: s.commands_rejected == 4)
        assert "does not fit the uint16 register" in health.last_error and health.connected
        rejected = _events(rig, "COMMAND_REJECTED")
        deadline = time.monotonic() + 4
        while len(rejected) < 4 and time.monotonic() < deadline:
            rejected += [e for e in rig.events.take(0.1) if e.kind == "COMMAND_REJECTED"]
        assert [(e.field, e.value) for e in rejected] == [
            ("f_ref", 700.0),
            ("f_ref", math.inf),
            ("f_ref", 95.0),
            ("P_ref", 1e6),
        ]
        assert all(e.object_id == "G_2" and e.data.topic == "Generator_Command" for e in rejected)  # .topic: Event_Log
        time.sleep(0.5)  # the drive still runs at the last good 55 Hz
        latest = rig.measurement.take(0.5)[-1]
        assert latest.f == pytest.approx(55.0, abs=0.05)
        assert rig.wait_health(lambda s: True).commands_applied == applied
    finally:
        rig.close()


@pytest.mark.integration
def test_the_last_good_setting_survives_a_refusal_and_a_power_cycle(domain, tmp_path):
    # the translator's profile allows 90 Hz, the drive itself only 70: the device refuses 80
    wide = _profile_copy(tmp_path, "vfd-wide", ("min = 0.0, max = 70.0", "min = 0.0, max = 90.0"))
    rig = Rig("vfd-modbus", "G_2", domain, tmp_path, translator_profile=wide)
    try:
        rig.bus.command("G_2", action="START", f_ref=55.0)  # good
        rig.wait_measurement(lambda s: abs(s.f - 55.0) < 0.05)
        rig.raw_command(f_ref=700.0)  # refused by the translator
        rig.bus.command("G_2", f_ref=80.0)  # refused by the device
        health = rig.wait_health(lambda s: s.commands_rejected == 2)
        assert "the device refused it" in health.last_error
        rig.control("power 1.5")  # the drive forgets everything
        rig.wait_health(lambda s: not s.connected)
        rig.wait_health(lambda s: s.connected and s.reconnects == 1, timeout=8)
        rig.wait_measurement(lambda s: abs(s.f - 55.0) < 0.05, timeout=8)
        time.sleep(0.5)  # settled there, not passing by on the way to 60
        assert rig.measurement.take(0.5)[-1].f == pytest.approx(55.0, abs=0.05)
    finally:
        rig.close()


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_ends_like_sigint_link_state_says_disconnected(domain, tmp_path, signum):
    rig = Rig("vfd-modbus", "G_2", domain, tmp_path)
    try:
        rig.wait_health(lambda s: s.connected and s.poll_rate > 0)
        rig.translator.send_signal(signum)
        rig.wait_health(lambda s: not s.connected)
        _wait(rig.state, lambda s: s.status.name == "FAULT", 4)  # nobody watches the drive now
        assert rig.translator.wait(timeout=10) == 0
        assert json.loads(rig.translator.stdout.read().strip().splitlines()[-1])["done"]["connected"] is False
    finally:
        rig.close()


@pytest.mark.integration
@pytest.mark.parametrize("rig", [("speed-controller-ascii", "G_3")], indirect=True, ids=["ascii"])
def test_command_fields_the_profile_does_not_map_are_reported_once_at_start(rig):
    events = _events(rig, "COMMANDS_UNMAPPED")
    assert len(events) == 1
    for name in ("P_ref", "V_ref", "mode", "action=SYNCHRONIZE"):
        assert name in events[0].detail
    assert "f_ref" not in events[0].detail and "START" not in events[0].detail
    assert "maps no" in rig.log.read_text()


@pytest.mark.integration
def test_status_registers_far_apart_are_read_in_blocks(domain, tmp_path):
    far = _profile_copy(tmp_path, "vfd-far", ("speed = { address = 0x210C", "speed = { address = 0x2300"))
    rig = Rig(far, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=60.0)
        sample = rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
        assert sample.speed == pytest.approx(1800.0, abs=2.0)
        assert rig.wait_health(lambda s: s.poll_rate > 5).errors == 0
    finally:
        rig.close()


def test_last_error_is_clipped_between_characters():
    from gridbus.translators.translator import clip_utf8

    text = "rejected: " + "é" * 100  # 210 bytes in UTF-8
    clipped = clip_utf8(text)
    assert len(clipped.encode()) <= 128 and clipped.endswith("\u2026") and clipped.startswith("rejected: é")
    assert clip_utf8("short") == "short"
    assert clip_utf8("/" + "ü" * 100, keep_end=True).encode().decode() == "ü" * 64


def test_register_words_are_refused_not_wrapped():
    from gridbus.translators.modbus import command_words
    from gridbus.translators.profile import CommandMap
    from gridbus.translators.protocols import OutOfRange, check_value
    from gridbus.translators.registers import ValueDoesNotFit

    f_ref = CommandMap("f_ref", address=0x2001, scale=100.0, min=0.0, max=1000.0)  # limits set too wide
    assert command_words(f_ref, 60.0) == [6000]
    with pytest.raises(OutOfRange, match="does not fit the uint16 register"):
        check_value(f_ref, 700.0, "modbus-rtu")  # 70000 was sent as 4464
    q_ref = CommandMap("Q_ref", address=0x2003, scale=1.0, min=-1500.0, max=1500.0)  # signed
    assert command_words(q_ref, -5.0) == [0xFFFB]
    unsaid = CommandMap("P_ref", address=0x2002, scale=1.0)  # no min: signed, 40000 refused
    with pytest.raises(ValueDoesNotFit):
        command_words(unsaid, 40000.0)
    with pytest.raises(OutOfRange, match="not finite"):
        check_value(f_ref, math.nan, "ascii")
