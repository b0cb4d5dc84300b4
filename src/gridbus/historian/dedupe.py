"""Not storing a sample twice when it reaches a new recorder again.

A sample written before a recorder started reached it either from an earlier
run's journal or as DDS history (a transient-local writer gives a new reader
its last N samples): if an earlier run stored it, it is not stored twice.  A
sample is known by object, topic and source time (a :data:`~.sinks.Key`).
"""

from __future__ import annotations

from .sinks import Key, Row, Sink

__all__ = ["unstored"]


def unstored(rows: list[Row], started: float, sink: Sink) -> list[Row]:
    """``rows`` without the samples ``sink`` already holds or ``rows`` repeats.

    Only samples older than ``started`` (when the recorder started) are looked
    up: a newer one cannot have been stored by an earlier run.
    """
    old = [row for row in rows if row[2] < started]
    if not old:
        return rows
    known = sink.existing([(o, t, s) for o, t, s, _r, _f in old])
    seen: set[Key] = set()
    fresh = []
    for row in rows:
        key = (row[0], row[1], row[2])
        if row[2] < started:
            if key in known or key in seen:
                continue
            seen.add(key)
        fresh.append(row)
    return fresh
