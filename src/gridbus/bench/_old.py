"""Latency and throughput, measured the DDS paper's way, gridbus beside raw cyclonedds.

Latency (section 5 of the paper): a ping process sends ``count`` messages per
(size, rate) point to an echo process, which returns each one; one-way
latency is half the round trip.  Each point runs through gridbus (a
``Bus`` writer/reader by object id; in both receive modes, ``wait`` and
``poll``) and, in the same run, through the raw cyclonedds-python binding
with the same QoS profile, the way its documentation shows (WaitSet, take).

Throughput: one process writes as fast as it can for ``seconds``; another
counts what arrives.  Loss = sent − delivered (best effort drops when the
reader falls behind).

Both systems sit behind one ``Endpoint`` interface, in :mod:`gridbus.bench_endpoints`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .bench_endpoints import BusOptions, Endpoint, endpoint, gridbus_endpoint, payload_for, raw_endpoint
from .stats import summary

# the endpoints of both systems moved to gridbus.bench_endpoints; re-exported for old imports
__all__ = [
    "SYSTEMS",
    "BusOptions",
    "Endpoint",
    "endpoint",
    "gridbus_endpoint",
    "latency",
    "payload_for",
    "raw_endpoint",
    "run_echo",
    "run_sink",
    "throughput",
]

ECHO_IDLE_EXIT = 15.0  # an echo/sink process ends itself after this much silence
MAX_RUN_SECONDS = 3600.0  # and never lives longer than this
SYSTEMS = ("gridbus", "cyclonedds")
Row = dict[str, Any]
Progress = Callable[[Row], None]


# ---------------------------------------------------------------- child roles
def run_echo(options: BusOptions, system: str, mode: str, ready: Callable[[], None]) -> int:
    """Return every Ping as a Pong until silent for ECHO_IDLE_EXIT seconds; ``ready()`` once listening."""
    ep = endpoint(options, system, "Pong", "Ping", mode)
    ready()
    last = started = time.monotonic()
    while time.monotonic() - last < ECHO_IDLE_EXIT and time.monotonic() - started < MAX_RUN_SECONDS:
        got = ep.receive(0.0 if mode == "poll" else 0.2)
        if not got and mode == "poll":
            os.sched_yield()
        for seq, payload in got:
            if seq == STOP:
                ep.close()
                return 0
            ep.send(seq, payload)
            last = time.monotonic()
    ep.close()
    return 0


def run_sink(options: BusOptions, system: str, ready: Callable[[], None]) -> Row:
    """Count Pings until STOP or silence; return what arrived (delivered, max_seq, seconds)."""
    ep = endpoint(options, system, "Pong", "Ping", "wait")
    ready()
    delivered, first, last_at = 0, None, None
    seqs_max = -1
    started = time.monotonic()
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < ECHO_IDLE_EXIT and time.monotonic() - started < MAX_RUN_SECONDS:
        got = ep.receive(0.2)
        if got:
            idle_since = time.monotonic()
        for seq, _payload in got:
            if seq == STOP:
                ep.close()
                return {
                    "delivered": delivered,
                    "max_seq": seqs_max,
                    "seconds": (last_at - first) if first is not None and last_at is not None else 0.0,
                }
            if first is None:
                first = time.monotonic()
            last_at = time.monotonic()
            delivered += 1
            seqs_max = max(seqs_max, seq)
    ep.close()
    return {"delivered": delivered, "max_seq": seqs_max, "seconds": 0.0}


STOP = 2**64 - 1


def _child(options: BusOptions, role: str, system: str, mode: str) -> subprocess.Popen[str]:
    """An echo or sink process (``python -m gridbus.bench``), started and listening."""
    cmd = [sys.executable, "-m", "gridbus.bench", role, "--system", system, "--mode", mode, *options.as_flags()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"benchmark {role} process failed to start ({system}, {mode})")
    return proc


def _stop_child(ep: Endpoint, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 5
    while proc.poll() is None and time.monotonic() < deadline:
        ep.send(STOP, b"")
        try:
            return proc.communicate(timeout=0.2)[0]
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
    return proc.communicate()[0] or ""


def _wait_matched(ep: Endpoint, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not ep.matched():
        if time.monotonic() > end:
            raise RuntimeError("the benchmark peer never matched (discovery failed)")
        time.sleep(0.01)


# -------------------------------------------------------------------- latency
def _ping_point(ep: Endpoint, size: int, rate: float, count: int, mode: str) -> Row:
    payload = payload_for(size)
    period = 1.0 / rate
    one_way = np.empty(count, dtype=np.float64)
    lost = 0
    # warm-up: until the echo answers, then a few more
    seq = 1 << 40
    for _ in range(200):
        seq += 1
        ep.send(seq, payload)
        if any(s == seq for s, _ in ep.receive(0.05)):
            break
    for _ in range(20):
        _round_trip(ep, seq := seq + 1, payload, mode)
    next_send = time.perf_counter()
    for i in range(count):
        next_send += period
        delay = next_send - time.perf_counter()
        if delay > 0.0005:
            time.sleep(delay - 0.0004)
        while time.perf_counter() < next_send:
            pass
        rtt = _round_trip(ep, i, payload, mode)
        if rtt is None:
            lost += 1
            one_way[i] = np.nan
        else:
            one_way[i] = rtt / 2 * 1e6
    figures = summary(one_way, (50, 90, 99), digits=1)  # lost pings (NaN) left out
    return {
        "size": size,
        "rate": rate,
        "count": count,
        "lost": lost,
        **{f"{k}_us": figures[k] for k in ("mean", "p50", "p90", "p99")},
    }


def _round_trip(ep: Endpoint, seq: int, payload: bytes, mode: str, timeout: float = 1.0) -> float | None:
    start = time.perf_counter()
    ep.send(seq, payload)
    end = start + timeout
    while True:
        now = time.perf_counter()
        if now > end:
            return None
        for got, _ in ep.receive(0.0 if mode == "poll" else end - now):
            if got == seq:
                return time.perf_counter() - start
        if mode == "poll":
            os.sched_yield()


def latency(
    options: BusOptions,
    sizes: list[int],
    rates: list[float],
    count: int,
    modes: list[str],
    progress: Progress | None = None,
) -> list[Row]:
    """One row per (system, mode, size, rate): one-way latency in microseconds.

    Raw cyclonedds runs first (the baseline), then gridbus in each receive mode of ``modes``;
    ``progress(row)`` is called as each point is done.
    """
    runs = [("cyclonedds", "wait")] + [("gridbus", m) for m in modes]
    results = []
    for system, mode in runs:
        proc = _child(options, "echo", system, mode)
        ep = endpoint(options, system, "Ping", "Pong", mode)
        try:
            _wait_matched(ep)
            for size in sizes:
                for rate in rates:
                    row = {"system": system, "mode": mode, **_ping_point(ep, size, rate, count, mode)}
                    results.append(row)
                    if progress is not None:
                        progress(row)
        finally:
            _stop_child(ep, proc)
            ep.close()
    return results


# ----------------------------------------------------------------- throughput
def throughput(options: BusOptions, size: int, seconds: float, progress: Progress | None = None) -> list[Row]:
    """One row per system: what one writer sent as fast as it could for ``seconds``, and what arrived."""
    payload = payload_for(size)
    results = []
    for system in SYSTEMS:
        proc = _child(options, "sink", system, "wait")
        ep = endpoint(options, system, "Ping", "Pong", "wait")
        try:
            _wait_matched(ep)
            time.sleep(0.2)
            sent, start = 0, time.perf_counter()
            end = start + seconds
            while time.perf_counter() < end:
                for _ in range(100):
                    ep.send(sent, payload)
                    sent += 1
            elapsed = time.perf_counter() - start
            time.sleep(0.3)
            report = json.loads(_stop_child(ep, proc).strip().splitlines()[-1])
        finally:
            if proc.poll() is None:
                proc.kill()
            ep.close()
        delivered = report["delivered"]
        row = {
            "system": system,
            "size": size,
            "seconds": round(elapsed, 2),
            "sent": sent,
            "sent_per_s": round(sent / elapsed),
            "delivered": delivered,
            "delivered_per_s": round(delivered / elapsed),
            "lost": sent - delivered,
            "lost_pct": round(100.0 * (sent - delivered) / sent, 2) if sent else 0.0,
        }
        results.append(row)
        if progress is not None:
            progress(row)
    return results


# ------------------------------------------------------------- child process
def _child_main() -> int:
    """``python -m gridbus.bench echo|sink``: the peer process; says ``ready`` on stdout once listening."""
    parser = argparse.ArgumentParser(prog="python -m gridbus.bench")
    parser.add_argument("role", choices=("echo", "sink"))
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("--mode", choices=("wait", "poll"), default="wait")
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--qos", dest="qos_file")
    parser.add_argument("--topic-map")
    parser.add_argument("--config")
    parser.add_argument("--partition")
    args = parser.parse_args()
    options = BusOptions(args.domain, args.qos_file, args.topic_map, args.config, args.partition)

    def ready() -> None:
        print("ready", flush=True)

    if args.role == "echo":
        return run_echo(options, args.system, args.mode, ready)
    print(json.dumps(run_sink(options, args.system, ready)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
