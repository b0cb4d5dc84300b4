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
import time
from typing import Callable

from ..bus import Bus
from ..errors import GridbusError
from .sinks import read_rows


def replay(bus: Bus, url: str, speed: float = 1.0, objects: list[str] | None = None, topic: str | None = None,
           rename: dict[str, str] | None = None, progress: Callable[[int], None] | None = None) -> int:
    if speed <= 0:
        raise GridbusError("--speed must be > 0")
    rename = rename or {}
    rows = [row for row in read_rows(url, topic)
            if not objects or any(fnmatch.fnmatchcase(row[0], p) for p in objects)]
    if not rows:
        raise GridbusError(f"{url}: nothing recorded matches")
    writers = {}
    first_source, start = rows[0][2], time.monotonic()
    sent = 0
    for object_id, name, source, _r, _c, fields in rows:
        target = rename.get(object_id, object_id)
        role = name.rsplit("_", 1)[1]
        key = (target, role)
        if key not in writers:
            writers[key] = bus.writer(target, role)
            if role != "Measurement":
                writers[key].wait_for_readers(1, timeout=1.0)
        delay = start + (source - first_source) / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        data = {k: v for k, v in json.loads(fields).items() if v is not None}
        writers[key].write(**data)
        sent += 1
        if progress:
            progress(sent)
    return sent
