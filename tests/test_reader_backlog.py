"""A take after a pause gets the whole backlog, not one batch of it.

Cyclone hands a topic's samples out object by object.  When a reader took only
one batch per call, a process that had paused (starved, or in a long garbage
collection) got the first objects' newest samples and the last objects' old
ones: beside the others those looked stale, and the experiments' controllers
stopped on "G_2 measurement is 5.6 s old" in CI.
"""

from __future__ import annotations

from gridbus import Bus
from gridbus.reader import BATCH

OBJECTS = ["G_1", "G_2", "G_3", "G_4"]
PER_OBJECT = 100  # the measurement profile's reader depth: all of it is kept


def _generators_backlog(bus: Bus) -> None:
    """PER_OBJECT measurements of each generator, interleaved as a testbed writes them."""
    writers = [bus.writer(name, "Measurement") for name in OBJECTS]
    for n in range(PER_OBJECT):
        for writer in writers:
            writer.write(f=50.0 + n / 1000)


def test_one_take_returns_a_backlog_larger_than_a_batch_with_every_objects_newest(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("G", "Measurement")
        _generators_backlog(bus)
        assert len(OBJECTS) * PER_OBJECT > BATCH  # the case that went wrong
        samples = reader.take(0)
        assert len(samples) == len(OBJECTS) * PER_OBJECT
        newest = {s.id: s.data.f for s in samples}
        assert newest == {name: 50.0 + (PER_OBJECT - 1) / 1000 for name in OBJECTS}
        assert reader.take(0) == []


def test_max_samples_still_bounds_a_take(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("G", "Measurement")
        writer = bus.writer("G_1", "Measurement")
        for n in range(PER_OBJECT):
            writer.write(f=50.0 + n / 1000)
        first = reader.take(0, max_samples=30)
        rest = reader.take(0)
        assert (len(first), len(rest)) == (30, PER_OBJECT - 30)
        assert [s.data.f for s in first + rest] == [50.0 + n / 1000 for n in range(PER_OBJECT)]


def test_a_topic_with_a_deep_backlog_does_not_starve_the_others_in_a_bounded_take(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("*", "Measurement")
        _generators_backlog(bus)
        bus.writer("L_1", "Measurement").write(P=1500.0)
        # a take bounded below the generators' backlog still brings the load: one batch per
        # topic per round, not one topic drained before the next is looked at
        samples = reader.take(0, max_samples=BATCH + 1)
        assert [s.data.P for s in samples if s.id == "L_1"] == [1500.0]
        assert len(samples) == BATCH + 1
        rest = reader.take(0)
        assert len(samples) + len(rest) == len(OBJECTS) * PER_OBJECT + 1


def test_takes_smaller_than_a_batch_go_round_the_topics_call_by_call(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("*", "Measurement")
        _generators_backlog(bus)
        bus.writer("L_1", "Measurement").write(P=1500.0)
        # the generators alone could fill every one of these takes; the load still comes
        taken = [s for _ in range(4) for s in reader.take(0, max_samples=10)]
        assert [s.data.P for s in taken if s.id == "L_1"] == [1500.0]
