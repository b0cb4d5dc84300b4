"""A controller: follow every generator, command a breaker, react to its state.

    python examples/controller.py [--seconds 10]

Run it beside a device (e.g. `gridbus demo`'s device, the virtual testbed, or
examples/measurement_agent.py).  Only the public gridbus API is used.
"""

from __future__ import annotations

import argparse
import time

from gridbus import Bus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--breaker", default="CB_1")
    args = parser.parse_args()

    with Bus(args.domain) as bus:
        generators = bus.reader("G")  # every generator, all ids
        breaker = bus.reader(args.breaker, "State")  # current state arrives even if we join late
        latest: dict[str, float] = {}
        closed = False
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            for sample in generators.take(timeout=0.1):
                latest[sample.id] = sample.f
            for state in breaker.take(timeout=0):
                print(f"{args.breaker} is {state.status.name}")
                closed = state.status.name == "CLOSED"
            # a simple rule: close the breaker once every generator we see is near 60 Hz
            if latest and not closed and all(abs(f - 60.0) < 0.5 for f in latest.values()):
                print(f"generators {sorted(latest)} at 60 Hz: closing {args.breaker}")
                bus.command(args.breaker, status="CLOSED")
                closed = True
        print("frequencies seen:", {k: round(v, 3) for k, v in sorted(latest.items())})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
