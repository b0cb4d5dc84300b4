"""The benchmark commands run end to end and print what they promise (figures, not asserts on speed)."""

from __future__ import annotations

import json

import pytest
from helpers import gridbus


@pytest.mark.integration
def test_bench_latency_json(env):
    proc = gridbus(
        "bench",
        "latency",
        "--sizes",
        "32,256",
        "--rates",
        "200",
        "--count",
        "60",
        "--json",
        env=env,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {(r["system"], r["mode"]) for r in rows} == {
        ("cyclonedds", "wait"),
        ("gridbus", "wait"),
        ("gridbus", "poll"),
    }
    for r in rows:
        assert {"system", "size", "rate", "count", "mean_us", "p50_us", "p90_us", "p99_us"} <= set(r)
        assert r["count"] == 60 and r["lost"] == 0 and 0 < r["p50_us"] <= r["p90_us"] <= r["p99_us"]
    assert {r["size"] for r in rows} == {32, 256}


@pytest.mark.integration
def test_bench_throughput_json(env):
    proc = gridbus("bench", "throughput", "--size", "32", "--seconds", "1", "--json", env=env, timeout=120, check=True)
    rows = {r["system"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(rows) == {"gridbus", "cyclonedds"}
    for r in rows.values():
        assert r["sent"] > 0 and r["delivered"] + r["lost"] == r["sent"] and r["delivered"] > 0


@pytest.mark.integration
def test_bench_rejects_an_unknown_mode(env):
    proc = gridbus("bench", "latency", "--modes", "turbo", "--count", "1", env=env)
    assert proc.returncode == 2 and "unknown receive mode 'turbo'" in proc.stderr


def test_one_percentile_helper_for_every_benchmark():
    import math

    import numpy as np

    from gridbus.stats import percentile, summary

    values = [5.0, 1.0, 3.0, math.nan, 2.0, 4.0]
    assert percentile(values, 50) == float(np.percentile([1, 2, 3, 4, 5], 50)) == 3.0
    assert percentile(values, 90, digits=1) == round(float(np.percentile([1, 2, 3, 4, 5], 90)), 1)
    assert percentile([], 50) is None and summary([], (50, 90)) == {"mean": None, "p50": None, "p90": None, "max": None}
    assert summary([0.001, 0.003], (50,), digits=2, scale=1000.0) == {"mean": 2.0, "p50": 2.0, "max": 3.0}
