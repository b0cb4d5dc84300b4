"""`gridbus testbed-bench` (issue 14, item 7): the figures exist and hang together (no timing asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("andes")

from gridbus.testbed.andes.bench import bench_cosim  # noqa: E402

pytestmark = pytest.mark.integration


def test_bench_reports_throughput_cpu_and_loop_latency(domain):
    figures = bench_cosim("ieee14", seconds=2.0, domain=domain)
    print(figures)  # the figures, for the record
    assert figures["objects"] == 14 + 20 + 5 + 11 + 5  # buses, lines, machines, loads, PMUs
    assert figures["times_real_time"] > 0 and figures["samples_per_s"] > 0
    assert set(figures["cpu_share"]) == {"testbed", "agc", "ems"}
    # the loop closed: the trip was seen on the bus and an AGC set-point came back and was applied
    assert figures["loop_ms"] is not None and figures["loop_ms"] > 0
    assert figures["event_to_applied_ms"] >= figures["detect_ms"]
