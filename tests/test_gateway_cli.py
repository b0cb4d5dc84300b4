"""``gridbus pmu gateway`` and ``gridbus pmu pdc``: bad input gets one clear line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import gridbus


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pmu", "gateway"], "give either --connect HOST:PORT"),
        (["pmu", "gateway", "--connect", "127.0.0.1:1", "--serve", "0"], "give either --connect"),
        (["pmu", "gateway", "--connect", "localhost"], "argument --connect: expected HOST:PORT"),
        (["pmu", "gateway", "--connect", "h:99999"], "port 99999 out of range"),
        (["pmu", "gateway", "--connect", "h:1", "--idcode", "0"], "IDCODE must be 1..65534"),
        (["pmu", "gateway", "--serve", "0"], "give the PMUs to serve"),
        (["pmu", "gateway", "--serve", "0", "--pmu", "PMU_1", "--format", "polar,rect"], "--format 'polar,rect'"),
        (["pmu", "gateway", "--connect", "127.0.0.1:1", "--map", "7=G_1"], "'G_1' is not a PMU id"),
        (["pmu", "gateway", "--connect", "127.0.0.1:1", "--map", "seven"], "--map expects IDCODE=PMU_ID"),
        (["pmu", "pdc", "--pmu", "G_1"], "--pmu G_1: not a PMU id"),
        (["pmu", "pdc", "--pmu", "PMU_1", "--window", "-1"], "argument --window"),
        (["pmu", "pdc", "--pmu", "PMU_1", "--pmu", "PMU_1"], "--pmu given twice"),
        (["pmu", "pdc", "--pmu", "PMU_1", "--id", "G_1"], "--id G_1: not a PDC id"),
        (["pmu", "gateway", "--serve", "0", "--pmu", "PMU_1", "--udp-to", "nohost"], "argument --udp-to"),
    ],
)
def test_bad_input(args, message, env):
    proc = gridbus(*args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "gridbus: error: " in proc.stderr and "Traceback" not in proc.stderr


STOP_WHILE_WAITING = r"""
import signal, threading
from gridbus.cli.common import on_stop_signals
stopped = threading.Event()
on_stop_signals(stopped.set)
with stopped._cond:  # the main thread holds the Event's lock, as inside stopped.wait()
    signal.raise_signal(signal.SIGTERM)  # the handler runs here, on this thread
print("stopped" if stopped.wait(5) else "not stopped", flush=True)
"""


def test_a_signal_stops_the_gateway_while_it_waits(env):
    """SIGTERM during the reconnect backoff's Event.wait() must not hang the process."""
    proc = subprocess.run(
        [sys.executable, "-c", STOP_WHILE_WAITING], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stopped"
