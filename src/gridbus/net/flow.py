"""Traffic of real gridbus topics across LAN hosts, and what the link did to it.

``python -m gridbus.net.flow write ...`` runs on one host: it waits for its
readers, then writes samples of a topic at a fixed rate, round robin over
objects, and reports how many it wrote and the bytes its ``eth0`` sent.
``python -m gridbus.net.flow read ...`` runs on another: it takes the samples
and reports, per topic, the one-way delay of each (reception − source time;
the namespaces share this machine's clock), how many arrived per object, and
the reader's deadline misses.  Both print one JSON object on stdout (the
reader says ``ready`` first, once its reader exists).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

_TX = Path("/sys/class/net/eth0/statistics/tx_bytes")


def _tx_bytes() -> int:
    try:
        return int(_TX.read_text())
    except OSError:
        return 0


def _value(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def write(args: argparse.Namespace) -> dict[str, Any]:
    """Write ``count`` samples at ``rate``/s over ``objects``; wait for ``readers`` first."""
    from ..bus import Bus

    fields = dict(kv.split("=", 1) for kv in args.fields)
    alternate = [(k, v.split("|")) for k, v in fields.items() if "|" in v]
    with Bus(domain=args.domain, partition=args.partition) as bus:
        writers = [bus.writer(obj, args.role) for obj in args.objects]
        end = time.monotonic() + args.match_timeout
        while min(w.matched for w in writers) < args.readers and time.monotonic() < end:
            time.sleep(0.02)
        matched = min(w.matched for w in writers)
        time.sleep(args.settle)
        before = _tx_bytes()
        start = time.monotonic()
        for i in range(args.count):
            due = start + i / args.rate
            while (now := time.monotonic()) < due:
                time.sleep(min(due - now, 0.005))
            values = {k: _value(v) for k, v in fields.items() if "|" not in v}
            values.update({k: options[i % len(options)] for k, options in alternate})
            writers[i % len(writers)].write(**values)
        time.sleep(args.linger)  # reliable repairs and acks still flow
        return {"written": args.count, "matched": matched, "tx_bytes": _tx_bytes() - before}


def read(args: argparse.Namespace) -> dict[str, Any]:
    """Take samples until ``expect`` arrived, ``seconds`` passed or ``idle`` s of silence."""
    from ..bus import Bus

    with Bus(domain=args.domain, partition=args.partition) as bus:
        reader = bus.reader(args.what, args.role, deadline=args.deadline)
        print("ready", flush=True)
        delays: list[int] = []
        per_object: dict[str, int] = {}
        last_value: dict[str, str] = {}
        end = time.monotonic() + args.seconds
        last = None
        while time.monotonic() < end and len(delays) < args.expect:
            if last is not None and time.monotonic() - last > args.idle:
                break
            for s in reader.take(timeout=0.2):
                delays.append((s.reception_time_ns - s.source_time_ns) // 1000)
                per_object[s.id] = per_object.get(s.id, 0) + 1
                if args.field:
                    last_value[s.id] = str(getattr(s.data, args.field))
                last = time.monotonic()
        return {
            "received": len(delays),
            "delays_us": delays,
            "per_object": per_object,
            "last": last_value,
            "deadline_missed": reader.deadline_missed,
            "lost_reported": reader.lost,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gridbus.net.flow")
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("write", "read"):
        p = sub.add_parser(name)
        p.add_argument("--domain", type=int, required=True)
        p.add_argument("--partition", default=None)
        p.add_argument("--role", default="Measurement")
    w = sub.choices["write"]
    w.add_argument("--objects", type=lambda t: t.split(","), required=True)
    w.add_argument("--fields", nargs="*", default=[], help="k=v; k=a|b alternates values")
    w.add_argument("--rate", type=float, default=100.0)
    w.add_argument("--count", type=int, default=100)
    w.add_argument("--readers", type=int, default=1)
    w.add_argument("--match-timeout", type=float, default=15.0)
    w.add_argument("--settle", type=float, default=0.5)
    w.add_argument("--linger", type=float, default=1.0)
    r = sub.choices["read"]
    r.add_argument("--what", required=True, help="object id or prefix")
    r.add_argument("--expect", type=int, default=10**9)
    r.add_argument("--seconds", type=float, default=30.0)
    r.add_argument("--idle", type=float, default=3.0)
    r.add_argument("--deadline", type=float, default=None)
    r.add_argument("--field", default=None, help="report each object's last value of this field")
    args = parser.parse_args(argv)
    result = write(args) if args.mode == "write" else read(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
