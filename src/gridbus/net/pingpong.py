"""The ping side of the cross-host latency benchmark, run on one LAN host.

The echo side is ``python -m gridbus.bench echo`` on another host: the same
ping-pong as ``gridbus bench latency`` (one-way latency = round trip / 2, as
in the paper), only with the two processes in different network stacks, so
every sample crosses veth, bridge and the host's UDP stack.  Prints one JSON
row per (size, rate).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    import time

    from ..bench import BusOptions, endpoint
    from ..bench.latency import ping_point
    from ..bench.peers import STOP, wait_matched

    parser = argparse.ArgumentParser(prog="python -m gridbus.net.pingpong")
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--partition", default=None)
    parser.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], required=True)
    parser.add_argument("--rates", type=lambda t: [float(x) for x in t.split(",")], required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="at most this long per point")
    parser.add_argument("--mode", choices=("wait", "poll"), default="wait")
    args = parser.parse_args(argv)
    options = BusOptions(args.domain, partition=args.partition)
    ep = endpoint(options, "gridbus", "Ping", "Pong", args.mode)
    try:
        wait_matched(ep, timeout=20.0)
        for size in args.sizes:
            for rate in args.rates:
                count = max(50, min(args.count, int(rate * args.seconds)))
                row = ping_point(ep, size, rate, count, args.mode)
                print(json.dumps(row), flush=True)
    finally:
        for _ in range(5):  # the echo ends on STOP (best effort: say it a few times)
            ep.send(STOP, b"")
            time.sleep(0.05)
        ep.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
