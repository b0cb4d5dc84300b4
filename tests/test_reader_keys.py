"""A reader of one object keeps hearing it when its writers come and go (issue 10, item 1).

Cyclone gives a key a new instance handle once every writer of it has
unregistered it (a publishing process exited); a reader that remembered the
first handle went deaf to the object's next writer.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time

import pytest
from helpers import gridbus, peer

from gridbus import Bus
from gridbus.source import KeyMatch as _KeyMatch
from gridbus.source import key_id as _key_id

CLI = [sys.executable, "-m", "gridbus.cli.main"]


@pytest.mark.integration
def test_cli_subscriber_of_one_object_hears_three_publisher_runs(env, partition):
    sub = subprocess.Popen(
        [*CLI, "subscribe", "G_2", "--json", "--count", "6", "--timeout", "20", "--partition", partition],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for f in (59, 60, 61):  # three processes, one after the other; two samples each
            gridbus(
                "publish",
                "G_2",
                f"f={f}",
                "--count",
                "2",
                "--rate",
                "10",
                "--wait",
                "10",
                "--partition",
                partition,
                env=env,
                check=True,
            )
        out, err = sub.communicate(timeout=25)
    finally:
        sub.kill()
    got = [json.loads(line)["data"]["f"] for line in out.splitlines()]
    assert {59.0, 60.0, 61.0} <= set(got), f"the subscriber heard only {got}: {err}"


@pytest.mark.integration
def test_python_reader_gets_commands_from_three_writer_processes(domain, partition):
    with Bus(domain, partition=partition) as bus:
        commands = bus.reader("G_7", "Command")
        got: list[float] = []
        for f_ref in (20, 25, 30):
            writer = peer(
                "command",
                "--domain",
                str(domain),
                "--partition",
                partition,
                "--id",
                "G_7",
                f"f_ref={f_ref}",
                "--linger",
                "2.5",
            )  # exits cleanly: unregisters G_7
            end = time.monotonic() + 8
            while time.monotonic() < end and (not got or got[-1] != f_ref):
                got += [s.f_ref for s in commands.take(timeout=0.2)]
            writer.terminate()  # received: end its linger (a clean exit, G_7 unregistered)
            assert writer.wait(timeout=10) == 0  # gone before the next one starts
    assert got == [20.0, 25.0, 30.0]


@pytest.mark.integration
def test_translator_applies_commands_of_successive_publisher_runs(domain, env, tmp_path):
    """The testbed-drive mode of issue 10: only the first f_ref used to reach the drive."""
    sim = subprocess.Popen(
        [*CLI, "device-sim", "vfd-modbus", "--link", str(tmp_path / "tty")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    translator = None
    try:
        port = json.loads(sim.stdout.readline())["port"]
        translator = subprocess.Popen(
            [
                *CLI,
                "translate",
                "vfd-modbus",
                "--port",
                port,
                "--object",
                "G_7",
                "--no-state",
                "--no-measurement",
                "--domain",
                str(domain),
                "--duration",
                "40",
            ],
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "translate.log").open("w"),
            text=True,
        )
        assert translator.stdout.readline().startswith('{"ready"')
        with Bus(domain) as bus:
            health = bus.reader("LINK_G7", "State")
            for f_ref in (20, 25, 30):
                gridbus("publish", "G_7", f"f_ref={f_ref}", "--wait", "10", env=env, check=True)
            applied = 0
            end = time.monotonic() + 10
            while time.monotonic() < end and applied < 3:
                applied = max([applied] + [s.commands_applied for s in health.take(timeout=0.2)])
        assert applied == 3, f"the translator applied {applied} of 3 commands"
    finally:
        for proc in (translator, sim):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=10)


def test_key_match_reads_both_byte_orders_and_nothing_else():
    """Writers of other DDS implementations may send big-endian CDR (encapsulation 0x0000)."""
    match = _KeyMatch("G_2")
    little = b"\x00\x01\x00\x00" + struct.pack("<I", 4) + b"G_2\x00" + b"\x00" * 8
    big = b"\x00\x00\x00\x00" + struct.pack(">I", 4) + b"G_2\x00" + b"\x00" * 8
    assert match(little) and match(big)
    assert not match(b"\x00\x01\x00\x00" + struct.pack("<I", 5) + b"G_20\x00")
    assert not match(b"\x00\x01\x00\x00" + struct.pack(">I", 4) + b"G_2\x00"), "wrong byte order"
    assert _key_id(big) == _key_id(little) == "G_2" and _key_id(b"\x00\x01\x00\x00") == ""
