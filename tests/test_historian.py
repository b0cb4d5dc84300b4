"""The historian: recording to SQLite, CSV and a real PostgreSQL, delays, replay, nothing lost."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import gridbus
from pg import Cluster

from gridbus import Bus
from gridbus.errors import GridbusError
from gridbus.historian import series
from gridbus.historian.sinks import read_rows

pytestmark = pytest.mark.integration  # joins DDS or starts processes

CLI = [sys.executable, "-m", "gridbus.cli.main"]


PARTITION = {"name": None}


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch, partition):
    """Journals and spool files of recorders without --spool go under the test's directory; the
    test's processes meet in their own DDS partition (no other suite's testbed on the domain)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    PARTITION["name"] = partition


def joined(domain: int) -> Bus:
    return Bus(domain, partition=PARTITION["name"])


def start_recorder(domain: int, db: str, *patterns: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*CLI, "record", *patterns, "--db", db, "--domain", str(domain), "--partition", PARTITION["name"], *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith('{"ready"'), proc.stderr.read()
    return proc


def stop_recorder(proc: subprocess.Popen) -> dict:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])["done"] | {"stderr": err}


def stream(domain: int, count: int, rate: float, ids=("CTRL_h1", "CTRL_h2"), during=None) -> None:
    """Reliable samples numbered 0..count-1 (reason = the number), spread over a few objects."""
    with joined(domain) as bus:
        writers = [bus.writer(i, "State") for i in ids]
        writers[0].wait_for_readers(1)
        start = time.monotonic()
        for n in range(count):
            writers[n % len(writers)].write(stage="STEP", reason=str(n))
            if during and n == count // 2:
                during()
            time.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
        time.sleep(0.5)


def test_record_to_sqlite_queryable_by_hand_with_delays_and_series(domain, tmp_path, env):
    db = str(tmp_path / "h.sqlite")
    rec = start_recorder(domain, db, "CTRL", "G_1", extra=("--batch", "20", "--flush-interval", "0.2"))
    with joined(domain) as bus:
        g1 = bus.writer("G_1")
        g1.wait_for_readers(1)
        for n in range(50):
            g1.write(f=59.9 + n * 0.004, Va=120.0)
            time.sleep(0.01)
    stream(domain, 100, 400.0)
    stats = stop_recorder(rec)
    # every sample the recorder took is stored; measurements are best effort on the bus, state is not
    assert stats["received"] == stats["written"] and stats["dropped"] == 0
    measured = stats["received"] - 100
    assert 45 <= measured <= 50
    with sqlite3.connect(db) as conn:  # the schema, by hand
        rows = conn.execute("SELECT topic, count(*) FROM samples GROUP BY topic ORDER BY topic").fetchall()
        assert rows == [("Controller_State", 100), ("Generator_Measurement", measured)]
        fields = json.loads(conn.execute("SELECT fields FROM samples WHERE object_id='G_1' LIMIT 1").fetchone()[0])
        assert fields["Va"] == 120.0 and "id" not in fields
        assert conn.execute("SELECT min(created_time - source_time) >= 0 FROM samples").fetchone()[0] == 1
    t, f = series(db, "G_1", "f", topic="Generator_Measurement")
    assert isinstance(f, np.ndarray) and len(f) == measured and np.all(np.diff(t) > 0)
    assert np.all(np.diff(f) > 0) and 59.9 <= f[0] and f[-1] <= 59.9 + 49 * 0.004 + 1e-9
    out = gridbus("delays", "--db", db, "--json", "--png", str(tmp_path / "d.png"), env=env, check=True)
    report = json.loads(out.stdout)
    assert set(report) == {"Controller_State", "Generator_Measurement"}
    for entry in report.values():
        assert 0 <= entry["p50_ms"] <= entry["p90_ms"] <= entry["p99_ms"] <= entry["max_ms"]
    assert (tmp_path / "d.png").stat().st_size > 5000


def test_sigterm_flushes_everything_taken(domain, tmp_path):
    db = str(tmp_path / "h.csv")
    rec = start_recorder(
        domain, db, "CTRL", extra=("--batch", "100000", "--max-buffer", "100000", "--flush-interval", "600")
    )
    stream(domain, 300, 500.0)
    stats = stop_recorder(rec)
    assert stats["written"] == 300
    rows = list(read_rows(f"csv:{db}"))
    assert sorted(int(json.loads(r[5])["reason"]) for r in rows) == list(range(300))


def test_replay_keeps_the_timing_and_renames(domain, tmp_path):
    db = str(tmp_path / "h.sqlite")
    rec = start_recorder(domain, db, "L_1", extra=("--flush-interval", "0.2"))
    with joined(domain) as bus:
        w = bus.writer("L_1", "Command")
        w.wait_for_readers(1)
        for p in (500.0, 900.0, 1300.0):  # a load pattern, 0.4 s apart
            w.write(P_ref=p)
            time.sleep(0.4)
    stop_recorder(rec)
    with joined(domain) as bus:
        reader = bus.reader("L_4", "Command")
        got = []
        thread = threading.Thread(target=lambda: got.extend(reader.iter(timeout=3, count=3)))
        thread.start()
        time.sleep(0.3)
        proc = subprocess.run(
            [
                *CLI,
                "replay",
                "--db",
                db,
                "--speed",
                "2",
                "--as",
                "L_1=L_4",
                "--domain",
                str(domain),
                "--partition",
                PARTITION["name"],
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        thread.join()
    assert proc.returncode == 0, proc.stderr
    assert [s.P_ref for s in got] == [500.0, 900.0, 1300.0]
    gaps = np.diff([s.reception_time for s in got])
    assert np.all((gaps > 0.12) & (gaps < 0.4))  # 0.4 s recorded, replayed 2x faster


def test_bad_replay_source_is_a_clear_error(tmp_path, env):
    bad = tmp_path / "bad.csv"
    bad.write_text("object_id,topic,source_time,reception_time,created_time,fields\nG_1,Generator_Measurement,x\n")
    proc = gridbus("replay", "--csv", str(bad), env=env)
    assert proc.returncode == 2 and f"{bad}:2: malformed row" in proc.stderr
    proc = gridbus("delays", "--db", str(tmp_path / "missing.sqlite"), env=env)
    assert proc.returncode == 2 and "no such database" in proc.stderr
    with pytest.raises(GridbusError, match="no 'P'"):
        series(_empty_db(tmp_path), "G_1", "P")


def _empty_db(tmp_path) -> str:
    path = tmp_path / "empty.sqlite"
    from gridbus.historian.sinks import SqliteSink

    sink = SqliteSink(str(path))
    sink.check()
    sink.close()
    return str(path)


@pytest.fixture(scope="module")
def postgres():
    cluster = Cluster()
    yield cluster
    cluster.destroy()


@pytest.mark.timeout(120)
def test_postgres_restart_mid_stream_loses_and_duplicates_nothing(domain, postgres):
    import psycopg

    rec = start_recorder(domain, postgres.url, "CTRL", extra=("--batch", "50", "--flush-interval", "0.2"))
    count = 1500
    stream(domain, count, 300.0, during=lambda: (postgres.stop(), time.sleep(1.0), postgres.start()))
    stats = stop_recorder(rec)
    assert stats["written"] == count and stats["dropped"] == 0 and stats["spooled"] == 0
    assert stats["reconnects"] >= 1 and "database unavailable" in stats["stderr"]
    with psycopg.connect(postgres.url) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT fields->>'reason') FROM samples WHERE topic='Controller_State'"
        ).fetchone()
        assert (total, distinct) == (count, count)
        lag = conn.execute("SELECT max(created_time - source_time) FROM samples").fetchone()[0]
        assert lag > 0.9  # the rows written after the restart waited
    rows = list(read_rows(postgres.url, topic="Controller_State"))
    assert len(rows) == count


def test_historian_bench_reports_ingest_and_delays(env, tmp_path):
    proc = gridbus(
        "bench",
        "historian",
        "--partition",
        PARTITION["name"],
        "--db",
        str(tmp_path / "b.sqlite"),
        "--batches",
        "10",
        "--objects",
        "5",
        "--rate",
        "50",
        "--seconds",
        "1",
        "--json",
        env=env,
        timeout=60,
        check=True,
    )
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["batch"] == 10 and row["stored"] == row["received"] > 0
    assert 0 < row["delay_p50_ms"] <= row["delay_p99_ms"]


def test_historian_bench_measures_the_loss_of_a_kill_9(env, tmp_path):
    proc = gridbus(
        "bench",
        "historian",
        "--partition",
        PARTITION["name"],
        "--db",
        str(tmp_path / "k.sqlite"),
        "--batches",
        "1000",
        "--objects",
        "5",
        "--rate",
        "100",
        "--seconds",
        "3",
        "--kill-at",
        "2",
        "--json",
        env=env,
        timeout=60,
        check=True,
    )
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["published_before_kill"] >= row["stored_before_kill"] > 0
    assert row["recovered_at_restart"] > 0  # the batch of 1000 was still in the journal
    assert 0 <= row["lost_last_100ms"] <= row["lost_last_1s_before_kill"]
