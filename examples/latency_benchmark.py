"""A latency benchmark script: ping-pong between two processes through gridbus.

    python examples/latency_benchmark.py [--count 1000] [--size 32] [--rate 1000]

The full method (both receive modes, raw cyclonedds beside it, many points)
is `gridbus bench latency`; this is the core of it, small enough to copy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from gridbus import Bus


def echo(domain: int | None, seconds: float) -> int:
    """Answer every ping of PMU_1 with the same sample on PMU_2."""
    with Bus(domain) as bus:
        pings, pong = bus.reader("PMU_1"), bus.writer("PMU_2")
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for ping in pings.take(timeout=0.2):
                pong.write(freq=ping.freq, stat=ping.stat)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", type=int, default=None)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    budget = args.count / args.rate + 15
    if args.echo:
        return echo(args.domain, budget)

    cmd = [sys.executable, __file__, "--echo", "--count", str(args.count), "--rate", str(args.rate)]
    if args.domain is not None:
        cmd += ["--domain", str(args.domain)]
    peer = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert peer.stdout.readline().strip() == "ready"
    one_way_us: list[float] = []
    try:
        with Bus(args.domain) as bus:
            ping, pongs = bus.writer("PMU_1"), bus.reader("PMU_2")
            ping.wait_for_readers(1, timeout=5)
            time.sleep(0.5)  # let the echo's writer match too
            for i in range(args.count):
                start = time.perf_counter()
                ping.write(freq=float(i % 400), stat=i % 65536)
                while (pong := pongs.take_one(timeout=1.0)) is not None and pong.stat != i % 65536:
                    pass
                if pong is not None:
                    one_way_us.append((time.perf_counter() - start) / 2 * 1e6)
                time.sleep(max(0.0, start + 1 / args.rate - time.perf_counter()))
    finally:
        peer.terminate()
        peer.wait(timeout=10)
    one_way_us.sort()
    p90 = one_way_us[int(0.9 * (len(one_way_us) - 1))] if one_way_us else float("nan")
    print(
        f"{len(one_way_us)}/{args.count} answered; one-way mean {statistics.fmean(one_way_us):.1f} us, "
        f"p50 {statistics.median(one_way_us):.1f} us, p90 {p90:.1f} us"
    )
    return 0 if one_way_us else 1


if __name__ == "__main__":
    raise SystemExit(main())
