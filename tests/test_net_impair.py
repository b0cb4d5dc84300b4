"""What an impaired link does to gridbus topics: reliable ones arrive complete, best effort loses.

Root needed (network namespaces); skipped with the reason otherwise.  Bounds
are tolerant: loss is random, and the machine is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gridbus.net import Impairment, Lan, can_build

pytestmark = [pytest.mark.integration, pytest.mark.skipif(can_build() is not None, reason=str(can_build()))]

FLOW = [sys.executable, "-m", "gridbus.net.flow"]


def _reader(lan: Lan, common: list[str], what: str, role: str, expect: int, *extra: str) -> subprocess.Popen[str]:
    argv = [*FLOW, "read", *common, "--what", what, "--role", role, "--expect", str(expect), "--seconds", "40", *extra]
    proc = lan.popen("h2", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    return proc


def _writer(lan: Lan, common: list[str], objects: str, role: str, rate: int, count: int, *fields: str):
    argv = [*FLOW, "write", *common, "--objects", objects, "--role", role, "--rate", str(rate)]
    argv += ["--count", str(count), "--linger", "3", "--fields", *fields]
    return lan.popen("h1", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_reliable_topics_complete_and_best_effort_loses_under_20_percent_loss(domain, partition):
    breakers = "CB_1,CB_2,CB_3,CB_4,CB_5"
    common = ["--domain", str(domain), "--partition", partition]
    with Lan(hosts=2) as lan:
        lan.impair("h1", Impairment(loss_pct=20))  # each direction of the writer host's link
        commands = _reader(lan, common, "CB", "Command", 40)
        states = _reader(lan, common, "CB", "State", 20, "--field", "status", "--idle", "6")
        measurements = _reader(lan, common, "G_1", "Measurement", 300, "--idle", "3")
        writers = [
            _writer(lan, common, breakers, "Command", 10, 40, "status=OPEN|CLOSED"),
            _writer(lan, common, breakers, "State", 10, 20, "status=CLOSED|OPEN"),
            _writer(lan, common, "G_1", "Measurement", 100, 300, "f=60.0"),
        ]
        for w in writers:
            assert _result(w)["matched"] == 1
        got_commands, got_states, got_measurements = (_result(r) for r in (commands, states, measurements))
    # reliable commands: every one of the 40, 8 per breaker
    assert got_commands["received"] == 40
    assert got_commands["per_object"] == {f"CB_{i}": 8 for i in range(1, 6)}
    # breaker state (reliable, keep last 1): every breaker's final position arrives
    assert got_states["last"] == {
        f"CB_{i}": "Position.OPEN" if (15 + i - 1) % 2 else "Position.CLOSED" for i in range(1, 6)
    }
    # best effort measurements lose about the link's 20 % (tolerant bounds)
    lost = 1 - got_measurements["received"] / 300
    assert 0.05 < lost < 0.40, lost


def test_net_bench_latency_json(env, domain, tmp_path):
    """``gridbus net bench``: one row per transport and point, the paper's figure only at 32 B, 1000/s."""
    from helpers import gridbus

    argv = ["net", "bench", "--parts", "latency", "--sizes", "32", "--rates", "1000", "--count", "200"]
    out = gridbus(*argv, "--domain", str(domain), "--json", "--plot", str(tmp_path), env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["transport"] for r in rows} == {"unicast", "multicast"}
    for row in rows:
        assert row["part"] == "latency" and row["lost"] < row["count"] and row["p50_us"] > 0
    assert {tuple(r["paper_us"]) for r in rows} == {(243, 269), (255, 278)}
    assert (tmp_path / "net-latency.png").stat().st_size > 1000
