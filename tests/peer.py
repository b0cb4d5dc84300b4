"""Another process on the bus, for cross-process tests: python peer.py ACTION ..."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from gridbus import Bus


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=("measure", "state", "command", "stamped"))
    p.add_argument("--domain", type=int, required=True)
    p.add_argument("--partition", default=None)
    p.add_argument("--id", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--deadline", type=float, default=None)
    p.add_argument("--linger", type=float, default=3.0, help="seconds to stay alive afterwards")
    p.add_argument("--idl", action="append", default=[])
    p.add_argument("--readers", type=int, default=1, help="readers to wait for before writing")
    p.add_argument("--wait", type=float, default=2.0, help="seconds to wait for a reader first")
    p.add_argument("fields", nargs="*")
    a = p.parse_intermixed_args()
    fields = dict(f.split("=", 1) for f in a.fields)
    # a test that has what it waited for ends the peer with SIGTERM: a clean exit all the same (the
    # Bus closes, the writer unregisters its instances), without the rest of the linger
    signal.signal(signal.SIGTERM, _leave)
    with Bus(a.domain, partition=a.partition, idl=a.idl) as bus:
        role = {"measure": None, "stamped": None, "state": "State", "command": "Command"}[a.action]
        writer = bus.writer(a.id, role, deadline=a.deadline)
        print("ready", flush=True)
        writer.wait_for_readers(a.readers, timeout=a.wait if a.action in ("measure", "stamped") else 0.0)
        for i in range(a.count):
            if a.action == "stamped":  # current samples first, then one 10 s older
                writer.write(timestamp=time.time() - (10 if i == a.count - 1 else 0), **fields)
            else:
                writer.write(**fields)
            time.sleep(1.0 / a.rate)
        time.sleep(a.linger)
    return 0


def _leave(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
