"""``gridbus demo``: two processes, one bus, no broker.

A *device* process plays two generators and a breaker: it publishes
``G_1``/``G_2`` measurements at 20 Hz and obeys ``CB_1`` commands, publishing
the breaker's state.  The *controller* (this process) follows the generators,
closes the breaker, and waits to see the state change come back.

:func:`run` takes plain parameters and hands each line of its narration to
``say``; the CLI prints them (``gridbus demo``), a program may collect them.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Callable

from .bus import Bus

DEVICE_RATE_HZ = 20.0


def run_device(domain: int, seconds: float, partition: str | None, ready: Callable[[], None] = lambda: None) -> int:
    """Publish generator measurements and serve breaker CB_1 for ``seconds``; ``ready()`` once serving."""
    with Bus(domain, partition=partition) as bus:
        generators = {gid: bus.writer(gid, deadline=1.0) for gid in ("G_1", "G_2")}
        breaker_state = bus.writer("CB_1", "State")
        commands = bus.reader("CB_1", "Command")
        breaker_state.write(status="OPEN")
        ready()
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            t = time.monotonic() - start
            for n, writer in enumerate(generators.values()):
                f = 60.0 + 0.02 * math.sin(0.5 * t + n)
                v = 120.0 + 0.5 * math.sin(0.3 * t + n)
                writer.write(Va=v, Vb=v, Vc=v, Ia=2.5, Ib=2.5, Ic=2.5, f=f, P=300.0 * (n + 1), Q=20.0, speed=30.0 * f)
            for command in commands.take(0):
                breaker_state.write(status=command.status)
            tick += 1
            time.sleep(max(0.0, start + tick / DEVICE_RATE_HZ - time.monotonic()))
    return 0


def run(domain: int, seconds: float, partition: str | None, say: Callable[[str], None]) -> int:
    """Start the device process, play the controller for ``seconds`` (at least 2); 0 when data flowed.

    Raises :class:`ChildProcessError` when the device process does not start.
    """
    seconds = max(2.0, seconds)
    cmd = [sys.executable, "-m", "gridbus.demo", "--domain", str(domain), "--seconds", str(seconds + 4)]
    if partition:
        cmd += ["--partition", partition]
    device = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert device.stdout is not None
        if device.stdout.readline().strip() != "ready":
            raise ChildProcessError("the device process failed to start")
        return _controller(domain, seconds, partition, say)
    finally:
        device.terminate()
        device.wait(timeout=10)


def _controller(domain: int, seconds: float, partition: str | None, say: Callable[[str], None]) -> int:
    say(
        f"gridbus demo on DDS domain {domain} (loopback): a device process publishes G_1, G_2 and serves breaker CB_1\n"
    )
    with Bus(domain, partition=partition) as bus:
        generators = bus.reader("G")
        breaker = bus.reader("CB_1", "State")
        first = breaker.take_one(timeout=5.0)
        say(f"late joiner got the breaker state: CB_1 {first.status.name if first else 'nothing'}")
        end = time.monotonic() + seconds
        commanded = False
        shown = 0
        while time.monotonic() < end:
            for s in generators.take(timeout=0.2):
                if (shown // 2) % 10 == 0:
                    say(f"  {s.id}: f={s.f:.3f} Hz Va={s.Va:.1f} V P={s.P:.0f} W (one-way {1e3 * s.latency:.2f} ms)")
                shown += 1
            if not commanded and time.monotonic() > end - seconds / 2:
                say("controller -> CB_1: close")
                bus.command("CB_1", status="CLOSED")
                commanded = True
            for s in breaker.take(0):
                say(f"CB_1 state is now {s.status.name}")
        say(f"\nreceived {shown} generator samples; done.")
        return 0 if shown else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m gridbus.demo")
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partition", default=None)
    a = parser.parse_args()
    sys.exit(run_device(a.domain, a.seconds, a.partition, ready=lambda: print("ready", flush=True)))
