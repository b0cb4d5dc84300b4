"""UDP probes between LAN hosts: one-way delay of a link, and background traffic.

Every namespace of a LAN shares this machine's monotonic clock, so a probe
stamped by the sender with ``CLOCK_MONOTONIC`` and read by the receiver gives
the one-way delay directly, with no clock sync.  ``send`` paces probes (or
background traffic: any size, any rate), ``recv`` reports the delay of each
probe it got as JSON on stdout.  Stdlib only, so it starts fast as a script.

    python probe.py recv PORT --seconds S        # prints {"delays_us": [...], "seqs": [...]}
    python probe.py send HOST PORT --rate R --count N [--size B] [--mbit M]
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from typing import Any

_HEADER = struct.Struct("!QQ")  # seq, send time (ns, CLOCK_MONOTONIC)


def send(host: str, port: int, rate: float, count: int, size: int) -> int:
    """Send ``count`` probes of ``size`` bytes at ``rate`` per second (0 = unpaced)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = bytes(max(0, size - _HEADER.size))
    start = time.monotonic()
    sent = 0
    for seq in range(count):
        if rate > 0:
            due = start + seq / rate
            while (now := time.monotonic()) < due:
                time.sleep(min(due - now, 0.002))
        try:
            sock.sendto(_HEADER.pack(seq, time.monotonic_ns()) + pad, (host, port))
            sent += 1
        except OSError:  # a full queue under a rate limit: background traffic is allowed to drop
            pass
    return sent


def recv(port: int, seconds: float, ready: bool) -> dict[str, Any]:
    """Receive probes for ``seconds`` s (or 2 s of silence after the first); delays in µs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.2)
    if ready:
        print("ready", flush=True)
    delays: list[int] = []
    seqs: list[int] = []
    first = 0.0
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end and (last is None or time.monotonic() - last < 2.0):
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        now = time.monotonic_ns()
        seq, sent = _HEADER.unpack_from(data)
        seqs.append(seq)
        delays.append((now - sent) // 1000)
        last = time.monotonic()
        first = first or last
    return {"delays_us": delays, "seqs": seqs, "span_s": (last - first) if last else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probe")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("--rate", type=float, default=100.0)
    s.add_argument("--count", type=int, default=100)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--mbit", type=float, default=0.0, help="background traffic: rate from Mbit/s and size")
    r = sub.add_parser("recv")
    r.add_argument("port", type=int)
    r.add_argument("--seconds", type=float, default=10.0)
    r.add_argument("--quiet", action="store_true", help="count only (a background traffic sink)")
    args = parser.parse_args(argv)
    if args.mode == "send":
        rate = args.mbit * 1e6 / 8 / args.size if args.mbit else args.rate
        print(json.dumps({"sent": send(args.host, args.port, rate, args.count, args.size)}), flush=True)
    else:
        got = recv(args.port, args.seconds, ready=True)
        print(json.dumps({"received": len(got["seqs"])} if args.quiet else got), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
