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
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .cli.argtypes import name_list, number_list, positive_float, positive_int

ECHO_IDLE_EXIT = 15.0           # an echo/sink process ends itself after this much silence
MAX_RUN_SECONDS = 3600.0        # and never lives longer than this
SYSTEMS = ("gridbus", "cyclonedds")


def payload_for(size: int) -> bytes:
    """A payload that makes a serialized Ping of about ``size`` bytes."""
    return bytes(max(0, size - 28))


# ------------------------------------------------------------------ endpoints
@dataclass
class Endpoint:
    """What a benchmark process needs from either system: send, receive, close."""

    send: Callable[[int, bytes], None]
    receive: Callable[[float], list[tuple[int, bytes]]]     # (seq, payload) of what arrived
    matched: Callable[[], bool]
    close: Callable[[], None]


def gridbus_endpoint(args: argparse.Namespace, out_role: str, in_role: str, mode: str) -> Endpoint:
    from .bus import Bus
    bus = Bus(args.domain, qos_file=args.qos_file, topic_map=args.topic_map, config=args.config,
              partition=args.partition)
    writer = bus.writer("BENCH_1", out_role)
    reader = bus.reader("BENCH", in_role, mode=mode)
    cls = writer.topic.cls

    def send(seq: int, payload: bytes) -> None:
        writer.write(cls(id="BENCH_1", seq=seq, payload=payload))

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        return [(s.data.seq, s.data.payload) for s in reader.take(timeout)]
    return Endpoint(send, receive, lambda: writer.matched > 0, bus.close)


def raw_endpoint(args: argparse.Namespace, out_role: str, in_role: str, mode: str) -> Endpoint:
    """The plain cyclonedds-python way: Domain, participant, topic, writer, WaitSet + take."""
    from cyclonedds.core import ReadCondition, SampleState, ViewState, InstanceState, WaitSet
    from cyclonedds.domain import Domain, DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    from .bus import cyclone_config
    from .qos import TopicMap
    from .types.grid import Bench
    config = cyclone_config(args.config)
    domain = Domain(args.domain, config) if config else None
    participant = DomainParticipant(args.domain)
    qos_map = TopicMap(args.topic_map, args.qos_file) if args.topic_map else TopicMap(qos_file=args.qos_file)
    out_cls, in_cls = getattr(Bench, out_role), getattr(Bench, in_role)
    group = Qos(Policy.Partition(partitions=[args.partition])) if args.partition else None
    from cyclonedds.pub import Publisher
    from cyclonedds.sub import Subscriber
    publisher, subscriber = Publisher(participant, qos=group), Subscriber(participant, qos=group)
    writer = DataWriter(publisher, Topic(participant, f"RawBench_{out_role}", out_cls),
                        qos=qos_map.writer_qos(f"Bench_{out_role}"))
    reader = DataReader(subscriber, Topic(participant, f"RawBench_{in_role}", in_cls),
                        qos=qos_map.reader_qos(f"Bench_{in_role}"))
    waitset = WaitSet(participant)
    waitset.attach(ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any))

    def send(seq: int, payload: bytes) -> None:
        writer.write(out_cls(id="BENCH_1", seq=seq, payload=payload))

    def receive(timeout: float) -> list[tuple[int, bytes]]:
        got = reader.take(N=1)
        if not got and timeout > 0:
            waitset.wait(duration(seconds=timeout))
            got = reader.take(N=1)
        return [(s.seq, s.payload) for s in got if hasattr(s, "seq")]

    def close() -> None:
        nonlocal domain
        from ._cyclone import delete
        delete(participant)
        domain = None
    return Endpoint(send, receive, lambda: writer.get_publication_matched_status().current_count > 0, close)


def endpoint(args: argparse.Namespace, system: str, out_role: str, in_role: str, mode: str) -> Endpoint:
    make = gridbus_endpoint if system == "gridbus" else raw_endpoint
    return make(args, out_role, in_role, mode)


# ---------------------------------------------------------------- child roles
def run_echo(args: argparse.Namespace) -> int:
    """Return every Ping as a Pong until silent for ECHO_IDLE_EXIT seconds."""
    ep = endpoint(args, args.system, "Pong", "Ping", args.mode)
    print("ready", flush=True)
    last = started = time.monotonic()
    while time.monotonic() - last < ECHO_IDLE_EXIT and time.monotonic() - started < MAX_RUN_SECONDS:
        got = ep.receive(0.0 if args.mode == "poll" else 0.2)
        if not got and args.mode == "poll":
            os.sched_yield()
        for seq, payload in got:
            if seq == STOP:
                ep.close()
                return 0
            ep.send(seq, payload)
            last = time.monotonic()
    ep.close()
    return 0


def run_sink(args: argparse.Namespace) -> int:
    """Count Pings until STOP or silence; print one JSON line with what arrived."""
    ep = endpoint(args, args.system, "Pong", "Ping", "wait")
    print("ready", flush=True)
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
                print(json.dumps({"delivered": delivered, "max_seq": seqs_max,
                                  "seconds": (last_at - first) if first else 0.0}), flush=True)
                ep.close()
                return 0
            if first is None:
                first = time.monotonic()
            last_at = time.monotonic()
            delivered += 1
            seqs_max = max(seqs_max, seq)
    print(json.dumps({"delivered": delivered, "max_seq": seqs_max, "seconds": 0.0}), flush=True)
    ep.close()
    return 0


STOP = 2**64 - 1


def _child(args: argparse.Namespace, role: str, system: str, mode: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gridbus.bench", role, "--system", system, "--mode", mode,
           "--domain", str(args.domain)]
    for flag, value in (("--qos", args.qos_file), ("--topic-map", args.topic_map),
                        ("--config", args.config), ("--partition", args.partition)):
        if value:
            cmd += [flag, str(value)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"benchmark {role} process failed to start ({system}, {mode})")
    return proc


def _stop_child(ep: Endpoint, proc: subprocess.Popen) -> str:
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
def _ping_point(ep: Endpoint, size: int, rate: float, count: int, mode: str) -> dict[str, Any]:
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
    good = one_way[~np.isnan(one_way)]
    return {"size": size, "rate": rate, "count": count, "lost": lost,
            "mean_us": round(float(good.mean()), 1) if good.size else None,
            "p50_us": round(float(np.percentile(good, 50)), 1) if good.size else None,
            "p90_us": round(float(np.percentile(good, 90)), 1) if good.size else None,
            "p99_us": round(float(np.percentile(good, 99)), 1) if good.size else None}


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


def latency(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = [("cyclonedds", "wait")] + [("gridbus", m) for m in args.modes]
    results = []
    for system, mode in runs:
        proc = _child(args, "echo", system, mode)
        ep = endpoint(args, system, "Ping", "Pong", mode)
        try:
            _wait_matched(ep)
            for size in args.sizes:
                for rate in args.rates:
                    point = _ping_point(ep, size, rate, args.count, mode)
                    results.append({"system": system, "mode": mode, **point})
                    _progress(args, f"{system:<10} {mode:<4} {size:>6} B {rate:>6g}/s  p50 {point['p50_us']} us")
        finally:
            _stop_child(ep, proc)
            ep.close()
    return results


# ----------------------------------------------------------------- throughput
def throughput(args: argparse.Namespace) -> list[dict[str, Any]]:
    payload = payload_for(args.size)
    results = []
    for system in SYSTEMS:
        proc = _child(args, "sink", system, "wait")
        ep = endpoint(args, system, "Ping", "Pong", "wait")
        try:
            _wait_matched(ep)
            time.sleep(0.2)
            sent, start = 0, time.perf_counter()
            end = start + args.seconds
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
        results.append({"system": system, "size": args.size, "seconds": round(elapsed, 2), "sent": sent,
                        "sent_per_s": round(sent / elapsed), "delivered": delivered,
                        "delivered_per_s": round(delivered / elapsed), "lost": sent - delivered,
                        "lost_pct": round(100.0 * (sent - delivered) / sent, 2) if sent else 0.0})
        _progress(args, f"{system:<10} sent {sent} delivered {delivered}")
    return results


# -------------------------------------------------------------------- output
def _progress(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, file=sys.stderr, flush=True)


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "-"


def print_latency(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in results:
            print(json.dumps(row), flush=True)
        return
    from rich.console import Console
    from rich.table import Table
    raw = {(r["size"], r["rate"]): r for r in results if r["system"] == "cyclonedds"}
    table = Table(title="One-way latency (RTT/2), microseconds")
    for column in ("system", "mode", "size B", "rate/s", "count", "lost", "mean", "p50", "p90", "p99",
                   "p50 ratio", "p90 ratio"):
        table.add_column(column, justify="right" if column not in ("system", "mode") else "left")
    for r in results:
        base = raw.get((r["size"], r["rate"]), {})
        table.add_row(r["system"], r["mode"], str(r["size"]), f"{r['rate']:g}", str(r["count"]), str(r["lost"]),
                      *(str(r[k]) for k in ("mean_us", "p50_us", "p90_us", "p99_us")),
                      _ratio(r["p50_us"], base.get("p50_us")), _ratio(r["p90_us"], base.get("p90_us")))
    Console(width=max(120, Console().width)).print(table)


def print_throughput(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in results:
            print(json.dumps(row), flush=True)
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title="One-way stream, as fast as the writer can")
    for column in ("system", "size B", "seconds", "sent/s", "delivered/s", "lost", "lost %"):
        table.add_column(column, justify="right" if column != "system" else "left")
    for r in results:
        table.add_row(r["system"], str(r["size"]), str(r["seconds"]), str(r["sent_per_s"]),
                      str(r["delivered_per_s"]), str(r["lost"]), str(r["lost_pct"]))
    Console(width=max(120, Console().width)).print(table)


# ------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser, bus_options: Callable) -> None:
    sub = parser.add_subparsers(dest="bench_command", required=True)
    p = sub.add_parser("latency", help="ping-pong latency per size and rate")
    bus_options(p)
    p.add_argument("--sizes", type=number_list(positive_int, "sizes in bytes"), default="32,256,1024",
                   help="message sizes in bytes (comma-separated)")
    p.add_argument("--rates", type=number_list(positive_float, "rates"), default="50,1000",
                   help="messages per second (comma-separated)")
    p.add_argument("--count", type=positive_int, default=10000, help="messages per point (the paper: 10000)")
    p.add_argument("--modes", type=name_list(("wait", "poll"), "receive modes"), default="wait,poll",
                   help="gridbus receive modes to run")
    p.add_argument("--json", action="store_true", help="one JSON object per point")
    p = sub.add_parser("serial", help="command latency and poll rate through a serial translator")
    bus_options(p)
    p.add_argument("--profiles", type=name_list(what="profiles"), default="vfd-modbus,speed-controller-ascii",
                   help="drive profiles")
    p.add_argument("--bauds", type=number_list(positive_int, "baud rates"), default="9600,115200",
                   help="baud rates (comma-separated)")
    p.add_argument("--count", type=positive_int, default=40, help="START/STOP commands per point")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("historian", help="sustained ingest into the historian and its delays per batch size")
    bus_options(p)
    p.add_argument("--db", action="append", default=[],
                   help="database URL (repeatable; default: a temporary SQLite file)")
    p.add_argument("--batches", default="1,100,1000", help="recorder batch sizes")
    p.add_argument("--objects", type=int, default=100)
    p.add_argument("--rate", type=float, default=100.0, help="samples per second per object")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--kill-at", type=float, default=None, metavar="S",
                   help="kill -9 the recorder S seconds into the stream, restart it, count what the crash lost")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("throughput", help="one-way stream rate and loss")
    bus_options(p)
    p.add_argument("--size", type=positive_int, default=32, help="message size in bytes")
    p.add_argument("--seconds", type=positive_float, default=5.0)
    p.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    from .bus import default_domain
    if args.domain is None:
        args.domain = default_domain()
    if args.bench_command == "latency":
        print_latency(latency(args), args.json)
    elif args.bench_command == "historian":
        import tempfile
        from .historian.bench import check_arguments, crash, ingest, parse_batches, print_results as print_ingest
        batches = parse_batches(args.batches)
        check_arguments(batches, args.objects, args.rate, args.seconds, args.kill_at)
        dbs = args.db or [tempfile.mkdtemp(prefix="gridbus-bench-") + "/bench.sqlite"]
        if args.kill_at is not None:
            for row in (crash(db, b, args.objects, args.rate, args.seconds, args.kill_at, args.domain,
                              partition=args.partition) for db in dbs for b in batches):
                print(json.dumps(row), flush=True)
            return 0
        print_ingest(ingest(dbs, batches, args.objects, args.rate, args.seconds, args.domain, args.partition),
                     args.json)
    elif args.bench_command == "serial":
        from .translators.bench import print_results, serial_latency
        from .translators.profile import load_profile
        for name in args.profiles:
            load_profile(name)                          # a bad profile fails before any process starts
        rows = [row for name in args.profiles for row in serial_latency(name, args.bauds, args.count,
                                                                         args.domain)]
        print_results(rows, args.json)
    else:
        print_throughput(throughput(args), args.json)
    return 0


def _child_main() -> int:
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
    return run_echo(args) if args.role == "echo" else run_sink(args)


if __name__ == "__main__":
    sys.exit(_child_main())
