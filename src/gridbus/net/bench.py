"""``gridbus net bench``: what a LAN and its links do to gridbus traffic, measured.

Four parts, each a list of rows (plain dicts):

- ``latency``: ping-pong between two hosts, unicast and multicast, per size
  and rate (the paper's Figures 6-8);
- ``wire``: bytes the writer host puts on its ``eth0`` per sample as reader
  hosts are added (1, 2, 4, 8), unicast and multicast;
- ``stage``: the userspace impairment stage itself: requested vs measured
  delay, and what it costs (CPU per frame, the frame rate it sustains);
- ``impair``: a clean LAN and impaired links (10 ms ± 5 ms, 2 % loss,
  1 Mbit/s; the same with background traffic): per topic one-way delay,
  delivered and lost samples, deadline misses, historian row delay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..stats import summary
from .impair import Impairment
from .lan import Lan

Row = dict[str, Any]
Progress = Callable[[str], None]
PROBE = [sys.executable, str(Path(__file__).with_name("probe.py"))]
FLOW = [sys.executable, "-m", "gridbus.net.flow"]
PAPER_32B_1000 = {"unicast": (243, 269), "multicast": (255, 278)}  # µs, the paper's Figures 7/8 (two setups)
SCENARIOS: dict[str, tuple[Impairment, float]] = {  # name: (link of the writer host, background Mbit/s)
    "clean": (Impairment(), 0.0),
    "10±5 ms, 2 % loss, 1 Mbit/s": (Impairment(10, 5, 2, 1), 0.0),
    "same + 0.9 Mbit/s background": (Impairment(10, 5, 2, 1), 0.9),
}


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress(text)


def _json_lines(text: str) -> list[Row]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ latency
def latency(
    domain: int, sizes: Sequence[int], rates: Sequence[float], count: int, progress: Progress | None = None
) -> list[Row]:
    """One row per (transport, size, rate): one-way latency between two hosts, in µs."""
    rows: list[Row] = []
    for transport in ("unicast", "multicast"):
        with Lan(hosts=2, transport=transport) as lan:
            echo = lan.popen(
                "h2",
                [sys.executable, "-m", "gridbus.bench", "echo", "--system", "gridbus", "--domain", str(domain)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert echo.stdout is not None
            echo.stdout.readline()  # "ready"
            argv = [sys.executable, "-m", "gridbus.net.pingpong", "--domain", str(domain), "--count", str(count)]
            argv += ["--sizes", ",".join(map(str, sizes)), "--rates", ",".join(f"{r:g}" for r in rates)]
            ping = lan.popen("h1", argv, stdout=subprocess.PIPE, text=True)
            assert ping.stdout is not None
            for line in ping.stdout:
                if line.startswith("{"):
                    row = {"part": "latency", "transport": transport, **json.loads(line)}
                    paper = PAPER_32B_1000[transport] if (row["size"], row["rate"]) == (32, 1000) else None
                    row["paper_us"] = paper
                    rows.append(row)
                    _say(progress, f"latency {transport} {row['size']} B {row['rate']:g}/s: p50 {row['p50_us']} µs")
            ping.wait(timeout=60)
            echo.wait(timeout=20)
    return rows


# --------------------------------------------------------------------- wire
def wire(domain: int, readers: Sequence[int], count: int = 200, progress: Progress | None = None) -> list[Row]:
    """Bytes on the writer host's eth0 per Generator_Measurement sample, per number of reader hosts."""
    rows: list[Row] = []
    most = max(readers)
    for transport in ("unicast", "multicast"):
        with Lan(hosts=most + 1, transport=transport) as lan:
            for n in readers:
                hosts = [f"h{i}" for i in range(2, n + 2)]
                common = ["--domain", str(domain), "--partition", f"wire-{transport}-{n}"]
                procs = [
                    lan.popen(
                        h,
                        [*FLOW, "read", *common, "--what", "G_1", "--expect", str(count), "--idle", "2"],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for h in hosts
                ]
                argv = [*FLOW, "write", *common, "--objects", "G_1", "--rate", "200", "--count", str(count)]
                argv += ["--readers", str(n), "--match-timeout", "40", "--fields", "f=60.0"]
                out = lan.run("h1", argv, capture_output=True, text=True, timeout=120)
                result = _json_lines(out.stdout)[-1]
                received = [_json_lines(p.communicate(timeout=60)[0])[-1]["received"] for p in procs]
                row = {
                    "part": "wire",
                    "transport": transport,
                    "readers": n,
                    "matched": result["matched"],
                    "bytes_per_sample": round(result["tx_bytes"] / count, 1),
                    "delivered": round(sum(received) / (count * n), 3),
                }
                rows.append(row)
                _say(progress, f"wire {transport} {n} readers: {row['bytes_per_sample']} B/sample")
    return rows


# -------------------------------------------------------------------- stage
def _probe(lan: Lan, count: int, rate: float, size: int = 64, port: int = 5000) -> dict[str, Any]:
    recv = lan.popen("h2", [*PROBE, "recv", str(port), "--seconds", "60"], stdout=subprocess.PIPE, text=True)
    assert recv.stdout is not None
    recv.stdout.readline()
    argv = [*PROBE, "send", lan.hosts["h2"].address, str(port), "--rate", str(rate), "--count", str(count)]
    lan.run("h1", [*argv, "--size", str(size)], capture_output=True, timeout=120)
    got: dict[str, Any] = json.loads(recv.stdout.readline())
    recv.wait(timeout=10)
    return got


def stage(progress: Progress | None = None) -> list[Row]:
    """The userspace stage: requested vs measured one-way delay; CPU per frame; sustained frame rate."""
    rows: list[Row] = []
    with Lan(hosts=2, netem=False) as lan:
        base = summary(_probe(lan, 1000, 500)["delays_us"], (50,))["p50"] or 0.0
        for imp in (Impairment(0.001), Impairment(1), Impairment(10, 5), Impairment(50, 10)):
            lan.impair("h1", imp)
            delays = _probe(lan, 1000, 500)["delays_us"]
            lan.impair("h1", Impairment())
            stats = lan.hosts["h1"].stage_stats or {}
            measured = summary([d - base for d in delays], (5, 50, 95), digits=1, scale=1e-3)
            rows.append(
                {
                    "part": "stage",
                    "requested": imp.label(),
                    "expect_mean_ms": imp.delay_ms,
                    "expect_p5_ms": round(imp.delay_ms - 0.9 * imp.jitter_ms, 2),
                    "expect_p95_ms": round(imp.delay_ms + 0.9 * imp.jitter_ms, 2),
                    **{f"{k}_ms": v for k, v in measured.items()},
                    "late_us_mean": round(stats.get("late_us_mean", 0.0), 1),
                    "clean_p50_us": base,
                }
            )
            _say(progress, f"stage {imp.label()}: measured mean {measured['mean']} ms")
        lan.impair("h1", Impairment(delay_ms=0.001))  # through the stage, no real hold
        blast = _probe(lan, 30000, 0)
        lan.impair("h1", Impairment())
        stats = lan.hosts["h1"].stage_stats or {}
        forward = stats.get("directions", {}).get("p1>q1", {})
        frames = max(1, forward.get("received", 0))
        rows.append(
            {
                "part": "stage",
                "requested": "unpaced 64 B frames",
                "sent": 30000,
                "forwarded": forward.get("sent", 0),
                "arrived": len(blast["delays_us"]),
                "arrived_per_s": round(len(blast["delays_us"]) / max(1e-9, blast["span_s"])),
                "stage_cpu_us_per_frame": round(stats.get("cpu_s", 0.0) * 1e6 / frames, 1),
                "stage_frames_per_s": round(frames / max(1e-9, stats.get("cpu_s", 0.0)), 0),
            }
        )
        _say(progress, f"stage cost: {rows[-1]['stage_cpu_us_per_frame']} µs CPU per frame")
    return rows


# ------------------------------------------------------------------- impair
def impair(domain: int, seconds: float, progress: Progress | None = None) -> list[Row]:
    """Per scenario and topic: one-way delay, delivered/lost, deadline misses; historian row delay."""
    from ..historian.analysis import delays as row_delays

    rows: list[Row] = []
    for name, (link, background) in SCENARIOS.items():
        with Lan(hosts=2) as lan, tempfile.TemporaryDirectory() as tmp:
            lan.impair("h1", link)
            rows += _scenario(lan, domain, name, seconds, background, Path(tmp) / "h.sqlite", row_delays)
            for row in rows[-3:]:
                _say(progress, f"{name}: {row['topic']} p50 {row.get('p50_ms')} ms, lost {row.get('lost')}")
    return rows


def _scenario(
    lan: Lan, domain: int, name: str, seconds: float, background: float, db: Path, row_delays: Any
) -> list[Row]:
    common = ["--domain", str(domain), "--partition", "impair"]
    rate, commands = 50, max(10, int(seconds * 5))
    count = int(rate * seconds)
    flows = {
        "Generator_Measurement": (
            ["--what", "G_1", "--deadline", "0.03"],
            ["--objects", "G_1", "--fields", "f=60.0"],
            rate,
            count,
        ),
        "Breaker_Command": (
            ["--what", "CB", "--role", "Command"],
            ["--objects", "CB_1,CB_2", "--role", "Command", "--fields", "status=OPEN|CLOSED"],
            5,
            commands,
        ),
    }
    readers = {}
    for topic, (read_args, _, _, n) in flows.items():
        proc = lan.popen(
            "h2",
            [*FLOW, "read", *common, *read_args, "--expect", str(n), "--idle", "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        readers[topic] = proc
    record = lan.popen(
        "h2",
        [
            sys.executable,
            "-m",
            "gridbus.cli.main",
            "record",
            "G_1",
            "--role",
            "Measurement",
            "--db",
            str(db),
            *common[:2],
            "--partition",
            "impair",
            "--duration",
            str(seconds + 8),
            "--flush-interval",
            "0.2",
            "--batch",
            "10",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    noise = []
    if background:
        noise.append(
            lan.popen(
                "h2", [*PROBE, "recv", "6000", "--seconds", str(seconds + 20), "--quiet"], stdout=subprocess.DEVNULL
            )
        )
        packets = int(background * 1e6 / 8 / 1000 * (seconds + 6))
        noise.append(
            lan.popen(
                "h1",
                [
                    *PROBE,
                    "send",
                    lan.hosts["h2"].address,
                    "6000",
                    "--size",
                    "1000",
                    "--mbit",
                    str(background),
                    "--count",
                    str(packets),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
    writers = [
        lan.popen(
            "h1",
            [
                *FLOW,
                "write",
                *common,
                *write_args,
                "--rate",
                str(r),
                "--count",
                str(n),
                "--readers",
                "2" if topic == "Generator_Measurement" else "1",
                "--settle",
                "2",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for topic, (_, write_args, r, n) in flows.items()
    ]
    for w in writers:
        w.communicate(timeout=seconds * 4 + 60)
    rows = []
    for topic, proc in readers.items():
        got = _json_lines(proc.communicate(timeout=60)[0])[-1]
        written = flows[topic][3]
        rows.append(
            {
                "part": "impair",
                "scenario": name,
                "topic": topic,
                "written": written,
                "delivered": got["received"],
                "lost": written - got["received"],
                "deadline_missed": got["deadline_missed"] if topic == "Generator_Measurement" else None,
                **{f"{k}_ms": v for k, v in summary(got["delays_us"], (50, 90, 99), digits=2, scale=1e-3).items()},
                "delays_ms": [round(d / 1000, 3) for d in got["delays_us"]],
            }
        )
    record.wait(timeout=seconds + 30)
    for proc in noise:
        proc.terminate()
    historian = row_delays(str(db)) if db.exists() else {}
    stats = historian.get("Generator_Measurement", {})
    rows.append(
        {
            "part": "impair",
            "scenario": name,
            "topic": "historian row (Generator_Measurement)",
            "delivered": stats.get("count"),
            **{f"{k}_ms": _round(stats.get(f"{k}_ms")) for k in ("mean", "p50", "p90", "p99", "max")},
        }
    )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ---------------------------------------------------------------------- all
def run(
    parts: Sequence[str],
    domain: int,
    sizes: Sequence[int],
    rates: Sequence[float],
    count: int,
    readers: Sequence[int],
    seconds: float,
    progress: Progress | None = None,
) -> list[Row]:
    """The selected parts, in order; every row says its ``part``."""
    rows: list[Row] = []
    if "latency" in parts:
        rows += latency(domain, sizes, rates, count, progress)
    if "wire" in parts:
        rows += wire(domain, readers, progress=progress)
    if "stage" in parts:
        rows += stage(progress)
    if "impair" in parts:
        rows += impair(domain, seconds, progress)
    return rows
