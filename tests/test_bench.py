"""The benchmark commands run end to end and print what they promise (figures, not asserts on speed).

Each bench runs with tiny counts; its ``--json`` lines are checked for the
expected keys and for sane numbers (finite, positive), never for how fast.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import pytest
from helpers import gridbus, next_domain

from gridbus.cli.main import main

LATENCY_KEYS = {"system", "mode", "label", "size", "rate", "rounds", "count", "lost", "mean_us", "p50_us", "p90_us"}


def lines(text: str) -> tuple[dict, list[dict], list[dict]]:
    """(machine, rows, goals) of a bench's --json output."""
    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert "machine" in parsed[0], parsed[0]
    machine = parsed[0]["machine"]
    assert len(machine["loadavg"]) == 3 and all(x >= 0 for x in machine["loadavg"]) and machine["cpus"] >= 1
    rows = [p for p in parsed[1:] if "goal" not in p and "note" not in p]
    goals = [p for p in parsed[1:] if "goal" in p]
    for g in goals:
        assert isinstance(g["met"], bool) and g["target"].split()[0] in ("<=", ">=")
    return machine, rows, goals


def positive(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def test_bench_codec_json(capsys):
    """Every asked type: the codec's bytes equal the binding's, four positive timings, the goal rows."""
    assert main(["bench", "codec", "--json", "--rounds", "2", "--batch-ms", "1",
                 "--types", "Generator_Measurement,Bench_Ping,Breaker_Command"]) == 0  # fmt: skip
    _machine, rows, goals = lines(capsys.readouterr().out)
    assert {r["type"] for r in rows} == {"Generator_Measurement", "Bench_Ping", "Breaker_Command"}
    for r in rows:
        assert r["same_bytes"] is True and r["path"] in ("fast", "binding") and r["bytes"] > 0
        times = [r[f"{who}_{way}_us"] for who in ("binding", "codec") for way in ("encode", "decode")]
        assert positive(*times, r["encode_speedup"], r["decode_speedup"])
        spread = r["spread_us"]["codec_encode"]
        assert spread["min"] <= spread["median"] <= spread["max"]
    assert {g["goal"] for g in goals} >= {
        "Generator_Measurement encode speed-up",
        "Generator_Measurement decode µs (codec)",
    }


def test_bench_codec_names_an_unknown_type(capsys):
    assert main(["bench", "codec", "--types", "Generator_Measurement,Nope_Thing"]) == 2
    err = capsys.readouterr().err
    assert "no topic type Nope_Thing" in err and "Generator_Measurement" in err


@pytest.mark.integration
def test_bench_latency_json(env):
    """Three Python systems interleaved (and C ddsperf where installed), with per-round ratios to raw."""
    c_domain = str(next_domain())
    proc = gridbus("bench", "latency", "--sizes", "32,1024", "--rates", "500", "--count", "40", "--per-round", "20",
                   "--ddsperf-domain", c_domain, "--json", env=env, timeout=120, check=True)  # fmt: skip
    _machine, rows, goals = lines(proc.stdout)
    systems = {(r["system"], r["mode"]) for r in rows}
    expected = {("cyclonedds", "wait"), ("gridbus", "wait"), ("gridbus", "poll")}
    assert systems == expected | ({("ddsperf", "wait")} if shutil.which("ddsperf") else set())
    for r in rows:
        assert LATENCY_KEYS <= set(r) and r["size"] in (32, 1024)
        assert positive(r["p50_us"], r["p90_us"], r["p99_us"], r["count"]) and r["p50_us"] <= r["p90_us"] <= r["p99_us"]
        if r["system"] != "ddsperf":
            assert r["rounds"] == 2 and r["count"] == 40 and r["lost"] == 0
        if r["system"] == "gridbus":
            assert positive(r["p50_ratio"], r["p90_ratio"])
    assert {(g["goal"], g["size"]) for g in goals} >= {("gridbus wait p50 / raw (median per round)", 32)}


@pytest.mark.integration
def test_bench_throughput_json(env):
    """Unpaced and paced steps for both payloads: sent = delivered + lost, something delivered."""
    proc = gridbus("bench", "throughput", "--seconds", "0.5", "--rate", "2000", "--json",
                   env=env, timeout=120, check=True)  # fmt: skip
    _machine, rows, _goals = lines(proc.stdout)
    seen = {(r["system"], r["payload"], r["pacing"]) for r in rows}
    assert seen == {(s, p, pace) for s in ("gridbus", "cyclonedds") for p in ("32 B", "Generator_Measurement")
                    for pace in ("unpaced", "paced")}  # fmt: skip
    for r in rows:
        assert r["sent"] > 0 and r["delivered"] + r["lost"] == r["sent"] and positive(r["delivered_per_s"])
        if r["pacing"] == "unpaced":
            assert r["kept_pace"] is None  # nothing to keep pace with
        else:
            assert isinstance(r["kept_pace"], bool)
    assert all(r["rate"] == 2000 for r in rows if r["pacing"] == "paced")
    assert not any(r["batch"] for r in rows)


@pytest.mark.integration
def test_bench_throughput_batch_json(env):
    """``--batch``: both systems' writers batch and flush per burst; a paced stream still arrives whole."""
    proc = gridbus("bench", "throughput", "--batch", "--payloads", "ping", "--seconds", "0.5", "--rate", "1000",
                   "--json", env=env, timeout=120, check=True)  # fmt: skip
    _machine, rows, _goals = lines(proc.stdout)
    assert {(r["system"], r["pacing"]) for r in rows} == {
        (s, p) for s in ("gridbus", "cyclonedds") for p in ("unpaced", "paced")
    }
    for r in rows:
        assert r["batch"] is True and r["delivered"] + r["lost"] == r["sent"] and positive(r["delivered_per_s"])
        assert r["writer_cpu_us"] >= 0 and r["sink_cpu_us"] >= 0  # per sample; 0 when under a clock tick
    # 1000/s in bursts of about one sample: a writer that held samples back would lose the step's end
    assert all(r["lost"] <= 0.01 * r["sent"] for r in rows if r["pacing"] == "paced")


@pytest.mark.integration
def test_bench_throughput_sweep_json(env):
    """The sweep's steps double from the start rate; each system gets a result row and the goals."""
    proc = gridbus("bench", "throughput", "--sweep", "--payloads", "measurement", "--seconds", "0.3",
                   "--start-rate", "500", "--max-steps", "2", "--json", env=env, timeout=120, check=True)  # fmt: skip
    _machine, rows, goals = lines(proc.stdout)
    results = {r["system"]: r for r in rows if "sustained_per_s" in r}
    assert set(results) == {"gridbus", "cyclonedds"}
    for system, result in results.items():
        steps = [r["rate"] for r in rows if r.get("system") == system and r.get("pacing") == "paced"]
        assert steps[0] == 500 and len(steps) == result["steps"] <= 2
        assert result["sustained_per_s"] in (0, *steps)
    assert {g["goal"] for g in goals} == {"gridbus / raw sustained rate", "gridbus sustained samples/s"}


@pytest.mark.integration
def test_bench_waveform_json(env):
    """16 KB samples through raw, gridbus and (with pyzmq) ZeroMQ over tcp on 127.0.0.1."""
    proc = gridbus("bench", "waveform", "--sizes", "16384", "--count", "10", "--per-round", "5", "--rate", "100",
                   "--json", env=env, timeout=120, check=True)  # fmt: skip
    _machine, rows, goals = lines(proc.stdout)
    try:
        import zmq  # noqa: F401

        zmq_there = True
    except ImportError:
        zmq_there = False
    assert {r["system"] for r in rows} == {"cyclonedds", "gridbus"} | ({"zmq"} if zmq_there else set())
    for r in rows:
        assert r["size"] == 16384 and r["count"] == 10 and r["lost"] == 0 and positive(r["p50_us"], r["p90_us"])
    assert bool(goals) == zmq_there


def test_sweep_doubles_then_bisects():
    from gridbus.bench.throughput import _Search

    search = _Search(1000)
    for rate, ok in ((1000, True), (2000, True), (4000, False)):
        assert search.next_rate == rate
        search.record(rate, ok)
    assert search.next_rate == 3000 and search.good == 2000 and search.bad == 4000
    search.record(3000, True)
    assert search.next_rate == 3500 and search.done(max_steps=4, max_rate=1e6)  # 4 steps spent


def test_footprint_of_this_process():
    from gridbus.bench.machine import Footprint

    footprint = Footprint(os.getpid())
    footprint.begin()
    until = time.monotonic() + 0.3
    while time.monotonic() < until:  # some CPU to see
        sum(i * i for i in range(10_000))
    figures = footprint.end()
    assert positive(figures["rss_mb"], figures["seconds"], figures["cpu_percent"]) and figures["cpu_percent"] <= 200


@pytest.mark.integration
def test_bench_rejects_bad_choices(env):
    proc = gridbus("bench", "latency", "--modes", "turbo", "--count", "1", env=env)
    assert proc.returncode == 2 and "unknown receive mode 'turbo'" in proc.stderr
    proc = gridbus("bench", "programs", "--paths", "quick", env=env)
    assert proc.returncode == 2 and "unknown codec path 'quick'" in proc.stderr


def test_one_percentile_helper_for_every_benchmark():
    import numpy as np

    from gridbus.stats import percentile, summary

    values = [5.0, 1.0, 3.0, math.nan, 2.0, 4.0]
    assert percentile(values, 50) == float(np.percentile([1, 2, 3, 4, 5], 50)) == 3.0
    assert percentile(values, 90, digits=1) == round(float(np.percentile([1, 2, 3, 4, 5], 90)), 1)
    assert percentile([], 50) is None and summary([], (50, 90)) == {"mean": None, "p50": None, "p90": None, "max": None}
    assert summary([0.001, 0.003], (50,), digits=2, scale=1000.0) == {"mean": 2.0, "p50": 2.0, "max": 3.0}


def test_ddsperf_gets_the_loopback_configuration(monkeypatch):
    """ddsperf never sees the user's Cyclone configuration: lo only, multicast off, peers on 127.0.0.1."""
    import xml.etree.ElementTree as ET

    from gridbus.bench import ddsperf

    monkeypatch.setenv("CYCLONEDDS_URI", "<Tracing><Verbosity>finest</Verbosity></Tracing>")
    uri = ddsperf.environment()["CYCLONEDDS_URI"]
    assert uri.startswith("file://")
    tree = ET.parse(uri.removeprefix("file://"))
    ns = {"c": "https://cdds.io/config"}
    assert [e.text for e in tree.iterfind(".//c:AllowMulticast", ns)] == ["false"]
    assert [e.get("name") for e in tree.iterfind(".//c:NetworkInterface", ns)] == ["lo"]
    assert [e.get("address") for e in tree.iterfind(".//c:Peer", ns)] == ["127.0.0.1"]


def test_zmq_endpoint_is_matched_only_while_its_peer_is_connected():
    """A real PAIR over tcp on 127.0.0.1: not matched alone, matched once the handshake is done, not after."""
    pytest.importorskip("zmq")
    from bridge_helpers import wait_until

    from gridbus.bench.endpoints import zmq_endpoint

    echo = zmq_endpoint(0, bind=True)  # port 0: it binds a free one
    try:
        assert echo.port > 0 and not echo.matched()
        ping = zmq_endpoint(echo.port, bind=False)
        try:
            assert wait_until(lambda: ping.matched() and echo.matched())
            ping.send(7, b"hello")
            assert echo.receive(5.0) == [(7, b"hello")]
        finally:
            ping.close()
        assert wait_until(lambda: not echo.matched())  # the peer went away
    finally:
        echo.close()
    lonely = zmq_endpoint(echo.port, bind=False)  # nobody listens there now
    try:
        assert not wait_until(lambda: lonely.matched(), timeout=0.5)
    finally:
        lonely.close()


@pytest.mark.integration
def test_a_zmq_echo_binds_its_own_port_and_says_which(env):
    """No port picked by the parent (another process could take it before the echo binds it)."""
    pytest.importorskip("zmq")
    import socket

    from gridbus.bench.endpoints import BusOptions, zmq_endpoint
    from gridbus.bench.peers import Peer, start, start_bound, stop, wait_matched

    with socket.socket() as taken:  # a port someone else holds: an echo told to use it cannot start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="echo process failed to start"):
            start([Peer("echo", "zmq", port=taken.getsockname()[1], options=BusOptions(0))])
        [(peer, proc)] = start_bound([Peer("echo", "zmq", options=BusOptions(0))])
        ep = zmq_endpoint(peer.port, bind=False)
        try:
            assert peer.port not in (0, taken.getsockname()[1])
            wait_matched(ep)
            ep.send(41, b"ping")
            assert ep.receive(5.0) == [(41, b"ping")]  # the echo answered on the port it said
        finally:
            stop(ep, proc)
            ep.close()
