"""SIGTERM ends every long-running command, whatever it is doing, with its report and exit 0.

A signal handler runs on the main thread between two bytecodes, wherever that
thread is; a handler that takes a lock the interrupted code holds waits for
ever (``gridbus pmu gateway`` hung so).  Every command therefore stops through
``gridbus.cli.common.on_stop_signals``, which acts off the signal frame.  The
first tests show the helper against the deadlocks that caught the old
handlers; the others send real SIGTERMs to real command processes at
different moments (at once, while it works, twice in a row).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bridge_helpers import make_pki, port_for
from helpers import ROOT

from gridbus.net import can_build

HELD_LOCK = r"""
import signal, threading
from gridbus.cli.common import on_stop_signals
lock = threading.Lock()
done = threading.Event()
def stop():
    with lock:  # a lock the interrupted main thread holds (a logging handler's, a queue's)
        done.set()
on_stop_signals(stop)
with lock:
    signal.raise_signal(signal.SIGTERM)  # the handler runs here, while this thread holds the lock
print("stopped" if done.wait(5) else "not stopped", flush=True)
"""

EVENT_WAIT = r"""
import os, signal, threading
from gridbus.cli.common import on_stop_signals
stopped = threading.Event()
calls = []
on_stop_signals(lambda: (calls.append(1), stopped.set()))
with stopped._cond:  # the main thread holds the Event's lock, as inside stopped.wait()
    for _ in range(5):  # repeated signals: one stop
        signal.raise_signal(signal.SIGTERM)
print("stopped" if stopped.wait(5) else "not stopped", len(calls), flush=True)
"""


@pytest.mark.parametrize(("code", "expect"), [(HELD_LOCK, "stopped"), (EVENT_WAIT, "stopped 1")])
def test_the_stop_runs_off_the_signal_frame(code, expect, env):
    """The stop callback takes a lock the interrupted thread holds: it waits, it does not deadlock."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expect


class Command:
    """A ``gridbus`` command in a subprocess; its output lines read by a thread, so every wait is bounded."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridbus.cli.main", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=lambda: [self.lines.put(x) for x in self.proc.stdout], daemon=True),
            threading.Thread(target=lambda: [self.errors.append(x) for x in self.proc.stderr], daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def wait_ready(self, timeout: float = 30) -> None:
        """Until the command's first JSON line (``{"ready": ...}``, or ``net up``'s LAN)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("{"):
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"did not start: {line!r} {''.join(self.errors)[-2000:]}")

    def terminate(self, signals: int, timeout: float = 20) -> int | None:
        """Send ``signals`` SIGTERMs 50 ms apart; the exit status, or None (killed) if it did not end in time."""
        for _ in range(signals):
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None
        finally:
            for thread in self.threads:
                thread.join(timeout=5)

    def output(self) -> str:
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return "".join(rest) + "".join(self.errors)[-2000:]


def _argv(name: str, tmp_path: Path, domain: int, run: int) -> list[str]:
    """The command line of run ``run`` of ``name``; two runs live side by side (partition, port, files)."""
    tmp_path.mkdir(exist_ok=True)
    own = ["--partition", f"{tmp_path.name}-{run}"]
    if name == "record":
        return ["record", "G", "--db", str(tmp_path / f"r{run}.sqlite"), *own]
    if name == "testbed":
        return ["testbed", *own]
    if name == "daq":
        return ["daq", "--config", str(ROOT / "examples" / "daq-agent.toml"), *own]
    if name == "pmu sim":
        return ["pmu", "sim", "--pmu", "PMU_1", *own]
    if name == "pmu gateway":  # nothing listens there: it waits in its reconnect backoff
        return ["pmu", "gateway", "--connect", f"127.0.0.1:{port_for(domain, 7)}", *own]
    if name == "bridge":
        pki = make_pki(tmp_path / f"pki{run}")
        site = pki.sites["A"]
        tls = ["--cert", str(site.cert), "--key", str(site.key), "--ca", str(pki.ca.cert)]
        return ["bridge", "--site", "A", "--listen", f"tls/127.0.0.1:{port_for(domain, run)}", *tls, *own]
    if name == "agc":
        return ["agc", *own]
    if name == "net up":
        return ["net", "up", "--hosts", "1", "--seconds", "60"]
    raise AssertionError(name)


COMMANDS = ["record", "testbed", "daq", "pmu sim", "pmu gateway", "bridge", "agc", "net up"]


@pytest.mark.integration
@pytest.mark.parametrize("name", COMMANDS)
def test_sigterm_ends_the_command(name, env, tmp_path, domain):
    """At once after ready, while working, and twice in a row (during the stop): exit 0 each time, bounded."""
    if name == "net up" and can_build() is not None:
        pytest.skip(str(can_build()))
    env = env | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])}
    # both runs start together: their start-ups (a second or more each) overlap, nothing else does
    runs = []
    try:
        for run, (pause, signals) in enumerate(((0.0, 1), (0.7, 2))):
            runs.append((Command(_argv(name, tmp_path, domain, run), env), pause, signals))
        for command, pause, signals in runs:
            command.wait_ready()
            time.sleep(pause)
            status = command.terminate(signals)
            assert status == 0, f"{name}: SIGTERM after {pause} s, {signals}x: status {status}\n{command.output()}"
    finally:
        for command, _pause, _signals in runs:
            if command.proc.poll() is None:
                command.proc.kill()
                command.proc.wait(timeout=10)


HUNG_STOP = r"""
import threading, time
from gridbus.cli.common import on_stop_signals
stopping = threading.Event()
def stop():  # a clean stop that hangs
    stopping.set()
    time.sleep(1000)
on_stop_signals(stop, grace=3.0)
print("ready", flush=True)
stopping.wait(30)
print("stopping", flush=True)
time.sleep(60)
"""


def test_a_hung_stop_ends_on_a_sigterm_after_the_grace(env):
    """A quick repeat of SIGTERM is ignored; once the grace is over, SIGTERM ends a stop that hangs."""
    proc = subprocess.Popen([sys.executable, "-c", HUNG_STOP], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline().strip() == "stopping"
        proc.send_signal(signal.SIGTERM)  # a repeat within the grace: ignored
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)
        end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < end:  # after the grace one of these ends it
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        assert proc.wait(timeout=5) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
