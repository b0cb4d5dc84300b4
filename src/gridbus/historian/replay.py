"""``gridbus replay``: publish stored series again, with their original timing or sped up.

A recorded load pattern, irradiance or wind series (or a whole experiment)
drives the testbed or a new algorithm.  Each row goes out on its topic for its
object (``rename`` maps ids, e.g. a recorded ``L_1`` pattern onto ``L_4``),
spaced as it was recorded divided by ``speed``, stamped with the time it is
sent.
"""

from __future__ import annotations

import fnmatch
import json
import math
import time
from collections.abc import Callable
from typing import Any

from ..bus import Bus
from ..errors import GridbusError
from .sinks import read_rows, redact


def replay(
    bus: Bus,
    url: str,
    speed: float = 1.0,
    objects: list[str] | None = None,
    topic: str | None = None,
    rename: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    if not (speed > 0 and math.isfinite(speed)):
        raise GridbusError(f"--speed must be a positive finite number, not {speed}")
    rename = rename or {}
    rows = [row for row in read_rows(url, topic) if not objects or any(fnmatch.fnmatchcase(row[0], p) for p in objects)]
    if not rows:
        raise GridbusError(f"{redact(url)}: nothing recorded matches")
    writers = {}
    matched = False
    for object_id, name, *_ in rows:  # every writer matched before the clock starts
        key = (rename.get(object_id, object_id), name.rsplit("_", 1)[-1])
        if key not in writers:
            writers[key] = bus.writer(*key)
            if key[1] != "Measurement":
                matched = writers[key].wait_for_readers(1, timeout=1.0) or matched
    if matched:
        time.sleep(0.2)  # the readers' side of discovery completes too
    first_source, start = rows[0][2], time.monotonic()
    sent = 0
    for object_id, name, source, _r, _c, fields in rows:
        key = (rename.get(object_id, object_id), name.rsplit("_", 1)[-1])
        data = _fields(url, object_id, name, source, fields)
        delay = start + (source - first_source) / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        writers[key].write(**data)
        sent += 1
        if progress:
            progress(sent)
    return sent


def _fields(url: str, object_id: str, topic: str, source: float, text: str) -> dict[str, Any]:
    """A stored row's fields, or an error naming the row (a hand-edited or damaged recording)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise GridbusError(
            f"{redact(url)}: the row of {object_id} ({topic}) at source time {source} has fields that "
            f"are not a JSON object: {text[:60]!r}"
        )
    return {k: v for k, v in data.items() if v is not None}
