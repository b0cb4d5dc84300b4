"""How many virtual PMUs one core sustains: 60 frames/s, 3 V + 3 I phasors, estimation and bus publishing.

The seed estimated 10 vPMUs per core; the goal here is 50.  The benchmark
computes (and, with a bus, publishes) ``seconds`` of frames of ``pmus`` PMUs as
fast as it can, in batches of ``batch`` frames (1 frame = what a PMU publishing
as soon as each window fills does), and divides by the CPU time this process
used (every thread: Cyclone's included).  No reader is matched, so the figure
is the PMUs' side only (sample building, serialisation, the write call).
With ``serve=True`` every frame also goes through the C37.118 gateway server to
one TCP client in this process (:mod:`.bench_server`): encoding and sending are
counted in ``per_core`` (with the client's reading: same process), and the
client's own thread CPU is reported apart as ``c37118_client_cpu_s``.
"""

from __future__ import annotations

import time
from typing import Any

from ..bus import Bus
from .bench_server import BenchServer
from .frames import FramePublisher
from .signals import make_signal
from .vpmu import VirtualPMUs


def vpmus_per_core(
    pmus: int = 50,
    seconds: float = 3.0,
    rate: float = 60.0,
    f0: float = 60.0,
    pmu_class: str = "P",
    batch: int = 1,
    bus: Bus | None = None,
    serve: bool = False,
) -> dict[str, Any]:
    """Measure; returns the figures as a dict (``per_core`` is the headline)."""
    signals = [make_signal("steady", f0, offset=0.01 * (n % 50), phase0=0.1 * n) for n in range(pmus)]
    group = VirtualPMUs(signals, f0, rate, pmu_class)
    ids = [f"PMU_bench{n}" for n in range(pmus)]
    publisher = FramePublisher(bus, ids, f0, rate, station="bench") if bus is not None else None
    frames = round(seconds * rate)
    origin = int(time.time())
    server = BenchServer(pmus, f0, rate) if serve else None
    estimate_cpu = publish_cpu = serve_cpu = 0.0
    for k in range(0, frames, batch):
        t0 = time.process_time()
        times, est = group.frames(k, min(frames, k + batch))
        t1 = time.process_time()
        estimate_cpu += t1 - t0
        if publisher is not None:
            for n, t in enumerate(times.tolist()):
                publisher.publish(origin + t, est.phasors[:, n], est.freq[:, n], est.rocof[:, n])
            publish_cpu += time.process_time() - t1
        if server is not None:
            t2 = time.process_time()
            for n, t in enumerate(times.tolist()):
                server.serve(origin + t, est, n)
            serve_cpu += time.process_time() - t2
    received = server.close() if server is not None else 0
    client_cpu = server.client.cpu_s if server is not None else 0.0
    total = estimate_cpu + publish_cpu + serve_cpu
    pmu_seconds = pmus * frames / rate
    return {
        "pmus": pmus,
        "rate": rate,
        "f_nominal": f0,
        "class": pmu_class,
        "phasors": 6,
        "batch_frames": batch,
        "simulated_s": frames / rate,
        "cpu_estimation_s": round(estimate_cpu, 3),
        "cpu_publishing_s": round(publish_cpu, 3),
        "published_frames": 0 if publisher is None else publisher.published,
        "estimation_only_per_core": round(pmu_seconds / estimate_cpu, 1),
        "per_core": round(pmu_seconds / total, 1),
        "with_bus": publisher is not None,
        "with_c37118_server": server is not None,
        "cpu_serving_s": round(serve_cpu, 3),
        "c37118_frames_sent": 0 if server is None else server.sent,
        "c37118_frames_received": received,
        "c37118_client_cpu_s": round(client_cpu, 3),
        "goal_per_core": 50,
        "seed_per_core": 10,
    }
