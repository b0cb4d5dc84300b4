"""A measurement agent (a DAQ board's job): publish several objects at a fixed
rate and obey breaker commands.

    python examples/measurement_agent.py [--objects 10] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import math
import time

from gridbus import Bus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", type=int, default=None)
    parser.add_argument("--objects", type=int, default=4, help="generators G_1..G_n")
    parser.add_argument("--rate", type=float, default=50.0, help="samples per second per object")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    with Bus(args.domain) as bus:
        period = 1.0 / args.rate
        writers = [bus.writer(f"G_{n}", deadline=max(1.0, 10 * period)) for n in range(1, args.objects + 1)]
        breaker_state = bus.writer("CB_1", "State")
        breaker_commands = bus.reader("CB_1", "Command")
        breaker_state.write(status="OPEN")
        start = time.monotonic()
        ticks = 0
        while time.monotonic() - start < args.seconds:
            t = time.monotonic() - start
            for n, writer in enumerate(writers):
                v = 120.0 + 0.2 * math.sin(2 * math.pi * 0.1 * t + n)
                writer.write(Va=v, Vb=v, Vc=v, Ia=2.0, Ib=2.0, Ic=2.0, f=60.0, P=250.0, Q=10.0, speed=1800.0)
            for command in breaker_commands.take(timeout=0):
                print(f"CB_1 command: {command.status.name}")
                breaker_state.write(status=command.status)
            ticks += 1
            time.sleep(max(0.0, start + ticks * period - time.monotonic()))
        print(f"published {ticks * len(writers)} samples of {len(writers)} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
