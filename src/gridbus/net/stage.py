"""The userspace impairment stage: per-frame delay, jitter and loss between two interfaces.

This kernel has no ``netem`` qdisc, so delay and jitter are made here: a
process in the switch namespace reads every Ethernet frame arriving on one
interface (an AF_PACKET socket), drops it with the link's loss probability or
holds it for ``delay ± jitter`` (uniform, as netem's default), and writes it
out of the other interface, in both directions.  It works at layer 2, so ARP,
multicast and Cyclone's discovery cross it unchanged.  Frames may overtake
each other when the jitter exceeds their spacing, as with netem.

A port going down (``Lan.set_link(host, up=False)``, a pulled cable) does
not end the stage: the kernel reports it once on the port's socket (ENETDOWN),
frames due to leave through it are dropped as send errors, and forwarding
resumes by itself when the port is up again (the kernel re-attaches the
socket).  That is what a WAN-drop test needs.

Run as ``python -m gridbus.net.stage A B --delay-ms ... --stats FILE`` inside
a namespace; SIGTERM ends it and writes its counters (frames in, out, dropped;
how late each frame left compared with its due time) to FILE as JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import heapq
import json
import logging
import os
import random
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PR_SET_PDEATHSIG = 1
_MAX_FRAME = 65536
LIMIT = 100_000  # frames held at once, both directions together; beyond, new frames are dropped
_LATE_BINS_US = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# what a socket says while its interface is down (or gone): the link is cut, the stage carries on
_LINK_DOWN = frozenset({errno.ENETDOWN, errno.ENXIO, errno.ENODEV, errno.ENOBUFS})


@dataclass
class Direction:
    """Counters of one direction of the link."""

    received: int = 0
    sent: int = 0
    dropped: int = 0
    overflow: int = 0  # dropped because LIMIT frames were already held (netem's limit)
    send_errors: int = 0  # frames that could not leave (the outgoing port was down, its queue full)
    link_down: int = 0  # times the incoming port's socket reported its interface down


@dataclass
class Counters:
    """What the stage did, written as JSON when it stops."""

    directions: dict[str, Direction] = field(default_factory=dict)
    late_us_sum: float = 0.0
    late_us_max: float = 0.0
    late_hist: list[int] = field(default_factory=lambda: [0] * (len(_LATE_BINS_US) + 1))
    started: float = field(default_factory=time.monotonic)

    def late(self, seconds: float) -> None:
        """Record how long after its due time a frame left."""
        us = max(0.0, seconds * 1e6)
        self.late_us_sum += us
        self.late_us_max = max(self.late_us_max, us)
        for i, edge in enumerate(_LATE_BINS_US):
            if us <= edge:
                self.late_hist[i] += 1
                return
        self.late_hist[-1] += 1

    def as_dict(self) -> dict[str, object]:
        sent = sum(d.sent for d in self.directions.values())
        times = os.times()
        return {
            "directions": {k: vars(v) for k, v in self.directions.items()},
            "late_us_mean": self.late_us_sum / sent if sent else 0.0,
            "late_us_max": self.late_us_max,
            "late_hist_edges_us": list(_LATE_BINS_US),
            "late_hist": self.late_hist,
            "cpu_s": times.user + times.system,
            "wall_s": time.monotonic() - self.started,
        }


def _open(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


class Stage:
    """Forward frames between two interfaces with delay, jitter and loss per frame."""

    def __init__(self, a: str, b: str, delay: float, jitter: float, loss: float, seed: int | None) -> None:
        self.delay, self.jitter, self.loss = delay, jitter, loss
        self.rng = random.Random(seed)
        self.socks = {a: _open(a), b: _open(b)}
        self.peer = {a: self.socks[b], b: self.socks[a]}
        self.counters = Counters(directions={f"{a}>{b}": Direction(), f"{b}>{a}": Direction()})
        self.names = {a: f"{a}>{b}", b: f"{b}>{a}"}
        self.queue: list[tuple[float, int, str, bytes]] = []  # (due, order, from, frame)
        self.order = 0
        self.running = True

    def _hold(self) -> float:
        if self.jitter <= 0:
            return self.delay
        return max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))

    def _receive(self, interface: str) -> None:
        sock = self.socks[interface]
        direction = self.counters.directions[self.names[interface]]
        for _ in range(256):  # bounded batch, then serve the queue again
            try:
                frame, address = sock.recvfrom(_MAX_FRAME)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno not in _LINK_DOWN:
                    raise
                direction.link_down += 1  # reported once per cut; frames flow again when it is up
                return
            if address[2] == PACKET_OUTGOING:
                continue  # our own transmissions, seen again on this socket
            direction.received += 1
            if self.loss > 0 and self.rng.random() < self.loss:
                direction.dropped += 1
                continue
            hold = self._hold()
            if len(self.queue) >= LIMIT:
                direction.overflow += 1
                continue
            if hold <= 0:
                self._send(interface, frame, time.monotonic())
                continue
            self.order += 1
            heapq.heappush(self.queue, (time.monotonic() + hold, self.order, interface, frame))

    def _send(self, interface: str, frame: bytes, due: float) -> None:
        direction = self.counters.directions[self.names[interface]]
        try:
            self.peer[interface].send(frame)
            direction.sent += 1
        except OSError:
            direction.send_errors += 1
        self.counters.late(time.monotonic() - due)

    def _release(self) -> float | None:
        """Send every frame that is due; seconds until the next one (None if none waits)."""
        while self.queue:
            now = time.monotonic()
            due, _, interface, frame = self.queue[0]
            if due > now:
                return due - now
            heapq.heappop(self.queue)
            self._send(interface, frame, due)
        return None

    def run(self) -> None:
        readable = list(self.socks.values())
        by_fd = {s.fileno(): name for name, s in self.socks.items()}
        while self.running:
            wait = self._release()
            ready, _, _ = select.select(readable, [], [], 0.5 if wait is None else wait)
            for sock in ready:
                self._receive(by_fd[sock.fileno()])


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this stage when the process that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0
        reason = os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        failed, reason = True, str(exc)
    if failed:
        log.warning("stage: cannot ask to die with the parent (prctl: %s): stop it by hand if its LAN dies", reason)


def _realtime() -> None:
    """Run at a low real-time priority (root), so that a busy machine delays frames less.

    The stage always blocks in ``select`` between frames, so it cannot starve the machine.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridbus.net.stage", description=__doc__.split("\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stats", type=Path, default=None)
    parser.add_argument("--ready", type=Path, default=None, help="file created once the sockets are open")
    parser.add_argument("--realtime", action="store_true", help="SCHED_FIFO: frames leave on time on a busy machine")
    args = parser.parse_args(argv)
    _die_with_parent()
    if args.realtime:
        _realtime()
    stage = Stage(args.a, args.b, args.delay_ms / 1e3, args.jitter_ms / 1e3, args.loss_pct / 100, args.seed)

    def stop(signum: int, frame: object) -> None:
        stage.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready:
        args.ready.write_text(str(os.getpid()))
    stage.run()
    if args.stats:
        args.stats.write_text(json.dumps(stage.counters.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
