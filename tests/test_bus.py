"""The Bus API across processes: typed writers and readers by object id."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from helpers import peer

from gridbus import Bus, GridbusError, UnknownObjectError


@pytest.mark.integration
def test_reader_of_one_object_never_sees_another(domain, partition):
    with Bus(domain, partition=partition) as bus:
        one = bus.reader("G_2")
        every = bus.reader("G")
        writers = [
            peer(
                "measure",
                "--domain",
                str(domain),
                "--partition",
                partition,
                "--id",
                gid,
                "--count",
                "20",
                "--rate",
                "100",
                f"f={60 + n}",
                "--linger",
                "1",
            )
            for n, gid in enumerate(("G_1", "G_2", "G_3"))
        ]
        got_one, got_every = [], []
        end = time.monotonic() + 6
        while time.monotonic() < end and (len(got_every) < 60 or len(got_one) < 20):
            got_one += one.take(timeout=0.2)
            got_every += every.take(timeout=0.0)
        for w in writers:
            w.wait(timeout=10)
    assert got_one and {s.id for s in got_one} == {"G_2"}
    assert all(s.f == 61.0 for s in got_one)
    assert {s.id for s in got_every} == {"G_1", "G_2", "G_3"}


@pytest.mark.integration
def test_samples_carry_both_time_stamps(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("L_1")
        before = time.time()
        w = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "L_1",
            "--count",
            "3",
            "P=600",
            "Q=50",
            "--linger",
            "0.5",
        )
        sample = reader.take_one(timeout=5)
        w.wait(timeout=10)
    assert sample is not None and sample.id == "L_1" and sample.topic == "Load_Measurement"
    assert sample.P == 600.0 and sample.data.Q == 50.0
    assert before - 1 < sample.source_time <= sample.reception_time < time.time() + 1
    assert 0 <= sample.latency < 1.0


@pytest.mark.integration
def test_commands_state_and_callbacks_in_one_process(domain, partition):
    with Bus(domain, partition=partition) as device, Bus(domain, partition=partition) as controller:
        received = []
        done = threading.Event()

        def on_command(sample):
            received.append(sample)
            device.writer("CB_1", "State").write(status=sample.status)
            done.set()

        device.reader("CB_1", "Command", on_sample=on_command)
        state = controller.reader("CB_1", "State")
        time.sleep(0.3)
        controller.command("CB_1", status="CLOSED")
        assert done.wait(5), "the command never reached the device"
        closed = state.take_one(timeout=5)
        assert closed is not None and closed.status.name == "CLOSED"
        assert received[0].status.name == "CLOSED"


@pytest.mark.integration
def test_async_iteration_and_poll_mode(domain, partition):
    async def collect(reader, n):
        return [s async for s in reader.aiter(timeout=5, count=n)]

    # best effort: a reader may miss the first sample while it is still discovering the writer,
    # so the peer sends 8 and each reader waits for 5
    with Bus(domain, partition=partition) as bus:
        fast = bus.reader("ES_1", mode="poll")
        slow = bus.reader("ES_1")
        w = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "ES_1",
            "--count",
            "8",
            "--rate",
            "20",
            "SoC=55",
            "--linger",
            "0.5",
            "--readers",
            "2",
        )
        got_async = asyncio.run(collect(slow, 5))
        got_poll = list(fast.iter(timeout=2, count=5))
        w.wait(timeout=10)
    assert [s.SoC for s in got_async] == [55.0] * 5
    assert len(got_poll) == 5


@pytest.mark.integration
def test_publish_picks_the_topic_by_fields(domain, partition):
    with Bus(domain, partition=partition) as bus:
        commands = bus.reader("G_1", "Command")
        states = bus.reader("G_1", "State")
        bus.publish("G_1", P_ref=300.0, mode="POWER")
        bus.publish("G_1", sync=True)
        command = commands.take_one(timeout=3)
        state = states.take_one(timeout=3)
    assert command.P_ref == 300.0 and command.mode.name == "POWER"
    assert state.sync is True


@pytest.mark.integration
def test_bad_input_through_the_bus(domain):
    with Bus(domain) as bus:
        with pytest.raises(UnknownObjectError, match="unknown object id 'Q_1'"):
            bus.writer("Q_1")
        with pytest.raises(UnknownObjectError, match="has no Command topic"):
            bus.writer("Bus_1", "Command")
        writer = bus.writer("G_1")
        with pytest.raises(GridbusError, match="does not match writer of G_1"):
            writer.write(writer.topic.build("G_2"))
        with pytest.raises(ValueError, match="reader mode"):
            bus.reader("G_1", mode="fast")


@pytest.mark.integration
def test_many_participants_on_one_host(domain, partition):
    """The loopback configuration leaves room for more than Cyclone's default 9 + 1."""
    buses = [Bus(domain, partition=partition) for _ in range(12)]
    try:
        reader = buses[0].reader("TL_1")
        w = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "TL_1",
            "--count",
            "3",
            "Ia=1.5",
            "--linger",
            "0.5",
        )
        assert reader.take_one(timeout=5) is not None
        w.wait(timeout=10)
    finally:
        for b in buses:
            b.close()


def test_the_split_modules_keep_the_old_names():
    """``gridbus.bus`` still offers what it did before the split; the iterators keep their old names."""
    import gridbus
    from gridbus.bus import Bus as OldBus
    from gridbus.bus import Gone, Reader, Sample, Writer, cyclone_config, default_domain
    from gridbus.config import cyclone_config as checked_config
    from gridbus.reader import Reader as NewReader

    assert (OldBus, Reader, Sample, Writer, Gone) == (
        gridbus.Bus,
        gridbus.Reader,
        gridbus.Sample,
        gridbus.Writer,
        gridbus.Gone,
    )
    assert Reader is NewReader and cyclone_config is checked_config and callable(default_domain)
    assert Reader.iter is Reader.take_iter and Reader.aiter is Reader.take_aiter
    assert Reader.__iter__ is Reader.take_iter


def test_cyclonedds_internals_are_used_in_one_module_only():
    """The next cyclonedds upgrade is checked against ``_cyclone.py`` alone."""
    import re
    from pathlib import Path

    import gridbus

    internals = re.compile(r"_clayer|cyclonedds\.internal|_dll_handle|dds_c_t|\._ref\b|\.__del__\(")
    root = Path(gridbus.__file__).parent
    users = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "_cyclone.py" and internals.search(p.read_text())
    )
    assert users == []
