"""What a recording run reports: the count of samples by fate, and the line on what is not stored.

:meth:`Recorder.run <gridbus.historian.recorder.Recorder.run>` returns a
:class:`RecorderStats`; ``gridbus record`` prints it and, through :func:`summary`,
says which samples did not reach the target (the exit status follows from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NotRequired, TypedDict

__all__ = ["RecorderStats", "new_stats", "summary"]


class RecorderStats(TypedDict):
    """What :meth:`Recorder.run` returns (and ``gridbus record`` prints): counts of samples by fate."""

    received: int
    recovered: int
    written: int
    spooled: int
    left_in_journal: int
    dropped: int
    dds_lost: int
    dds_rejected: int
    undecodable: int
    lost: int
    duplicates_skipped: int
    batches: int
    reconnects: int
    max_buffered: int
    spool_file: NotRequired[str]  # only when rows went to a spool CSV


def new_stats() -> RecorderStats:
    """Every count at zero, in the order ``gridbus record`` prints them."""
    return {
        "received": 0,
        "recovered": 0,
        "written": 0,
        "spooled": 0,
        "left_in_journal": 0,
        "dropped": 0,
        "dds_lost": 0,
        "dds_rejected": 0,
        "undecodable": 0,
        "lost": 0,
        "duplicates_skipped": 0,
        "batches": 0,
        "reconnects": 0,
        "max_buffered": 0,
    }


LOST_ON_THE_WAY = ("dropped", "undecodable", "dds_rejected", "dds_lost")  # counted in "lost" too


def _count(stats: Mapping[str, object], key: str) -> int:
    value = stats.get(key)
    return value if isinstance(value, int) else 0


def summary(stats: Mapping[str, object], target: str) -> str | None:
    """One line on what is not in the database, or None when everything taken is there."""
    parts = []
    for key, text in (
        ("spooled", "in the spool file {spool_file}"),
        ("left_in_journal", "left in the journal"),
        ("dropped", "dropped by the recorder (memory full)"),
        ("undecodable", "journaled but undecodable"),
        ("dds_rejected", "dropped by DDS: the recorder's queue was full"),
        ("dds_lost", "dropped by DDS: lost or out of order"),
    ):
        if stats.get(key):
            parts.append(f"{stats[key]} {text.format(**{k: v for k, v in stats.items()})}")
    lost = _count(stats, "lost")
    unexplained = lost - sum(_count(stats, key) for key in LOST_ON_THE_WAY)
    if unexplained > 0:  # only in memory when a thread did not stop, or the spool refused them
        parts.append(f"{unexplained} lost from memory")
    if lost:
        parts.append(f"{lost} lost in all")
    if not parts:
        return None
    return f"record: not everything is in {target}: " + "; ".join(parts)
