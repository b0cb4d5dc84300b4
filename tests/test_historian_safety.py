"""The historian's promises under trouble: what it refuses, what a crash, a full disk or a flood
loses (and that every loss is counted), no password anywhere, private files, damaged recordings."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import gridbus, gridbus_each
from pg import Cluster

from gridbus import Bus
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


ROOT = os.geteuid() == 0


# -- helpers ------------------------------------------------------------------------------
def start_recorder(domain: int, db: str, spool: Path, *extra: str, patterns=("CTRL",)) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            *CLI,
            "record",
            *patterns,
            "--db",
            db,
            "--domain",
            str(domain),
            "--partition",
            PARTITION["name"],
            "--spool",
            str(spool),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith('{"ready"'):
        proc.kill()
        raise AssertionError(f"recorder did not start: {line} {proc.stderr.read()}")
    proc.ready = json.loads(line)["ready"]
    return proc


def stop_recorder(proc: subprocess.Popen) -> tuple[dict, str, str, int]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=40)
    return json.loads(out.strip().splitlines()[-1])["done"], out, err, proc.returncode


def refused(db: str, spool: Path, env: dict) -> subprocess.CompletedProcess:
    """``gridbus record`` on an unusable target: exit 2 with a clear error, no sample taken."""
    return refused_each([db], spool, env)[0]


def refused_each(dbs: list[str], spool: Path, env: dict) -> list[subprocess.CompletedProcess]:
    """:func:`refused` for several targets, their processes overlapping (each its own spool: none
    must see the directory another one is making)."""
    spools = [spool] + [spool.with_name(f"{spool.name}-{n}") for n in range(1, len(dbs))]
    argvs = [
        ("record", "CTRL", "--db", db, "--spool", str(s), "--duration", "5") for db, s in zip(dbs, spools, strict=True)
    ]
    procs = gridbus_each(*argvs, env=env, timeout=30)
    for proc, used in zip(procs, spools, strict=True):
        _refused(proc, used)
    return procs


def _refused(proc: subprocess.CompletedProcess, spool: Path) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("gridbus: error:") and "Traceback" not in proc.stderr
    assert '"ready"' not in proc.stdout  # refused, not recorded for 5 s
    assert not list(spool.glob("*.journal*")) if spool.exists() else True


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs at ``path`` (root only); always unmounted."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only(path: Path):
    """Make a file or directory read-only for this process, even as root (a read-only bind mount)."""
    if not ROOT:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def gridbus_db(path: Path) -> Path:
    from gridbus.historian.sinks import SqliteSink

    sink = SqliteSink(str(path))
    sink.check()
    sink.close()
    return path


def publish_numbered(
    domain: int,
    count: int,
    rate: float,
    ids=("CTRL_h1", "CTRL_h2"),
    on_sample=None,
    readers: int = 1,
    linger: float = 0.5,
) -> dict[int, float]:
    """Samples numbered 0..count-1, returns number -> time written.  Controllers' State samples
    (reliable, the writer keeps 256 per object for late joiners) carry the number in ``reason``;
    generators' Measurement samples (best effort, volatile: no history) in ``P``."""
    written: dict[int, float] = {}
    with joined(domain) as bus:
        role = "State" if ids[0].startswith("CTRL") else "Measurement"
        writers = [bus.writer(i, role) for i in ids]
        for w in writers:
            assert w.wait_for_readers(readers, timeout=10)
        time.sleep(0.3)  # the readers' side of discovery completes too
        start = time.monotonic()
        for n in range(count):
            if role == "State":
                writers[n % len(writers)].write(stage="STEP", reason=str(n))
            else:
                writers[n % len(writers)].write(P=float(n), f=60.0)
            written[n] = time.time()
            if on_sample:
                on_sample(n, writers)
            time.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
        time.sleep(linger)
    return written


def stored_numbers(db: str, topic: str = "Controller_State") -> list[tuple[int, float]]:
    """(number, reception time) of every stored row of ``topic`` (see publish_numbered)."""
    key = "reason" if topic == "Controller_State" else "P"
    return [(int(json.loads(f)[key]), r) for _o, _t, _s, r, _c, f in read_rows(db, topic)]


# -- refusing to start ----------------------------------------------------------------------
def _other_columns(tmp: Path) -> Path:
    path = tmp / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE samples (t REAL, value REAL)")
    return path


def _other_tables(tmp: Path) -> Path:
    path = tmp / "app.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE readings (t REAL, value REAL)")
    return path


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.sqlite")
    return tmp / "pipe.sqlite"


def _garbage(tmp: Path) -> Path:
    (tmp / "garbage.sqlite").write_bytes(b"this is not a database, just some text\n" * 200)
    return tmp / "garbage.sqlite"


def _csv_other_header(tmp: Path) -> Path:
    (tmp / "other.csv").write_text("time,value\n1,2\n")
    return tmp / "other.csv"


SQLITE_CASES = {
    "missing directory": (lambda tmp: tmp / "nope" / "h.sqlite", "does not exist"),
    "a directory": (lambda tmp: (tmp / "dir.sqlite").mkdir() or tmp / "dir.sqlite", "is a directory"),
    "a FIFO": (_fifo, "not a regular file"),
    "not a database": (_garbage, "not a database"),
    "samples with other columns": (_other_columns, "another layout"),
    "another table layout": (_other_tables, "no samples table"),
    "CSV with another header": (_csv_other_header, "another layout"),
    "CSV in a missing directory": (lambda tmp: tmp / "nope" / "h.csv", "does not exist"),
}


@pytest.mark.parametrize("case", list(SQLITE_CASES))
def test_record_refuses_an_unusable_file(case, tmp_path, env):
    make, reason = SQLITE_CASES[case]
    db = make(tmp_path)
    proc = refused(str(db), tmp_path / "spool", env)
    assert str(db) in proc.stderr and reason in proc.stderr, proc.stderr


@pytest.mark.parametrize("what", ["file", "directory"])
def test_record_refuses_a_read_only_database(what, tmp_path, env):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = gridbus_db(folder / "h.sqlite")
    with read_only(db if what == "file" else folder):
        proc = refused(str(db), tmp_path / "spool", env)
        assert str(db) in proc.stderr and "readonly" in proc.stderr.replace("read-only", "readonly"), proc.stderr
        if what == "directory":
            proc = refused(str(folder / "new.sqlite"), tmp_path / "spool", env)
            assert str(folder / "new.sqlite") in proc.stderr


def test_record_refuses_an_unwritable_spool(tmp_path, env):
    spool = tmp_path / "spool"
    spool.mkdir()
    with read_only(spool):
        proc = refused(str(tmp_path / "h.sqlite"), spool, env)
    assert f"spool directory {spool}" in proc.stderr
    assert not (tmp_path / "h.sqlite").exists()


@pytest.fixture(scope="module")
def postgres():
    cluster = Cluster()
    cluster.add_role("alice", "s3cret")
    cluster.add_role("bob", "b0bpw", read_only=True)
    cluster.sql("CREATE DATABASE other", "CREATE DATABASE alicedb OWNER alice")
    cluster.sql("CREATE TABLE samples (t double precision, value double precision)", database="other")
    yield cluster
    cluster.destroy()


def test_record_refuses_an_unusable_postgres(postgres, tmp_path, env):
    spool = tmp_path / "spool"
    cases = [
        (postgres.url_for("gridbus") + "-nowhere", "connection"),  # no server at that socket
        (postgres.url_for("alice", "wrong-pw"), "password authentication failed"),
        (postgres.url_for("bob", "b0bpw"), "read-only"),
        (postgres.url_for("gridbus", database="other"), "another layout"),
    ]
    cases[0] = (cases[0][0].replace(f"host={postgres.socket}", "host=/nonexistent-gridbus-dir"), "connection")
    for (_url, reason), proc in zip(cases, refused_each([url for url, _ in cases], spool, env), strict=True):
        assert reason in proc.stderr, proc.stderr
        assert "wrong-pw" not in proc.stderr + proc.stdout and "b0bpw" not in proc.stderr + proc.stdout
        assert "postgresql://" in proc.stderr  # names the database


# -- secrets and file modes ------------------------------------------------------------------
def test_no_password_in_output_logs_or_files_and_private_modes(postgres, domain, tmp_path):
    spool = tmp_path / "spool"
    url = postgres.url_for("alice", "s3cret", database="alicedb")
    rec = start_recorder(domain, url, spool, "--batch", "10", "--flush-interval", "0.1")
    publish_numbered(domain, 50, 200.0)
    journal = Path(rec.ready["journal"])
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{journal}-wal").stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    files = {p: p.read_bytes() for p in spool.iterdir()}
    stats, out, err, code = stop_recorder(rec)
    assert code == 0 and stats["written"] == 50, err
    assert "s3cret" not in out + err + json.dumps(rec.ready) and "alice:***@" in rec.ready["db"]
    for path, content in files.items():
        assert b"s3cret" not in content and "s3cret" not in path.name
    # a refused password is not shown either, nor a password given as a parameter
    proc = refused(postgres.url_for("alice", "n0t-it") + "&password=n0t-it", spool, {**os.environ})
    assert "n0t-it" not in proc.stderr + proc.stdout and "***" in proc.stderr


def test_files_the_recorder_creates_are_private(domain, tmp_path):
    spool = tmp_path / "spool"
    for db in (tmp_path / "new.sqlite", tmp_path / "new.csv"):
        rec = start_recorder(domain, str(db), spool, "--batch", "5", "--flush-interval", "0.1")
        publish_numbered(domain, 20, 200.0)
        created = [p for p in tmp_path.iterdir() if p.name.startswith("new.")] + list(spool.iterdir())
        stats, _out, err, code = stop_recorder(rec)
        assert code == 0 and stats["written"] == 20, err
        for path in created + [p for p in tmp_path.iterdir() if p.name.startswith("new.")]:
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- kill -9 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "csv", "postgres"])
def test_kill_9_loses_at_most_the_last_commit_interval(kind, domain, tmp_path, request):
    """Samples reach the journal within ~50 ms; a restart forwards them once, nothing twice.

    Best-effort volatile measurements: no DDS history hands the new recorder what the old one lost.
    """
    db, spool = str(tmp_path / f"h.{kind}"), tmp_path / "spool"
    if kind == "postgres":
        cluster = request.getfixturevalue("postgres")
        cluster.sql(f"CREATE DATABASE kill{domain}")
        db = cluster.url_for("gridbus", database=f"kill{domain}")
    slow = ("--batch", "1000", "--flush-interval", "5", "--role", "Measurement")  # the database lags far behind
    rec = start_recorder(domain, db, spool, *slow, patterns=("G_1", "G_2"))
    killed: dict[str, object] = {}
    half = 750

    def crash_and_restart(n: int, writers) -> None:
        if n == half:
            rec.send_signal(signal.SIGKILL)
            killed["at"] = time.time()
            rec.communicate(timeout=10)
            killed["new"] = start_recorder(domain, db, spool, *slow, patterns=("G_1", "G_2"))
            for w in writers:  # the dead reader still counts
                assert w.wait_for_readers(2, timeout=10)
            killed["matched"] = time.time()

    written = publish_numbered(domain, half + 300, 500.0, ids=("G_1", "G_2"), on_sample=crash_and_restart)
    stats, _out, err, code = stop_recorder(killed["new"])
    assert code == 0, err
    numbers = [n for n, _r in stored_numbers(db, "Generator_Measurement")]
    before = [n for n in range(half + 1) if written[n] < killed["at"]]
    missing = [n for n in before if n not in set(numbers)]
    print(
        f"\nkill -9 at 500 samples/s: {len(missing)} of {len(before)} samples lost"
        + (f", written up to {1000 * (killed['at'] - written[min(missing)]):.0f} ms before the kill" if missing else "")
    )
    # everything written more than the commit interval (+ generous slack for a busy machine) before the kill
    assert [n for n in missing if written[n] < killed["at"] - 1.0] == []
    assert stats["recovered"] > 0 and "forwarding them" in err
    # everything written after the new recorder matched, and no row forwarded twice
    assert {n for n in written if written[n] > killed["matched"]} <= set(numbers)
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_a_restarted_recorder_does_not_store_dds_history_again(stop, domain, tmp_path):
    """A transient-local writer hands a new reader its history (Cyclone: the last sample per object,
    and every sample a dead reader left unacknowledged, up to 256 per object for Controller_State).
    Samples an earlier run already stored are not stored again."""
    db, spool = str(tmp_path / "h.sqlite"), tmp_path / "spool"
    phase: dict[str, object] = {}

    def restart(n: int, writers) -> None:
        if n == 249:
            if stop == "SIGTERM":
                time.sleep(0.3)
                stop_recorder(rec)
            else:
                rec.send_signal(signal.SIGKILL)
                rec.communicate(timeout=10)
                time.sleep(0.3)
            phase["new"] = start_recorder(domain, db, spool, "--flush-interval", "0.1")
            for w in writers:
                assert w.wait_for_readers(1 if stop == "SIGTERM" else 2, timeout=10)

    rec = start_recorder(domain, db, spool, "--flush-interval", "0.1")
    publish_numbered(domain, 300, 200.0, on_sample=restart)
    stats, _out, err, code = stop_recorder(phase["new"])
    assert code == 0, err
    numbers = [n for n, _r in stored_numbers(db)]
    # stored once each; a crash may lose the last commit interval (1 s of slack for a busy machine)
    kept = set(range(300)) if stop == "SIGTERM" else set(range(50)) | set(range(250, 300))
    assert len(numbers) == len(set(numbers)) and kept <= set(numbers)
    assert stats["duplicates_skipped"] >= (2 if stop == "SIGTERM" else 50), stats


# -- disk full -------------------------------------------------------------------------------
@pytest.mark.skipif(not ROOT, reason="mounting a small tmpfs to fill needs root")
def test_disk_full_rows_go_to_the_spool_and_every_sample_is_counted(domain, tmp_path):
    spool = tmp_path / "spool"
    with tmpfs(tmp_path / "small", "160k") as small:
        db = str(small / "h.sqlite")
        rec = start_recorder(domain, db, spool, "--batch", "50", "--flush-interval", "0.1", "--exit-timeout", "1")
        count = 3000
        publish_numbered(domain, count, 1500.0)
        stats, out, err, code = stop_recorder(rec)
        assert code == 1 and "database or disk is full" in err
        in_db = [n for n, _r in stored_numbers(db)]
    print(
        f"\ndisk full: {count} published, {stats['written']} in the database, {stats['spooled']} in the spool, "
        f"{stats['lost']} lost"
    )
    spooled = Path(stats["spool_file"])
    assert spooled.parent == spool and str(spooled) in err and stat.S_IMODE(spooled.stat().st_mode) == 0o600
    with open(spooled, newline="") as handle:
        in_spool = [int(json.loads(row["fields"])["reason"]) for row in csv.DictReader(handle)]
    assert stats["received"] == count and stats["written"] == len(in_db) > 0 and stats["spooled"] == len(in_spool) > 0
    assert stats["written"] + stats["spooled"] == stats["received"] and stats["lost"] == 0
    assert sorted(in_db + in_spool) == list(range(count))
    assert f"{len(in_spool)} in the spool file {spooled}" in err
    assert not list(spool.glob("*.journal*"))  # nothing left behind


@pytest.mark.skipif(not ROOT, reason="mounting a small tmpfs to fill needs root")
def test_full_spool_disk_rows_go_to_the_database_from_memory(domain, tmp_path):
    """The journal's disk fills up (a small root file system) while the database's has room."""
    db = str(tmp_path / "h.sqlite")
    with tmpfs(tmp_path / "spool", "200k") as spool:
        rec = start_recorder(domain, db, spool, "--batch", "50", "--flush-interval", "0.1", "--exit-timeout", "2")
        ballast = spool / "ballast"
        with open(ballast, "wb") as handle:  # leave the journal ~40 kB
            with contextlib.suppress(OSError):
                handle.write(b"\0" * (160 * 1024))
        count = 3000
        publish_numbered(domain, count, 1500.0)
        stats, _out, err, code = stop_recorder(rec)
    assert "cannot be written" in err and code == 0, err
    assert sorted(n for n, _r in stored_numbers(db)) == list(range(count))
    assert stats["written"] == stats["received"] == count and stats["lost"] == 0


def test_late_samples_and_slow_writers_are_recorded(domain, tmp_path):
    """Measurements are ordered by source time: a reader drops a late, older sample; and a writer
    offering a longer deadline than the profile's matches no plain reader. The recorder takes both."""
    db = str(tmp_path / "h.sqlite")
    rec = start_recorder(domain, db, tmp_path / "spool", "--flush-interval", "0.1", patterns=("G",))
    with joined(domain) as bus:
        writer, slow = bus.writer("G_1"), bus.writer("G_2", deadline=5.0)
        assert writer.wait_for_readers(1, timeout=10) and slow.wait_for_readers(1, timeout=10)
        time.sleep(0.3)
        now = time.time()
        for n, stamp in enumerate((now, now + 0.001, now - 10.0)):  # the last one 10 s late
            writer.write(P=float(n), f=60.0, timestamp=stamp)
            time.sleep(0.05)
        slow.write(P=3.0, f=60.0)
        time.sleep(0.5)
    stats, _out, err, code = stop_recorder(rec)
    assert code == 0 and stats["dds_lost"] == 0, err
    assert sorted(n for n, _r in stored_numbers(db, "Generator_Measurement")) == [0, 1, 2, 3]


# -- DDS's own losses ------------------------------------------------------------------------
def test_flood_dds_drops_are_counted_and_reported(domain, tmp_path):
    """A best-effort flood faster than the recorder takes: what DDS drops is counted, exit 1."""
    import struct

    from cyclonedds._clayer import ddspy_write_ts

    db, spool = str(tmp_path / "flood.sqlite"), tmp_path / "spool"
    rec = start_recorder(domain, db, spool, "--dds-queue", "200", "--batch", "1000", patterns=("G_1",))
    count, marker = 30_000, 12345.678
    with joined(domain) as bus:
        writer = bus.writer("G_1")
        assert writer.wait_for_readers(1, timeout=10)
        template = bytearray(writer.build(P=marker, f=60.0).serialize())
        offset = template.index(struct.pack("<d", marker))
        payloads = []
        for n in range(count):
            struct.pack_into("<d", template, offset, float(n))
            payloads.append(bytes(template))
        ref = writer._dds._ref
        for payload in payloads:  # as fast as C takes them
            ddspy_write_ts(ref, payload, time.time_ns())
        time.sleep(1.0)
    stats, _out, err, code = stop_recorder(rec)
    stored = len(list(read_rows(db, "Generator_Measurement")))
    print(f"\nflood of {count}: stored {stored}, DDS rejected {stats['dds_rejected']}, lost {stats['dds_lost']}")
    assert stored == stats["received"] == stats["written"] < count
    dropped = stats["dds_rejected"] + stats["dds_lost"]
    assert dropped > 0 and stats["lost"] >= dropped and code == 1
    assert stored + dropped <= count
    assert f"{stats['dds_rejected']} dropped by DDS" in err


# -- damaged recordings ----------------------------------------------------------------------
def _recording(tmp: Path, suffix: str) -> Path:
    path = tmp / f"rec{suffix}"
    if suffix == ".csv":
        from gridbus.historian.sinks import CsvSink

        sink = CsvSink(str(path))
    else:
        from gridbus.historian.sinks import SqliteSink

        sink = SqliteSink(str(path))
    sink.check()
    sink.write([("L_1", "Load_Command", 1000.0 + n, 1000.0 + n, json.dumps({"P_ref": 100.0 + n})) for n in range(2000)])
    sink.close()
    return path


def _truncated_sqlite(tmp: Path) -> tuple[Path, str]:
    path = _recording(tmp, ".sqlite")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path, "not a readable gridbus recording"


def _truncated_csv(tmp: Path) -> tuple[Path, str]:
    path = _recording(tmp, ".csv")
    data = path.read_bytes()
    cut = data.index(b"P_ref", len(data) // 2)
    path.write_bytes(data[:cut])
    return path, "truncated"


def _non_utf8_csv(tmp: Path) -> tuple[Path, str]:
    path = _recording(tmp, ".csv")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b"L_1", b"L_\xe91")
    path.write_bytes(b"".join(lines))
    return path, ":7: not UTF-8 text"


def _bad_json_csv(tmp: Path) -> tuple[Path, str]:
    path = tmp / "json.csv"
    path.write_text(
        'object_id,topic,source_time,reception_time,created_time,fields\nL_1,Load_Command,1.0,1.0,1.0,"{""P_ref"": 1"\n'
    )
    return path, "not a JSON object"


DAMAGED = {
    "corrupt SQLite": (lambda tmp: (_garbage(tmp), "not a readable gridbus recording")),
    "truncated SQLite": _truncated_sqlite,
    "SQLite without samples": (lambda tmp: (_other_tables(tmp), "not a gridbus recording")),
    "truncated CSV": _truncated_csv,
    "non-UTF-8 CSV": _non_utf8_csv,
    "CSV with NUL bytes": (
        lambda tmp: (
            (tmp / "nul.csv").write_bytes(b"object_id,topic\x00\n") and tmp / "nul.csv",
            ":1: not a gridbus recording",
        )
    ),
    "a directory": (lambda tmp: ((tmp / "d.csv").mkdir() or tmp / "d.csv", "is a directory")),
    "a FIFO": (lambda tmp: (os.mkfifo(tmp / "f.csv") or tmp / "f.csv", "not a regular file")),
    "a FIFO as SQLite": (lambda tmp: (_fifo(tmp), "not a regular file")),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_replay_and_delays_on_a_damaged_recording_are_a_clear_error(case, tmp_path, env):
    path, reason = DAMAGED[case](tmp_path)
    is_csv = path.suffix == ".csv"
    runs = [
        ("delays", "--db", f"csv:{path}" if is_csv else str(path)),
        ("replay", "--csv" if is_csv else "--db", str(path), "--speed", "1000"),
    ]
    for args, proc in zip(runs, gridbus_each(*runs, env=env, timeout=20), strict=True):  # a hang fails here
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert proc.stderr.startswith("gridbus: error:") and "Traceback" not in proc.stderr, proc.stderr
        assert str(path) in proc.stderr and reason in proc.stderr, proc.stderr


def test_replay_names_a_row_whose_fields_are_not_json(tmp_path, env):
    path, reason = _bad_json_csv(tmp_path)
    proc = gridbus("replay", "--csv", str(path), env=env, timeout=20)
    assert proc.returncode == 2 and reason in proc.stderr and "L_1 (Load_Command)" in proc.stderr, proc.stderr
