"""``gridbus bridge bench``: what the bridge adds — latency and throughput, DDS→Zenoh→DDS vs DDS.

The ping side joins domain A; an echo (or sink) process is on the same
domain (direct DDS) or on domain B behind two bridges (site A's listening,
site B's connecting, mutual TLS on 127.0.0.1), so a round trip crosses the
bridges twice.  It reuses :mod:`gridbus.bench`'s ping point, echo and sink
processes, so the figures compare with ``gridbus bench latency``.
Certificates are made for the run in a temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..bench import BusOptions, endpoint, payload_for
from ..bench.latency import ping_point
from ..bench.peers import STOP, Peer, ask, read_line, start, stop, wait_matched
from .pki import issue, make_ca

__all__ = ["bench_bridge"]

Row = dict[str, Any]
_SIZE = 100  # bytes per Ping, about a Generator_Measurement
_READY_TIMEOUT = 30.0  # s a bridge gets to say it is ready


def _bridge(site: str, domain: int, certs: Path, endpoint_flag: str, port: int, config: str | None) -> Any:
    cmd = [
        sys.executable, "-m", "gridbus.cli.main", "bridge", "--site", site, "--domain", str(domain),
        endpoint_flag, f"tls/127.0.0.1:{port}",
        "--cert", str(certs / f"{site}.pem"), "--key", str(certs / f"{site}.key"), "--ca", str(certs / "ca" / "ca.pem"),
    ]  # fmt: skip
    if config:
        cmd += ["--config", config]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = read_line(proc, _READY_TIMEOUT)  # bounded: a hung bridge ends the bench, it does not hang it
    if line is None or not line.startswith('{"ready"'):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the bench bridge of site {site} did not start within {_READY_TIMEOUT:g} s")
    return proc


def _stop(proc: Any) -> dict[str, Any]:
    proc.terminate()
    try:
        out = proc.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0]
    done = [json.loads(line)["done"] for line in (out or "").splitlines() if line.startswith('{"done"')]
    return done[0] if done else {}


def _latency(path: str, ping: BusOptions, echo: BusOptions, count: int, rate: float) -> Row:
    (proc,) = start([Peer("echo", "gridbus", "wait", "Ping", echo)])
    ep = endpoint(ping, "gridbus", "Ping", "Pong", "wait")
    try:
        wait_matched(ep, timeout=20)
        row = ping_point(ep, _SIZE, rate, count, "wait")
    finally:
        stop(ep, proc)
        ep.close()
    return {"path": path, "measure": "one-way latency (us)", **row}


def _throughput(path: str, sender: BusOptions, sink: BusOptions, seconds: float) -> Row:
    payload = payload_for(_SIZE)
    (proc,) = start([Peer("sink", "gridbus", "wait", "Ping", sink)])
    ep = endpoint(sender, "gridbus", "Ping", "Pong", "wait")
    try:
        wait_matched(ep, timeout=20)
        time.sleep(0.5)
        sent, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            for _ in range(50):
                ep.send(sent, payload)
                sent += 1
        elapsed = time.perf_counter() - began
        time.sleep(1.0)  # let the bridges drain
        report = ask(ep, proc, STOP, timeout=10.0)  # the sink answers STOP with its totals
    finally:
        stop(ep, proc)
        ep.close()
    if report is None:
        raise RuntimeError(f"the bench sink ({path}) never reported its totals")
    delivered = int(report["delivered"])
    return {
        "path": path,
        "measure": "throughput (samples/s)",
        "size": _SIZE,
        "sent_per_s": round(sent / elapsed),
        "delivered_per_s": round(delivered / elapsed),
        "lost_pct": round(100.0 * (sent - delivered) / sent, 2) if sent else 0.0,
    }


def bench_bridge(
    domain: int | None,
    *,
    count: int = 2000,
    rate: float = 200.0,
    throughput_seconds: float = 3.0,
    port: int = 17447,
    config: str | None = None,
) -> list[Row]:
    """Rows: one-way latency direct and bridged, then throughput direct and bridged."""
    from ..bus import default_domain

    a = default_domain() if domain is None else domain
    b = (a + 1) % 233
    site_a, site_b = BusOptions(a, config=config), BusOptions(b, config=config)
    rows: list[Row] = [
        _latency("direct DDS", site_a, site_a, count, rate),
    ]
    with tempfile.TemporaryDirectory(prefix="gridbus-bridge-bench-") as tmp:
        certs = Path(tmp)
        ca = make_ca(certs / "ca")
        for site in ("A", "B"):
            issue(ca, certs, site)
        bridges = [_bridge("A", a, certs, "--listen", port, config)]
        try:  # site A's bridge is stopped even if site B's does not start
            bridges.append(_bridge("B", b, certs, "--connect", port, config))
            rows.append(_latency("bridged (DDS->Zenoh TLS->DDS)", site_a, site_b, count, rate))
            rows.append(_throughput("direct DDS", site_a, site_a, throughput_seconds))
            rows.append(_throughput("bridged (DDS->Zenoh TLS->DDS)", site_a, site_b, throughput_seconds))
        finally:
            for proc in reversed(bridges):
                _stop(proc)
    p50 = {r["path"]: r["p50_us"] for r in rows if "p50_us" in r}
    if len(p50) == 2:
        rows[1]["added_p50_us"] = round(p50["bridged (DDS->Zenoh TLS->DDS)"] - p50["direct DDS"], 1)
    return rows
