"""The benchmark's other processes: an echo (ping-pong) and a sink (streams), and how to run them.

Each is ``python -m gridbus.bench echo|sink ...``; it says ``ready`` on stdout
once listening (a ZeroMQ peer given port 0 binds a free port itself and says
``ready PORT``: a port the parent picked could be taken before the child bound
it).  Control travels in band, as sequence numbers no data sample uses:
``STOP`` ends a peer, ``REPORT + step`` asks a sink how many samples of that
step it got (it answers one JSON line on stdout).  Sequence numbers stay below
2**53 so that a ``Generator_Measurement`` (whose ``P`` double carries them)
holds them exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .endpoints import TOPICS, BusOptions, Endpoint, endpoint, zmq_endpoint

STOP = 2**52 - 1
REPORT = 2**51  # REPORT + step: "how many of step's samples arrived?"
STEP_SHIFT = 32  # a stream's sequence number is step << STEP_SHIFT | index
IDLE_EXIT = 15.0  # a peer ends itself after this much silence
MAX_RUN_SECONDS = 3600.0  # and never lives longer than this
POLL_IDLE = 0.02  # a poll-mode echo idle this long naps 1 ms between polls (no busy core between rounds)
SYSTEMS = ("cyclonedds", "gridbus", "zmq")


@dataclass(frozen=True)
class Peer:
    """One peer process to start: its role, system, receive mode and traffic."""

    role: str  # "echo" or "sink"
    system: str
    mode: str = "wait"
    topic: str = "Ping"  # what it receives (an echo answers a Ping with a Pong)
    options: BusOptions = field(default_factory=lambda: BusOptions(0))
    port: int = 0  # ZeroMQ only; 0: the peer binds a free port and says which (see start)

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "gridbus.bench", self.role, "--system", self.system, "--mode", self.mode),
            *("--topic", self.topic, "--port", str(self.port), *self.options.as_flags()),
        ]


# ---------------------------------------------------------------- child roles
def _peer_endpoint(peer: Peer, out_topic: str | None) -> Endpoint:
    if peer.system == "zmq":
        return zmq_endpoint(peer.port, bind=True)
    return endpoint(peer.options, peer.system, out_topic, peer.topic, peer.mode)


def run_echo(peer: Peer, ready: Callable[[int], None]) -> int:
    """Return every Ping as a Pong until STOP or silent for IDLE_EXIT seconds; ``ready(port)`` once listening."""
    ep = _peer_endpoint(peer, "Pong")
    ready(ep.port)
    poll = peer.mode == "poll"
    last = started = time.monotonic()
    try:
        while time.monotonic() - last < IDLE_EXIT and time.monotonic() - started < MAX_RUN_SECONDS:
            got = ep.receive(0.0 if poll else 0.2)
            if not got and poll:
                time.sleep(0.001) if time.monotonic() - last > POLL_IDLE else os.sched_yield()
            for seq, payload in got:
                if seq == STOP:
                    return 0
                ep.send(seq, payload)
                last = time.monotonic()
    finally:
        ep.close()
    return 0


def run_sink(peer: Peer, ready: Callable[[int], None], say: Callable[[dict[str, Any]], None]) -> int:
    """Count a stream per step; answer ``REPORT + step`` once per step, and STOP with the totals."""
    ep = _peer_endpoint(peer, None)
    ready(ep.port)
    counts: Counter[int] = Counter()
    reported: set[int] = set()
    started = idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < IDLE_EXIT and time.monotonic() - started < MAX_RUN_SECONDS:
            got = ep.receive(0.2)
            if got:
                idle_since = time.monotonic()
            for seq, _payload in got:
                if seq == STOP:
                    say({"delivered": sum(counts.values()), "steps": dict(counts)})
                    return 0
                if seq >= REPORT:
                    step = seq - REPORT
                    if step not in reported:
                        reported.add(step)
                        say({"step": step, "delivered": counts[step]})
                    continue
                counts[seq >> STEP_SHIFT] += 1
    finally:
        ep.close()
    say({"delivered": sum(counts.values()), "steps": dict(counts), "idle": True})
    return 0


# ------------------------------------------------------------ parent's side
def start(peers: Sequence[Peer]) -> list[subprocess.Popen[str]]:
    """Start every peer at once (they join the domain in parallel), then wait for each to be ready."""
    return [proc for _peer, proc in start_bound(peers)]


def start_bound(peers: Sequence[Peer]) -> list[tuple[Peer, subprocess.Popen[str]]]:
    """:func:`start`, with each peer as it listens: a ZeroMQ peer given port 0 with the port it bound."""
    procs = [subprocess.Popen(p.command(), stdout=subprocess.PIPE, text=True) for p in peers]
    bound = []
    for peer, proc in zip(peers, procs, strict=True):
        words = (read_line(proc, 30.0) or "").split()
        if not words or words[0] != "ready" or (peer.system == "zmq" and len(words) != 2):
            for other in procs:
                other.kill()
                other.wait()
            raise RuntimeError(f"benchmark {peer.role} process failed to start ({peer.system}, {peer.mode})")
        bound.append((replace(peer, port=int(words[1])) if len(words) == 2 else peer, proc))
    return bound


def read_line(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The peer's next stdout line, or None if none comes within ``timeout`` s."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else None


def ask(ep: Endpoint, proc: subprocess.Popen[str], seq: int, timeout: float = 5.0) -> dict[str, Any] | None:
    """Send control ``seq`` (best effort: repeated) until the peer answers a JSON line; None if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ep.send(seq, b"")
        ep.flush()  # a batching writer holds it otherwise
        line = read_line(proc, 0.1)
        if line:
            answer: dict[str, Any] = json.loads(line)
            return answer
    return None


def stop(ep: Endpoint, proc: subprocess.Popen[str]) -> None:
    """End a peer with STOP (killed if it will not go)."""
    deadline = time.monotonic() + 5
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ep.send(STOP, b"")
            ep.flush()
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_matched(ep: Endpoint, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not ep.matched():
        if time.monotonic() > end:
            raise RuntimeError("the benchmark peer never matched (discovery failed)")
        time.sleep(0.01)
    time.sleep(0.1)  # the peer's side of discovery completes too (best effort drops until it has)


# ------------------------------------------------------------- child process
def child_main(argv: Sequence[str] | None = None) -> int:
    """``python -m gridbus.bench echo|sink``: the peer process; says ``ready`` on stdout once listening."""
    parser = argparse.ArgumentParser(prog="python -m gridbus.bench")
    parser.add_argument("role", choices=("echo", "sink"))
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("--mode", choices=("wait", "poll"), default="wait")
    parser.add_argument("--topic", choices=TOPICS, default="Ping")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--qos", dest="qos_file")
    parser.add_argument("--topic-map")
    parser.add_argument("--config")
    parser.add_argument("--partition")
    args = parser.parse_args(argv)
    options = BusOptions(args.domain, args.qos_file, args.topic_map, args.config, args.partition)
    peer = Peer(args.role, args.system, args.mode, args.topic, options, args.port)

    def ready(port: int) -> None:
        print(f"ready {port}" if port else "ready", flush=True)

    if args.role == "echo":
        return run_echo(peer, ready)
    return run_sink(peer, ready, lambda answer: print(json.dumps(answer), flush=True))
