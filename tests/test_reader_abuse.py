"""Readers keep working under abuse and say what happened (issue 10, item 5).

- a writer that invents a new object id per sample cannot grow a reader without bound;
- an exception in an ``on_sample`` callback is logged with its traceback, and delivery goes on;
- a reader learns that an object's writers are gone.

Run as a script, this file is the flooding peer: ``python test_reader_abuse.py DOMAIN PARTITION SECONDS``.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import gridbus, peer

from gridbus import Bus

pytestmark = pytest.mark.integration  # joins DDS or starts processes

CLI = [sys.executable, "-m", "gridbus.cli.main"]
FLOOD_SECONDS = 6.0
RSS_GROWTH_LIMIT_MB = 60.0


# ------------------------------------------------------------------ the flooding peer
def _measurement_cdr(object_id: str, f: float) -> bytes:
    """A Generator_Measurement as XCDR1 little endian: key string, pad to 8, 11 doubles."""
    name = object_id.encode() + b"\x00"
    head = struct.pack("<I", len(name)) + name
    head += b"\x00" * (-len(head) % 8)
    return b"\x00\x01\x00\x00" + head + struct.pack("<11d", 0, 0, 0, 0, 0, 0, f, 0, 0, 0, 0)


def flood(domain: int, partition: str, seconds: float) -> int:
    """Write G_<n> with a new n per sample, as fast as possible, for ``seconds``."""
    from cyclonedds._clayer import ddspy_write_ts

    with Bus(domain, partition=partition) as bus:
        writer = bus.writer("G_1")
        assert _measurement_cdr("G_77", 50.0) == writer.topic.build("G_77", {"f": 50.0}).serialize()
        print("ready", flush=True)
        writer.wait_for_readers(1, timeout=10)
        ref, n = writer._dds._ref, 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(500):
                n += 1
                ddspy_write_ts(ref, _measurement_cdr(f"G_{100 + n}", 50.0), time.time_ns())
        print(f"wrote {n}", flush=True)
    return 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


# ------------------------------------------------------------------------------ tests
def test_a_flood_of_new_ids_leaves_a_reader_bounded_and_working(env, partition, tmp_path):
    out = (tmp_path / "subscribe.out").open("w")
    reader = subprocess.Popen(
        [*CLI, "subscribe", "G", "--json", "--partition", partition, "--timeout", "50"],
        env=env,
        stdout=out,
        stderr=subprocess.PIPE,
        text=True,
    )
    flooder = subprocess.Popen(
        [sys.executable, __file__, env["GRIDBUS_DOMAIN"], partition, str(FLOOD_SECONDS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert flooder.stdout.readline().strip() == "ready", flooder.stderr.read()
        time.sleep(0.5)  # the reader is up: the flood waits for it
        before = peak = _rss_mb(reader.pid)
        while flooder.poll() is None:
            peak = max(peak, _rss_mb(reader.pid))
            time.sleep(0.25)
        wrote = flooder.stdout.read()
        assert flooder.returncode == 0, flooder.stderr.read()
        # the flood is over (its writer left): an object never seen before still gets through
        gridbus(
            "publish",
            "G_2",
            "f=42",
            "--count",
            "5",
            "--rate",
            "10",
            "--wait",
            "5",
            "--partition",
            partition,
            env=env,
            check=True,
        )
        end = time.monotonic() + 10
        while time.monotonic() < end and '"f": 42.0' not in (tmp_path / "subscribe.out").read_text():
            time.sleep(0.2)
        after = _rss_mb(reader.pid)
    finally:
        reader.terminate()
        flooder.kill()
        _, err = reader.communicate(timeout=10)
    received = (tmp_path / "subscribe.out").read_text()
    print(
        f"flood: {wrote.strip()} in {FLOOD_SECONDS} s; reader RSS {before:.0f} MB before, "
        f"{peak:.0f} MB peak, {after:.0f} MB after; {received.count(chr(10))} samples printed"
    )
    assert '"f": 42.0' in received, "the reader stopped receiving after the flood"
    assert peak - before < RSS_GROWTH_LIMIT_MB, f"reader grew from {before:.0f} to {peak:.0f} MB"
    assert "DDS refused" in err and "max_instances=4096" in err, "the reader should say it hit its limit"
    assert "Traceback" not in err


def test_a_failing_callback_is_logged_with_its_traceback_and_delivery_goes_on(domain, partition, caplog):
    got: list[float] = []
    five = threading.Event()

    def fragile(sample) -> None:
        if sample.f_ref == 21.0:
            raise ValueError("controller bug on 21 Hz")
        got.append(sample.f_ref)
        if len(got) == 4:
            five.set()

    with caplog.at_level(logging.ERROR, logger="gridbus.bus"):
        with Bus(domain, partition=partition) as device, Bus(domain, partition=partition) as controller:
            device.reader("G_5", "Command", on_sample=fragile)
            writer = controller.writer("G_5", "Command")
            assert writer.wait_for_readers(1, timeout=5)
            for f_ref in (20.0, 21.0, 22.0, 23.0, 24.0):
                writer.write(f_ref=f_ref)
            assert five.wait(5), f"delivery stopped after the exception: {got}"
    assert got == [20.0, 22.0, 23.0, 24.0]
    failures = [r for r in caplog.records if r.name == "gridbus.bus" and r.exc_info]
    assert len(failures) == 1 and failures[0].exc_info[0] is ValueError
    assert "G_5" in failures[0].getMessage() and "delivery goes on" in failures[0].getMessage()


def test_a_reader_learns_that_an_object_is_gone(domain, partition):
    with Bus(domain, partition=partition) as bus:
        gone_calls = []
        reader = bus.reader("G", on_gone=gone_calls.append)
        writer = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "G_3",
            "--count",
            "10",
            "--rate",
            "20",
            "f=60",
            "--linger",
            "0.5",
        )
        seen_alive = False
        end = time.monotonic() + 8
        while time.monotonic() < end and not seen_alive:
            reader.take(timeout=0.2)
            seen_alive = "G_3" in reader.alive_objects
        assert seen_alive, "G_3 never seen alive"
        writer.wait(timeout=10)
        exited = time.monotonic()
        events = []
        while time.monotonic() < exited + 5 and not events:
            reader.take(timeout=0.2)
            events = reader.gone()
        assert [(e.id, e.topic, e.reason) for e in events] == [("G_3", "Generator_Measurement", "no writers")]
        assert time.monotonic() - exited < 5 and "G_3" not in reader.alive_objects
        assert gone_calls == events, "on_gone gets the same events"
        # an explicit dispose says so
        local = bus.writer("G_4")
        local.write(f=50.0)
        end = time.monotonic() + 5
        while time.monotonic() < end and "G_4" not in reader.alive_objects:
            reader.take(timeout=0.2)
        local.dispose()
        end = time.monotonic() + 5
        while time.monotonic() < end and not (events := reader.gone()):
            reader.take(timeout=0.2)
        assert [(e.id, e.reason) for e in events] == [("G_4", "disposed")]


def test_gone_is_reported_even_after_a_missed_deadline(domain, partition):
    """Cyclone 11.0.1 forgets an instance's writer once a reader deadline is missed, so with a
    DDS reader deadline this object would never be seen to go; gridbus counts deadlines itself."""
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("G_8", deadline=0.3)
        writer = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "G_8",
            "--deadline",
            "0.1",
            "--count",
            "6",
            "--rate",
            "20",
            "f=60",
            "--linger",
            "1.5",
        )
        end = time.monotonic() + 8
        while time.monotonic() < end and "G_8" not in reader.alive_objects:
            reader.take(timeout=0.2)
        assert "G_8" in reader.alive_objects
        writer.wait(timeout=10)  # silent 1.5 s (deadline missed), then gone
        end = time.monotonic() + 5
        events = []
        while time.monotonic() < end and not events:
            reader.take(timeout=0.2)
            events = reader.gone()
        assert [(e.id, e.reason) for e in events] == [("G_8", "no writers")]
        assert reader.deadline_missed >= 3, "1.5 s of silence at a 0.3 s deadline"


def test_reader_limits_are_overridable_and_checked(domain):
    with Bus(domain) as bus:
        reader = bus.reader("G", max_instances=8, max_samples=500)
        limits = reader._sources[0].limits
        assert (limits.max_instances, limits.max_samples, limits.max_samples_per_instance) == (8, 500, 100)
        deep = bus.reader("SM", history=1440)  # the history depth always fits
        assert deep._sources[0].limits.max_samples_per_instance == 1440
        with pytest.raises(Exception, match="max_instances must be positive"):
            bus.reader("G", max_instances=0)


if __name__ == "__main__":
    sys.exit(flood(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
