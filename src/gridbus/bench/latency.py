"""One-way latency, the DDS paper's way (round trip / 2, echo in another process), interleaved.

Every system's echo process is up at once, each on its own partition (ZeroMQ
on its own port). The ping process then runs short rounds: A, B, C, then B, C, A...
(a cycle's order rotates), ``per_round`` pings each at ``rate``. Load that comes
and goes on a shared machine lands on every system alike. Each round's p50/p90
is divided by the raw binding's from the same cycle, and the bench reports the
median of those per-round ratios beside each system's overall percentiles.

The C tool ``ddsperf`` (where installed) runs its 1-second segments between the
cycles, on a domain of its own, always with gridbus's loopback configuration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..stats import summary
from . import ddsperf as c_ddsperf
from .endpoints import BusOptions, Endpoint, endpoint, payload_for, zmq_endpoint
from .goals import goal
from .peers import Peer, start_bound, stop, wait_matched

Row = dict[str, Any]
Progress = Callable[[Row], None]
WARMUP = 10  # round trips before each round, not counted
BASELINE = ("cyclonedds", "wait")


@dataclass(frozen=True)
class System:
    """A system under test and its receive mode."""

    name: str  # "cyclonedds" (the raw binding), "gridbus" or "zmq"
    mode: str = "wait"

    @property
    def label(self) -> str:
        return {"cyclonedds": "raw cyclonedds-python", "zmq": "ZeroMQ tcp"}.get(self.name, f"gridbus {self.mode}")


# ------------------------------------------------------------------ one ping
def _round_trip(ep: Endpoint, seq: int, payload: bytes, poll: bool, timeout: float = 1.0) -> float | None:
    start_at = time.perf_counter()
    ep.send(seq, payload)
    end = start_at + timeout
    while True:
        now = time.perf_counter()
        if now > end:
            return None
        for got, _ in ep.receive(0.0 if poll else end - now):
            if got == seq:
                return time.perf_counter() - start_at
        if poll:
            os.sched_yield()


class Pinger:
    """The ping side of one system: its endpoint, its own sequence numbers."""

    def __init__(self, system: System, ep: Endpoint) -> None:
        self.system, self.ep, self.seq = system, ep, 0
        self.poll = system.mode == "poll"

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def warm_up(self, payload: bytes) -> None:
        """Until the echo answers (at most ~1 s), then WARMUP more round trips."""
        for _ in range(50):
            if _round_trip(self.ep, self.next_seq(), payload, self.poll, 0.02) is not None:
                break
        for _ in range(WARMUP):
            _round_trip(self.ep, self.next_seq(), payload, self.poll)

    def round(self, payload: bytes, rate: float, count: int) -> npt.NDArray[np.float64]:
        """``count`` pings paced at ``rate``: one-way latency in µs each (NaN: lost)."""
        self.warm_up(payload)
        one_way = np.full(count, np.nan)
        period, next_send = 1.0 / rate, time.perf_counter()
        for i in range(count):
            next_send += period
            delay = next_send - time.perf_counter()
            if delay > 0.0005:
                time.sleep(delay - 0.0004)
            while time.perf_counter() < next_send:
                pass
            rtt = _round_trip(self.ep, self.next_seq(), payload, self.poll)
            if rtt is not None:
                one_way[i] = rtt / 2 * 1e6
        return one_way


def ping_point(ep: Endpoint, size: int, rate: float, count: int, mode: str = "wait") -> Row:
    """One paced run of ``count`` pings over ``ep`` (already matched to an echo): a row of µs figures.

    For benchmarks that ping one echo across something else (a LAN, a bridge)
    and compare with ``gridbus bench latency``: same warm-up, pacing and figures.
    """
    one_way = Pinger(System("gridbus", mode), ep).round(payload_for(size), rate, count)
    lost = int(np.isnan(one_way).sum())
    return {"size": size, "rate": rate, "count": count, "lost": lost, **_figures(one_way)}


# --------------------------------------------------------------- the run
def _peers(options: BusOptions, systems: Sequence[System]) -> list[Peer]:
    """One echo per system, each on a partition (or port) of its own."""
    peers = []
    for i, s in enumerate(systems):
        if s.name == "zmq":
            peers.append(Peer("echo", "zmq", s.mode, "Ping", options))  # port 0: the echo binds one, says which
        else:
            peers.append(Peer("echo", s.name, s.mode, "Ping", options.apart(f"{os.getpid()}-{i}-{s.name}-{s.mode}")))
    return peers


def _connect(peer: Peer) -> Endpoint:
    if peer.system == "zmq":
        return zmq_endpoint(peer.port, bind=False)
    return endpoint(peer.options, peer.system, "Ping", "Pong", peer.mode)


def _figures(one_way: npt.NDArray[np.float64]) -> Row:
    f = summary(one_way, (50, 90, 99), digits=1)
    return {f"{k}_us": f[k] for k in ("mean", "p50", "p90", "p99")}


def interleaved(
    options: BusOptions,
    systems: Sequence[System],
    sizes: Sequence[int],
    rate: float,
    rounds: int,
    per_round: int,
    progress: Progress | None = None,
    ddsperf_domain: int | None = None,
    ddsperf_every: int = 5,
) -> list[Row]:
    """One row per (system, size), ratios to the raw binding per round; ddsperf rows where it can run.

    ``ddsperf_domain`` None leaves ddsperf out; else it runs one 1-s segment every ``ddsperf_every``
    cycles (so it gets about as many round trips as each Python system).
    """
    bound = start_bound(_peers(options, systems))
    peers, procs = [peer for peer, _ in bound], [proc for _, proc in bound]
    pingers: list[Pinger] = []
    try:
        for system, peer in zip(systems, peers, strict=True):
            pingers.append(Pinger(system, _connect(peer)))
            wait_matched(pingers[-1].ep)
        perf = c_ddsperf.Ddsperf(ddsperf_domain) if ddsperf_domain is not None else None
        try:
            rows = [
                row
                for size in sizes
                for row in _size_point(pingers, size, rate, rounds, per_round, perf, ddsperf_every, progress)
            ]
        finally:
            if perf is not None:
                perf.close()
    finally:
        for pinger, proc in zip(pingers, procs, strict=False):
            stop(pinger.ep, proc)
            pinger.ep.close()
        for proc in procs[len(pingers) :]:
            proc.kill()
            proc.wait()
    return rows


def _size_point(
    pingers: list[Pinger],
    size: int,
    rate: float,
    rounds: int,
    per_round: int,
    perf: c_ddsperf.Ddsperf | None,
    ddsperf_every: int,
    progress: Progress | None,
) -> list[Row]:
    payload = payload_for(size)
    per_system: list[list[npt.NDArray[np.float64]]] = [[] for _ in pingers]
    segments: list[Row] = []
    for cycle in range(rounds):
        n = len(pingers)
        for k in range(n):
            i = (cycle + k) % n  # the order rotates: no system always follows another
            per_system[i].append(pingers[i].round(payload, rate, per_round))
        last = cycle == rounds - 1
        if perf is not None and (cycle % ddsperf_every == ddsperf_every - 1 or (last and not segments)):
            segments += perf.segment(size, rate)
    rows = _rows(pingers, per_system, size, rate)
    if perf is not None:
        rows.append(c_ddsperf.row(segments, size, rate))
    for row in rows:
        if progress is not None:
            progress(row)
    return rows


def _rows(pingers: list[Pinger], per_system: list[list[npt.NDArray[np.float64]]], size: int, rate: float) -> list[Row]:
    base = next((i for i, p in enumerate(pingers) if (p.system.name, p.system.mode) == BASELINE), None)
    rows = []
    for i, pinger in enumerate(pingers):
        rounds = per_system[i]
        all_rounds = np.concatenate(rounds)
        row: Row = {
            "system": pinger.system.name,
            "mode": pinger.system.mode,
            "label": pinger.system.label,
            "size": size,
            "rate": rate,
            "rounds": len(rounds),
            "count": int(all_rounds.size),
            "lost": int(np.isnan(all_rounds).sum()),
            **_figures(all_rounds),
        }
        for q in (50, 90):
            row[f"p{q}_ratio"] = None if base is None or base == i else _median_ratio(rounds, per_system[base], q)
        rows.append(row)
    return rows


def _median_ratio(rounds: list[npt.NDArray[np.float64]], base: list[npt.NDArray[np.float64]], q: float) -> float | None:
    """Median over the cycles of (this round's q-th percentile / the baseline's in the same cycle)."""
    ratios = []
    for mine, theirs in zip(rounds, base, strict=True):
        a, b = mine[~np.isnan(mine)], theirs[~np.isnan(theirs)]
        if a.size and b.size:
            ratios.append(float(np.percentile(a, q)) / float(np.percentile(b, q)))
    return round(float(np.median(ratios)), 3) if ratios else None


def goals(rows: list[Row]) -> list[Row]:
    """Issue's goals per size: gridbus wait p50 and p90 <= 0.7x raw; gridbus poll p50 <= 2x ddsperf."""
    out = []
    for size in sorted({r["size"] for r in rows}):
        by = {(r["system"], r["mode"]): r for r in rows if r["size"] == size}
        wait = by.get(("gridbus", "wait"))
        if wait is not None:
            for q in (50, 90):
                out.append(goal(f"gridbus wait p{q} / raw (median per round)", wait[f"p{q}_ratio"], 0.7, size=size))
        poll, c = by.get(("gridbus", "poll")), by.get(("ddsperf", "wait"))
        if poll is not None and c is not None and c["p50_us"] and poll["p50_us"]:
            out.append(goal("gridbus poll p50 / ddsperf p50", round(poll["p50_us"] / c["p50_us"], 3), 2.0, size=size))
    return out
