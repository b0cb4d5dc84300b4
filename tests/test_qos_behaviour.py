"""Each profile's behaviour, across real processes on real Cyclone DDS."""

from __future__ import annotations

import time

import pytest
from helpers import peer

from gridbus import Bus

pytestmark = pytest.mark.integration  # joins DDS or starts processes


def test_late_joiner_gets_breaker_state_but_no_old_measurements(domain, partition):
    state = peer(
        "state", "--domain", str(domain), "--partition", partition, "--id", "CB_3", "status=CLOSED", "--linger", "6"
    )
    meas = peer(
        "measure",
        "--domain",
        str(domain),
        "--partition",
        partition,
        "--id",
        "G_1",
        "--count",
        "5",
        "f=60",
        "--linger",
        "6",
        "--wait",
        "0",
    )
    try:
        time.sleep(1.5)  # both have published before the reader exists
        with Bus(domain, partition=partition) as bus:
            breaker = bus.reader("CB_3", "State")
            generator = bus.reader("G_1")
            got_state = breaker.take(timeout=3.0)
            got_meas = generator.take(timeout=1.0)
        assert [s.status.name for s in got_state] == ["CLOSED"], "transient-local state reaches a late joiner"
        assert got_meas == [], "volatile measurements are not replayed"
    finally:
        state.kill(), meas.kill()


def test_command_older_than_its_lifespan_is_never_delivered(domain, partition):
    with Bus(domain, partition=partition) as bus:
        fresh = bus.reader("G_4", "Command")
        stale = bus.reader("G_4", "Command")
        sender = peer(
            "command",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "G_4",
            "action=START",
            "f_ref=60",
            "--linger",
            "4",
        )
        try:
            got_fresh = fresh.take(timeout=3.0)
            assert [c.action.name for c in got_fresh] == ["START"]
            time.sleep(2.5)  # the command profile's lifespan is 2 s
            assert stale.take(timeout=0.2) == [], "an expired command was delivered"
        finally:
            sender.kill()
    with Bus(domain, partition=partition) as late:
        assert late.reader("G_4", "Command").take(timeout=0.5) == []


def test_missed_deadline_is_reported(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("G_7", deadline=0.2)
        writer = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "G_7",
            "--deadline",
            "0.1",
            "--count",
            "10",
            "--rate",
            "20",
            "f=60",
            "--linger",
            "3",
        )
        try:
            assert reader.take(timeout=3.0), "no data before the silence"
            time.sleep(1.5)  # the writer lingers silently
            assert reader.deadline_missed >= 2
            assert reader.deadline_events()[0] == "Generator_Measurement"
            assert reader.deadline_events() == [], "events are reported once"
        finally:
            writer.kill()


def test_samples_are_ordered_by_source_timestamp(domain, partition):
    """A sample stamped older than one already received is dropped, not delivered out of order."""
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("G_9")
        writer = peer(
            "stamped",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "G_9",
            "--count",
            "4",
            "--rate",
            "10",
            "f=60",
            "--linger",
            "1",
        )
        got = reader.take(timeout=3.0)
        time.sleep(0.5)
        got += reader.take(timeout=0.5)
        writer.wait(timeout=10)
    times = [s.source_time for s in got]
    assert times, "no sample arrived"
    # best effort may lose a current sample; the one stamped 10 s back must never be delivered
    assert all(abs(t - time.time()) < 8 for t in times), f"the older sample should be dropped, got {times}"


def test_late_joiner_gets_the_whole_kept_log(domain, partition):
    """A profile that keeps N samples per object for late joiners (log, protection, history)
    replays all N, not only the last one: Cyclone replays only what durability_service keeps."""
    log = peer(
        "state",
        "--domain",
        str(domain),
        "--partition",
        partition,
        "--id",
        "CTRL_t",
        "--count",
        "5",
        "--rate",
        "50",
        "stage=RUNNING",
        "--linger",
        "6",
        "--wait",
        "0",
    )
    try:
        time.sleep(1.5)  # every transition is out before the reader exists
        with Bus(domain, partition=partition) as bus:
            reader = bus.reader("CTRL_t", "State")
            got: list = []
            deadline = time.monotonic() + 4.0
            while len(got) < 5 and time.monotonic() < deadline:
                got += reader.take(timeout=0.5)
        assert len(got) == 5, f"a late joiner got {len(got)} of 5 kept log samples"
    finally:
        log.kill()
