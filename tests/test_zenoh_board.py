"""Boards without Cyclone (issue 15, item 5): the DAQ agent over Zenoh to its site's bridge.

The agent runs in a process where ``import cyclonedds`` fails; its samples
must reach a DDS reader through ``gridbus bridge --boards`` and commands
must come back to it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bridge_helpers import READY_TIMEOUT, make_pki, port_for, start_bridge, stop, wait_until

from gridbus import Bus
from gridbus.bench.peers import read_line
from gridbus.bridge.pki import issue
from gridbus.errors import FieldError, UnknownObjectError
from gridbus.transport.schema import BoardField, BoardObject

pytestmark = pytest.mark.integration

# Python with cyclonedds made unimportable, then the gridbus CLI
NO_CYCLONE = (
    "import sys; sys.modules['cyclonedds'] = None; "
    "from gridbus.cli.main import main; rc = main(sys.argv[1:]); "
    "assert not any(m.startswith('cyclonedds') and sys.modules[m] is not None for m in sys.modules); sys.exit(rc)"
)

AGENT = """
[agent]
rate = 20
name = "board1"

[[object]]
id = "G_1"
V = 120.0
I = 10.0
f = 60.0
"""


def _on_board(args: list[str], port: int, board, pki, env) -> subprocess.Popen:
    """A gridbus command run as on a board: cyclonedds unimportable, Zenoh to site A's bridge."""
    tls = ["--cert", str(board.cert), "--key", str(board.key), "--ca", str(pki.ca.cert)]
    proc = subprocess.Popen(
        [sys.executable, "-c", NO_CYCLONE, *args, "--zenoh", f"tls/127.0.0.1:{port}", "--site", "A", *tls],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    line = read_line(proc, READY_TIMEOUT)
    if line is None or not line.startswith('{"ready"'):
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError(f"{args[0]} did not start within {READY_TIMEOUT:g} s: {line}{err}")
    return proc


def test_daq_agent_over_zenoh_without_cyclonedds(tmp_path, domain, env):
    pki = make_pki(tmp_path / "pki")
    board = issue(pki.ca, tmp_path / "pki" / "boards", "board1")
    port = port_for(domain, 2)
    bridge = start_bridge("A", domain, pki, "--listen", f"tls/127.0.0.1:{port}", "--boards")
    config = tmp_path / "agent.toml"
    config.write_text(AGENT)
    agent = None
    out = err = ""
    try:
        with Bus(domain) as bus:
            gens = bus.reader("G_1")
            events = bus.reader("EV_board1", "Log")
            agent = _on_board(["daq", "--config", str(config)], port, board, pki, env)
            first = gens.take_one(timeout=10)
            assert first is not None and abs(first.f - 60.0) < 0.5  # the board's sample, through the bridge
            bus.command("G_1", f_ref=62.0)  # commands come back to the board
            seen: list[float] = []
            assert wait_until(lambda: seen.extend(s.f for s in gens.take(0)) or (seen and abs(seen[-1] - 62.0) < 0.5))
            bus.command("G_1", f_ref=90.0)  # inside the IDL's range, outside the agent's limits
            event = events.take_one(timeout=10)
            assert event is not None and event.kind == "COMMAND_REJECTED" and event.field == "f_ref"
    finally:
        try:
            if agent is not None:
                agent.terminate()
                try:
                    out, err = agent.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    agent.kill()
                    out, err = agent.communicate()
        finally:
            done = stop(bridge)
    assert agent is not None and out.strip(), err
    report = json.loads(out.strip().splitlines()[-1])["done"]
    assert agent.returncode == 0, err
    assert report["commands_applied"] >= 1 and report["commands_rejected"] == 1
    assert done["board_in"] >= 1 and done["board_commands"] >= 2


def test_board_sample_with_a_bad_field_is_refused_by_the_bridge(tmp_path, domain):
    """A board that sends an out-of-range value: the bridge refuses the sample (nothing reaches DDS)."""
    from gridbus.bridge.link import TlsFiles
    from gridbus.transport.board import BoardLink

    pki = make_pki(tmp_path / "pki")
    board = issue(pki.ca, tmp_path / "pki" / "boards", "board1")
    port = port_for(domain, 3)
    bridge = start_bridge("A", domain, pki, "--listen", f"tls/127.0.0.1:{port}", "--boards")
    link = BoardLink("A", [f"tls/127.0.0.1:{port}"], TlsFiles(board.cert, board.key, pki.ca.cert))
    try:
        with Bus(domain) as bus:
            cmds = bus.reader("G_1", "State")
            gen = link.describe("G_1")
            assert "f_ref" in gen.topic("Command").fields
            link.put("G_1", "State", {"speed": "fast"}, 0)  # wrong type: refused at the bridge
            link.put("G_1", "State", {"nonsense": 1.0}, 0)  # unknown field: refused
            link.put("G_1", "State", {}, 1_000_000_000)  # a good one, so we know the path works
            assert cmds.take_one(timeout=10) is not None
            assert cmds.take(0.3) == []
            with pytest.raises(UnknownObjectError, match="Unknown|unknown|no object"):
                link.describe("NOPE_1")
    finally:
        link.close()
        done = stop(bridge)
    assert done["board_rejected"] == 2 and done["board_in"] == 1


def test_board_field_checks_like_the_bus():
    obj = BoardObject.from_description(
        {"type": "Generator", "prefix": "G", "topics": {"Command": {"name": "Generator_Command", "fields": [
            {"name": "id", "kind": "str", "length": 32},
            {"name": "f_ref", "kind": "float", "min": 0.0, "max": 100.0, "nan_default": True},
            {"name": "action", "kind": "enum", "values": ["NONE", "START"]},
        ]}}}
    )  # fmt: skip
    topic = obj.topic("Command")
    sample = topic.build("G_1", {"action": "START"})
    assert sample.action == "START" and sample.f_ref != sample.f_ref  # NaN: unchanged
    for bad in ({"f_ref": 101.0}, {"f_ref": "x"}, {"action": "FLY"}, {"speed": 1.0}):
        with pytest.raises(FieldError):
            topic.build("G_1", bad)
    assert BoardField("n", "int").coerce(3.0, "n") == 3


def test_translator_over_zenoh_without_cyclonedds(tmp_path, domain, env):
    """A serial drive (device-sim on a pty) behind `gridbus translate --zenoh` in a process without
    cyclonedds: its link health and state reach DDS through the bridge, a START command reaches it."""
    pki = make_pki(tmp_path / "pki")
    board = issue(pki.ca, tmp_path / "pki" / "boards", "board2")
    port = port_for(domain, 4)
    cli = [sys.executable, "-m", "gridbus.cli.main"]
    sim = subprocess.Popen(
        [*cli, "device-sim", "vfd-modbus", "--link", str(tmp_path / "tty")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    bridge = translator = None
    try:
        tty = json.loads(sim.stdout.readline())["port"]
        bridge = start_bridge("A", domain, pki, "--listen", f"tls/127.0.0.1:{port}", "--boards")
        with Bus(domain) as bus:
            health = bus.reader("LINK_G1", "State", history=64)
            state = bus.reader("G_1", "State", history=16)
            translator = _on_board(["translate", "vfd-modbus", "--port", tty, "--object", "G_1"], port, board, pki, env)
            assert wait_until(lambda: any(s.connected for s in health.take(0)), timeout=15)
            bus.command("G_1", action="START", f_ref=50.0)
            assert wait_until(lambda: any(s.status.name == "RUNNING" for s in state.take(0)), timeout=15)
    finally:
        if translator is not None:
            translator.terminate()
            _out, err = translator.communicate(timeout=10)
        if bridge is not None:
            stop(bridge)
        sim.stdin.write("quit\n")
        sim.stdin.flush()
        sim.wait(timeout=10)
    assert translator.returncode == 0, err


def test_board_cannot_command_pass_a_denied_topic_or_write_unbounded_objects(tmp_path, domain):
    """Any peer with a certificate of the CA can reach the board keys: the bridge admits only data
    roles, under the site's [in] policy, for at most --max-board-objects objects; refusals are events."""
    from gridbus.bridge.link import TlsFiles
    from gridbus.transport.board import BoardLink

    pki = make_pki(tmp_path / "pki")
    board = issue(pki.ca, tmp_path / "pki" / "boards", "rogue")
    port = port_for(domain, 5)
    bridge = start_bridge(
        "A", domain, pki, "--listen", f"tls/127.0.0.1:{port}", "--boards",
        "--deny-in", "Generator_Measurement", "--max-board-objects", "2",
    )  # fmt: skip
    link = BoardLink("A", [f"tls/127.0.0.1:{port}"], TlsFiles(board.cert, board.key, pki.ca.cert))
    try:
        with Bus(domain) as bus:
            commands = bus.reader("CB_1", "Command")
            measurements = bus.reader("G_1", "Measurement")
            states = bus.reader("G", "State", history=8)
            events = bus.reader("EV_bridge-A", "Log", history=8)
            link.describe("G_1")  # the bridge answers: the link is up
            link.put("CB_1", "Command", {}, 1_000_000_000)  # a command injected by a board
            link.put("G_1", "Measurement", {"f": 60.0}, 1_000_000_000)  # denied by --deny-in
            for n in (1, 2, 3):  # the third object is over the cap
                link.put(f"G_{n}", "State", {}, 1_000_000_000)
            got: list[str] = []
            assert wait_until(lambda: got.extend(s.id for s in states.take(0)) or len(got) >= 2)
            assert commands.take(0.5) == [] and measurements.take(0) == []
            assert sorted(got + [s.id for s in states.take(0.3)]) == ["G_1", "G_2"]
            kinds: list[str] = []
            assert wait_until(lambda: kinds.extend(e.kind for e in events.take(0)) or len(kinds) >= 3)
    finally:
        link.close()
        done = stop(bridge)
    assert sorted(kinds) == ["BOARD_DENIED", "BOARD_OBJECTS_CAPPED", "BOARD_ROLE_REFUSED"]
    assert done["board_rejected"] == 3 and done["board_in"] == 2
