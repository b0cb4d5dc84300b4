"""Benchmarks that are fair on a noisy machine: gridbus beside raw cyclonedds, C ddsperf, ZeroMQ.

Each benchmark takes plain parameters and returns rows (dicts); ``gridbus
bench ...`` (:mod:`gridbus.cli.bench`) prints them.  What makes them fair:

- the systems compared run in the same invocation, **interleaved** (short
  rounds A, B, C, B, C, A...), so load that comes and goes hits them alike;
- figures are medians over repeated rounds, with per-round ratios;
- every run records the machine's load average at its start.

Modules: :mod:`.endpoints` (the systems behind one interface), :mod:`.peers`
(echo and sink processes), :mod:`.latency` (+ :mod:`.ddsperf`),
:mod:`.throughput`, :mod:`.codec_speed`, :mod:`.waveform`, :mod:`.programs`,
:mod:`.machine` (load average, a process's CPU and memory).
"""

from __future__ import annotations

from .endpoints import BusOptions, Endpoint, endpoint, gridbus_endpoint, payload_for, raw_endpoint
from .machine import machine
from .peers import SYSTEMS, run_echo, run_sink

__all__ = [
    "SYSTEMS",
    "BusOptions",
    "Endpoint",
    "endpoint",
    "gridbus_endpoint",
    "machine",
    "payload_for",
    "raw_endpoint",
    "run_echo",
    "run_sink",
]
