"""Real drives' needs, as profile features: fault reset, control-word bits, direction, FC16-only
writes, 32-bit and float values, FC4 reads, several drives on one line, the watchdog heartbeat and
resync after a reboot, and what the bus learns (fault code, at-speed, read-backs).  Each runs the
device simulator and the translator as processes on a real pty, driven over the bus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_translators import Rig, _events, _profile_copy, _wait

ACS = "drive-acs-like"


def _state(rig, predicate, timeout: float = 6.0, obj_reader=None):
    return _wait(obj_reader or rig.state, predicate, timeout)


@pytest.mark.integration
def test_reset_clears_a_drive_fault_and_the_bus_sees_the_fault_code(domain, tmp_path):
    rig = Rig(ACS, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=50.0)
        running = _state(rig, lambda s: s.status.name == "RUNNING" and s.at_speed)
        assert running.fault_code == 0 and running.f_ref_applied == pytest.approx(50.0, abs=0.01)
        for code in (2310, 7121):  # twice: the reset bit was cleared after its pulse (an edge again)
            rig.control(f"fault on {code}")
            tripped = _state(rig, lambda s, c=code: s.status.name == "FAULT" and s.fault_code == c)
            assert not tripped.at_speed
            # the control word keeps START's bits: stop first, or the drive runs again after the reset
            rig.bus.command("G_2", action="STOP")
            rig.bus.command("G_2", action="RESET")
            _state(rig, lambda s: s.status.name == "OFF" and s.fault_code == 0)
            rig.bus.command("G_2", action="START")
            _state(rig, lambda s: s.status.name == "RUNNING")
        health = rig.wait_health(lambda s: s.commands_applied >= 8)
        assert health.commands_rejected == 0 and health.resyncs == 0
    finally:
        rig.close()


@pytest.mark.integration
def test_a_level_reset_is_a_whole_word_written_once(domain, tmp_path):
    with_reset = _profile_copy(
        tmp_path,
        "vfd-reset",
        (
            "stop = { address = 0x2000, value = 5 }",
            "stop = { address = 0x2000, value = 5 }\nreset = { address = 0x2000, value = 7 }",
        ),
    )
    rig = Rig(with_reset, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=50.0)
        _state(rig, lambda s: s.status.name == "RUNNING")
        rig.control("fault on 3")
        _state(rig, lambda s: s.status.name == "FAULT")
        rig.bus.command("G_2", action="START")  # refused while tripped: a reset is needed
        rig.wait_health(lambda s: s.commands_rejected == 1)
        _writes(rig)  # what the drive got so far: not the reset's
        rig.bus.command("G_2", action="RESET")
        _state(rig, lambda s: s.status.name == "OFF")
        assert _writes(rig) == [[1, 0x2000, [7]]]  # the whole reset word, once; no other write with it
        rig.bus.command("G_2", action="START")
        _state(rig, lambda s: s.status.name == "RUNNING")
        assert [w for w in _writes(rig) if w[1] == 0x2000] == [[1, 0x2000, [1]]]  # START's word, no repeated reset
    finally:
        rig.close()


def _writes(rig) -> list[list]:
    """The register writes the simulated drive received since the last call, as ``[unit, address, words]``."""
    done = rig.control("writes")
    assert done.startswith("writes "), done
    return json.loads(done.removeprefix("writes "))


@pytest.mark.integration
def test_start_sets_its_bits_without_clearing_reverse_or_the_held_bit(domain, tmp_path):
    rig = Rig(ACS, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", direction="REVERSE")
        _state(rig, lambda s: s.direction.name == "REVERSE")
        rig.bus.command("G_2", action="START", f_ref=40.0)
        sample = _state(rig, lambda s: s.status.name == "RUNNING" and s.at_speed)
        assert sample.direction.name == "REVERSE"  # START kept bit 11
        rig.bus.command("G_2", action="STOP")
        _state(rig, lambda s: s.status.name == "OFF")
        rig.bus.command("G_2", direction="FORWARD", action="START")
        sample = _state(rig, lambda s: s.status.name == "RUNNING" and s.direction.name == "FORWARD")
        assert rig.wait_health(lambda s: True).commands_rejected == 0  # bit 10 held in every write
    finally:
        rig.close()


@pytest.mark.integration
def test_a_control_word_without_its_held_bit_is_refused_by_the_drive(domain, tmp_path):
    careless = _profile_copy(
        tmp_path,
        "acs-no-hold",
        ("control = { register = 400001, hold = [10] }", "control = { register = 400001 }"),
        base=ACS,
    )
    rig = Rig(ACS, "G_2", domain, tmp_path, translator_profile=careless)
    try:
        rig.bus.command("G_2", action="START")
        health = rig.wait_health(lambda s: s.commands_rejected == 1)
        assert "the device refused it (modbus illegal data value)" in health.last_error
    finally:
        rig.close()


@pytest.mark.integration
def test_an_fc16_only_drive_refuses_fc6_and_takes_fc16(domain, tmp_path):
    fc6 = _profile_copy(tmp_path, "acs-fc6", ("write_function = 16", "write_function = 6"), base=ACS)
    rig = Rig(ACS, "G_2", domain, tmp_path, translator_profile=fc6)
    try:
        rig.bus.command("G_2", f_ref=45.0)
        health = rig.wait_health(lambda s: s.commands_rejected == 1)
        assert "illegal function" in health.last_error
    finally:
        rig.close()
    rig = Rig(ACS, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", f_ref=45.0, action="START")
        _state(rig, lambda s: s.status.name == "RUNNING" and s.f_ref_applied == pytest.approx(45.0, abs=0.01))
    finally:
        rig.close()


FLOAT_MAPS = {
    # f_ref as float32 (high word first), P as uint32 (low word first), the fault code from an
    # input register (function 4), addresses given as 0-based PDU addresses
    "float32-big": (
        (
            'f_ref = { register = 400002, type = "int16", scale = 333.33333',
            'f_ref = { address = 200, type = "float32", scale = 1.0',
        ),
        (
            'f_ref_applied = { register = 400002, type = "int16", scale = 333.33333 }',
            'f_ref_applied = { address = 200, type = "float32" }',
        ),
        (
            'P = { register = 400106, type = "int32", word_order = "little", scale = 10.0 }',
            'P = { register = 400106, type = "uint32", word_order = "little", scale = 10.0 }',
        ),
        ("fault_code = { register = 400401 }", "fault_code = { register = 300401 }"),
    ),
    "float32-little": (
        (
            'f_ref = { register = 400002, type = "int16", scale = 333.33333',
            'f_ref = { address = 200, type = "float32", word_order = "little", scale = 1.0',
        ),
        (
            'f_ref_applied = { register = 400002, type = "int16", scale = 333.33333 }',
            'f_ref_applied = { address = 200, type = "float32", word_order = "little" }',
        ),
        ("fault_code = { register = 400401 }", 'fault_code = { address = 400, table = "input" }'),
    ),
}


@pytest.mark.integration
@pytest.mark.parametrize("variant", list(FLOAT_MAPS))
def test_32_bit_and_float_values_and_input_registers(domain, tmp_path, variant):
    profile = _profile_copy(tmp_path, f"acs-{variant}", *FLOAT_MAPS[variant], base=ACS)
    rig = Rig(profile, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=50.25, P_ref=6900.0)
        sample = _state(rig, lambda s: s.status.name == "RUNNING" and s.at_speed)
        assert sample.f_ref_applied == pytest.approx(50.25, abs=1e-4)  # a float, not 0.01 Hz steps
        measured = rig.wait_measurement(lambda s: s.P > 0 and abs(s.f - 50.25) < 0.01)
        assert measured.P == pytest.approx(6900.0, abs=1.0) and measured.f == pytest.approx(50.25, abs=0.01)
        rig.control("fault on 70000")  # beyond 16 bits: the simulated uint16 register saturates
        _state(rig, lambda s: s.status.name == "FAULT" and s.fault_code == 65535)
    finally:
        rig.close()


@pytest.mark.integration
def test_several_drives_share_one_line_each_with_its_own_link_state(domain, tmp_path):
    rig = Rig(
        ACS,
        "G_1:unit=1",
        domain,
        tmp_path,
        sim_args=("--units", "1,2,4"),
        objects=("G_2:unit=2", "G_4:unit=4", "G_5:unit=5"),  # no unit 5 on the line
    )
    readers = {g: rig.bus.reader(g, "State", history=16) for g in ("G_2", "G_4")}
    readers["G_1"] = rig.state
    health5 = rig.bus.reader("LINK_G5", "State", history=64)
    try:
        for n, g in enumerate(("G_1", "G_2", "G_4")):
            rig.bus.command(g, action="START", f_ref=40.0 + 5 * n)
        for n, g in enumerate(("G_1", "G_2", "G_4")):
            _wait(
                readers[g],
                lambda s, n=n: (
                    s.status.name == "RUNNING"
                    and s.at_speed
                    and s.f_ref_applied == pytest.approx(40.0 + 5 * n, abs=0.01)
                ),
                15,
            )
        rig.control("@2 fault on 9")  # one drive trips; the others run on
        _wait(readers["G_2"], lambda s: s.status.name == "FAULT" and s.fault_code == 9, 6)
        assert rig.wait_measurement(lambda s: abs(s.f - 40.0) < 0.05).id == "G_1"  # G_1 runs on
        rig.bus.command("G_2", action="RESET")
        _wait(readers["G_2"], lambda s: s.fault_code == 0, 6)
        lost = _wait(health5, lambda s: not s.connected and s.last_error.startswith("timeout"), 8)
        assert lost.port == rig.port
        for g in ("G_1", "G_2", "G_4"):
            link = _wait(rig.bus.reader(f"LINK_{g.replace('_', '')}", "State"), lambda s: True, 4)
            assert link.connected and link.object_id == g and link.poll_rate > 0
    finally:
        rig.close()


@pytest.mark.integration
def test_different_drives_share_one_line_each_with_its_own_profile(domain, tmp_path):
    rig = Rig(
        ACS,
        "G_1:unit=1",
        domain,
        tmp_path,
        sim_args=("--units", "1,3", "--unit-profile", "3=vfd-modbus", "--baud", "19200"),
        objects=("G_3:unit=3,profile=vfd-modbus",),
        translator_args=("--baud", "19200"),
    )
    g3 = rig.bus.reader("G_3", "State", history=16)
    try:
        rig.bus.command("G_1", action="START", f_ref=45.0, direction="REVERSE")  # bits of a control word
        rig.bus.command("G_3", action="START", f_ref=55.0)  # whole words, by function 6
        _state(rig, lambda s: s.status.name == "RUNNING" and s.direction.name == "REVERSE" and s.at_speed)
        _wait(g3, lambda s: s.status.name == "RUNNING", 6)
        assert rig.wait_measurement(lambda s: abs(s.f - 45.0) < 0.05).id == "G_1"
        link3 = _wait(rig.bus.reader("LINK_G3", "State"), lambda s: s.connected and s.commands_applied >= 2, 6)
        assert link3.profile == "vfd-modbus" and link3.commands_rejected == 0
    finally:
        rig.close()


@pytest.mark.integration
def test_heartbeats_are_written_and_a_rebooted_drive_gets_its_settings_again(domain, tmp_path):
    rig = Rig(ACS, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=50.0, direction="REVERSE")
        rig.wait_measurement(lambda s: abs(s.f - 50.0) < 0.05)
        rig.wait_health(lambda s: s.heartbeats >= 3)
        rig.control("reboot 0")  # back at once, at its defaults: stopped, 60 Hz reference
        health = rig.wait_health(lambda s: s.resyncs >= 1)
        assert health.connected and health.reconnects == 0
        events = _events(rig, "DEVICE_RESYNC")
        assert events and "f_ref reads back 60, not 50" in events[0].detail
        _state(rig, lambda s: s.status.name == "RUNNING" and s.direction.name == "REVERSE" and s.at_speed)
        assert rig.wait_measurement(lambda s: abs(s.f - 50.0) < 0.05).f == pytest.approx(50.0, abs=0.05)
    finally:
        rig.close()


@pytest.mark.integration
def test_a_drive_trips_when_its_heartbeat_stops_and_a_reset_clears_it(domain, tmp_path):
    rig = Rig(ACS, "G_2", domain, tmp_path)
    try:
        rig.wait_health(lambda s: s.heartbeats >= 2)  # the drive's watchdog is armed
        rig.translator.terminate()
        rig.translator.wait(timeout=10)
        # a master that sends no heartbeat: the drive trips after its 1 s timeout
        silent = Path(_profile_copy(tmp_path, "acs-no-heartbeat", base=ACS))
        silent.write_text(silent.read_text().split("[watchdog]")[0])
        rig.start_translator(str(silent))
        _state(rig, lambda s: s.status.name == "FAULT" and s.fault_code == 7510, timeout=8)
        rig.bus.command("G_2", action="RESET")
        _state(rig, lambda s: s.status.name == "OFF" and s.fault_code == 0)
    finally:
        rig.close()


@pytest.mark.integration
def test_a_settings_lost_status_bit_triggers_a_resync(domain, tmp_path):
    flagged = _profile_copy(
        tmp_path,
        "vfd-flag",
        (
            "fault = { address = 0x2100, bit = 3 }",
            "fault = { address = 0x2100, bit = 3 }\nsettings_lost = { address = 0x2100, bit = 5 }",
        ),
    )
    rig = Rig(flagged, "G_2", domain, tmp_path)
    try:
        rig.bus.command("G_2", action="START", f_ref=60.0)  # 60 Hz: also the drive's default
        rig.wait_measurement(lambda s: abs(s.f - 60.0) < 0.05)
        state = _state(rig, lambda s: s.status.name == "RUNNING")
        assert math.isnan(state.f_ref_applied) and math.isnan(state.P_ref_applied)  # not read back: unknown
        rig.control("reboot 0")
        rig.wait_health(lambda s: s.resyncs == 1)
        _state(rig, lambda s: s.status.name == "RUNNING")
    finally:
        rig.close()


def test_the_virtual_testbed_generator_takes_reset_and_direction_and_reports_them():
    from gridbus.testbed.plant import Plant
    from gridbus.testbed.system import load_system

    plant = Plant(load_system())
    plant.command("G_1", {"action": "START", "direction": "REVERSE", "f_ref": 60.0})
    plant.run(10)
    state = plant.state("G_1")
    assert state["direction"] == "REVERSE" and state["at_speed"] and state["fault_code"] == 0
    assert state["f_ref_applied"] == 60.0 and state["P_ref_applied"] == plant.machines["G_1"].P_ref
    plant.machines["G_1"].status = "FAULT"  # a trip
    assert plant.state("G_1")["fault_code"] == 1 and not plant.state("G_1")["at_speed"]
    plant.command("G_1", {"action": "RESET"})
    assert plant.state("G_1")["status"] == "OFF" and plant.state("G_1")["fault_code"] == 0
    plant.command("G_1", {"action": "RESET"})  # nothing to clear: no change
    assert plant.state("G_1")["status"] == "OFF"


def test_a_poll_is_read_a_block_at_a_time_so_commands_go_between(tmp_path):
    import threading

    from gridbus.translators.devices import Simulator
    from gridbus.translators.link import SerialLink
    from gridbus.translators.modbus import ModbusClient
    from gridbus.translators.profile import load_profile

    profile = load_profile(ACS)
    sim = Simulator(profile, str(tmp_path / "tty"))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            sim.poll(0.002)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    link = SerialLink(sim.path, profile.serial)
    try:
        link.open()
        client = ModbusClient(link, profile)
        assert client.read_step() is None  # block 1 of 4: the references read back
        client.apply(profile.commands["start"], None)  # a command between two status blocks
        assert client.read_step() is None and client.read_step() is None
        status = client.read_step()  # the fault register: the poll is complete
        assert status is not None and status["running"] == 1.0 and status["fault_code"] == 0.0
        assert sim.requests == 5
    finally:
        link.close()
        stop.set()
        server.join(timeout=5)
        sim.port.close()
