"""One-way streams: unpaced (as fast as the writer can), paced at a rate, and a sweep for the sustained rate.

A sink process per system counts what arrives, per *step* (a stream's
sequence numbers carry their step), and answers ``REPORT + step`` once the
writer is done with it, so many steps run against the same sinks.  A step
**sustains** its rate when the writer kept pace (sent ≥ 99 % of rate ×
seconds) and less than 1 % was lost.  The sweep runs the systems' steps
alternately (raw, gridbus, raw, gridbus...), each system doubling its rate
from ``start_rate`` until a step fails, then bisecting; it stops after
``max_steps`` steps per system, or when the bracket is within 15 %.

Each step also reports the CPU time the writer and the sink processes spent
per sample (all their threads, Cyclone's included): on a shared machine the
rates move with the load, the CPU per sample much less, and it says what
each side could carry with a core of its own.

With ``BusOptions.batch`` both systems' writers batch (Cyclone's write
batching) and the stream flushes after each burst of writes, as a program
that writes its samples in bursts would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .endpoints import BusOptions, Endpoint, endpoint, payload_for
from .goals import goal
from .machine import cpu_seconds
from .peers import REPORT, STEP_SHIFT, Peer, ask, start, stop, wait_matched

Row = dict[str, Any]
Progress = Callable[[Row], None]
SYSTEMS = ("cyclonedds", "gridbus")
BURST = 1000  # most samples written between two looks at the clock
DRAIN = 0.3  # s after a step for the sink to take what is still on its way
LOSS_LIMIT = 1.0  # %
PACE = 0.99  # a writer that sent less than this share of rate x seconds could not keep pace


def payload_name(topic: str, size: int) -> str:
    return "Generator_Measurement" if topic == "Measurement" else f"{size} B"


class Stream:
    """A writer here and a sink process of ``system`` receiving ``topic`` (Ping or Measurement)."""

    def __init__(self, options: BusOptions, system: str, topic: str, size: int) -> None:
        self.system, self.topic, self.size, self.batch = system, topic, size, options.batch
        self.payload = payload_for(size)
        peer = Peer("sink", system, "wait", topic, options.apart(f"{os.getpid()}-{system}-{topic}"))
        self.proc = start([peer])[0]
        self.ep: Endpoint = endpoint(peer.options, system, topic, None, "wait")
        self.steps = 0
        wait_matched(self.ep)

    def step(self, rate: float | None, seconds: float) -> Row:
        """Write for ``seconds`` (at ``rate`` per second; None: as fast as possible); what arrived."""
        step, self.steps = self.steps, self.steps + 1
        sink_cpu, writer_cpu = self._sink_cpu(), cpu_seconds(os.getpid())
        sent = _write(self.ep, step << STEP_SHIFT, self.payload, rate, seconds)
        writer_cpu = cpu_seconds(os.getpid()) - writer_cpu
        elapsed = seconds if sent.elapsed <= 0 else sent.elapsed
        time.sleep(DRAIN)
        answer = ask(self.ep, self.proc, REPORT + step)
        sink_now = self._sink_cpu()
        sink_used = None if sink_now is None or sink_cpu is None else sink_now - sink_cpu
        delivered = int(answer["delivered"]) if answer else 0
        sink_us = None if sink_used is None else _per_sample(sink_used, delivered)
        kept_pace = None if rate is None else sent.count >= PACE * rate * seconds  # None: unpaced
        lost_pct = round(100.0 * (sent.count - delivered) / sent.count, 2) if sent.count else 0.0
        return {
            "system": self.system,
            "payload": payload_name(self.topic, self.size),
            "size": self.size if self.topic == "Ping" else None,
            "pacing": "unpaced" if rate is None else "paced",
            "batch": self.batch,
            "rate": rate,
            "seconds": round(elapsed, 2),
            "sent": sent.count,
            "sent_per_s": round(sent.count / elapsed),
            "delivered": delivered,
            "delivered_per_s": round(delivered / elapsed),
            "lost": sent.count - delivered,
            "lost_pct": lost_pct,
            "kept_pace": kept_pace,
            "writer_cpu_us": _per_sample(writer_cpu, sent.count),  # CPU µs per sample written
            "sink_cpu_us": sink_us,  # CPU µs per sample delivered (None: the sink had exited)
            "sustained": kept_pace is not False and lost_pct < LOSS_LIMIT and answer is not None,
        }

    def close(self) -> None:
        stop(self.ep, self.proc)
        self.ep.close()

    def _sink_cpu(self) -> float | None:
        """The sink's CPU seconds so far; None once it has exited (a crashed sink is a lost step,
        not a crashed sweep, and its PID may already belong to another process)."""
        if self.proc.poll() is not None:
            return None
        try:
            return cpu_seconds(self.proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            return None


def _per_sample(used: float, samples: int) -> float | None:
    return round(1e6 * used / samples, 2) if samples else None


@dataclass
class _Sent:
    count: int
    elapsed: float


def _write(ep: Endpoint, first_seq: int, payload: bytes, rate: float | None, seconds: float) -> _Sent:
    send, flush, sent = ep.send, ep.flush, 0
    begin = time.perf_counter()
    end = begin + seconds
    while (now := time.perf_counter()) < end:
        due = BURST if rate is None else min(BURST, int(rate * (now - begin)) + 1 - sent)
        if due <= 0:
            time.sleep(min(0.001, (sent + 1) / rate - (now - begin)) if rate else 0)
            continue
        for i in range(sent, sent + due):
            send(first_seq + i, payload)
        flush()
        sent += due
    return _Sent(sent, time.perf_counter() - begin)


def _streams(options: BusOptions, topic: str, size: int, systems: Sequence[str]) -> list[Stream]:
    streams: list[Stream] = []
    try:
        for system in systems:
            streams.append(Stream(options, system, topic, size))
    except BaseException:
        for s in streams:
            s.close()
        raise
    return streams


def throughput(
    options: BusOptions,
    topics: Sequence[str],
    size: int,
    seconds: float,
    rate: float | None = None,
    progress: Progress | None = None,
) -> list[Row]:
    """Per topic, each system's stream for ``seconds``, unpaced and (with ``rate``) paced, interleaved."""
    rows = []
    for topic in topics:
        streams = _streams(options, topic, size, SYSTEMS)
        try:
            for pace in (None, rate) if rate is not None else (None,):
                for stream in streams:
                    rows.append(_report(stream.step(pace, seconds), progress))
        finally:
            for s in streams:
                s.close()
    return rows


@dataclass
class _Search:
    """One system's search for its highest sustained rate."""

    next_rate: float
    good: float = 0.0  # highest rate sustained so far
    bad: float | None = None  # lowest rate that failed
    steps: int = 0

    def record(self, rate: float, ok: bool) -> None:
        self.steps += 1
        if ok:
            self.good = max(self.good, rate)
        else:
            self.bad = rate if self.bad is None else min(self.bad, rate)
        if self.bad is None:
            self.next_rate = rate * 2
        else:
            self.next_rate = (self.good + self.bad) / 2 if self.good else self.bad / 2

    def done(self, max_steps: int, max_rate: float) -> bool:
        closed = self.bad is not None and self.good > 0 and self.bad / self.good < 1.15
        return closed or self.steps >= max_steps or self.next_rate > max_rate


def sweep(
    options: BusOptions,
    topics: Sequence[str],
    size: int,
    seconds: float,
    start_rate: float,
    max_steps: int,
    max_rate: float = 1e6,
    progress: Progress | None = None,
) -> list[Row]:
    """Per topic: one unpaced step per system, then the interleaved search; step rows and result rows."""
    rows: list[Row] = []
    for topic in topics:
        streams = _streams(options, topic, size, SYSTEMS)
        try:
            for stream in streams:
                rows.append(_report(stream.step(None, seconds), progress))
            searches = {s.system: _Search(start_rate) for s in streams}
            while not all(searches[s.system].done(max_steps, max_rate) for s in streams):
                for stream in streams:
                    search = searches[stream.system]
                    if not search.done(max_steps, max_rate):
                        row = _report(stream.step(round(search.next_rate), seconds), progress)
                        search.record(row["rate"], row["sustained"])
                        rows.append(row)
            for stream in streams:
                result: Row = {
                    "system": stream.system,
                    "payload": payload_name(topic, size),
                    "batch": stream.batch,
                    "sustained_per_s": round(searches[stream.system].good),
                    "failed_at_per_s": searches[stream.system].bad,
                    "steps": searches[stream.system].steps,
                    "step_seconds": seconds,
                }
                rows.append(_report(result, progress))
        finally:
            for s in streams:
                s.close()
    return rows


def _report(row: Row, progress: Progress | None) -> Row:
    if progress is not None:
        progress(row)
    return row


def goals(rows: list[Row]) -> list[Row]:
    """gridbus sustains >= 2x raw's rate and >= 100k samples/s, per payload."""
    out = []
    results = [r for r in rows if "sustained_per_s" in r]
    for payload in dict.fromkeys(r["payload"] for r in results):
        by = {r["system"]: r["sustained_per_s"] for r in results if r["payload"] == payload}
        mine, raw = by.get("gridbus"), by.get("cyclonedds")
        ratio = round(mine / raw, 2) if mine and raw else None
        out.append(goal("gridbus / raw sustained rate", ratio, 2.0, at_least=True, payload=payload))
        out.append(goal("gridbus sustained samples/s", mine, 100_000, at_least=True, payload=payload))
    return out
