"""µs per encode and per decode of every topic type: gridbus's codec beside the binding's serializer.

The binding's way is ``sample.serialize()`` and ``cls.deserialize(bytes)``;
gridbus's is ``codec_for(cls).encode(sample)`` and ``.decode(bytes)``.  Each of
the four is timed timeit-style: a batch of calls sized to take about
``batch_seconds``, repeated ``rounds`` times, the four batches of a round run
one after the other (interleaved, so a burst of load hits all four). The
figure is the median over the rounds, with the spread (min..max) beside it.
Every type is first checked: the codec's bytes must equal the binding's.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import GridbusError
from ..model import Registry, TopicType
from .goals import goal

Row = dict[str, Any]
Progress = Callable[[Row], None]
GOAL_TYPE = "Generator_Measurement"


def _sample(topic: TopicType) -> Any:
    """A sample of ``topic`` with its default field values and a realistic id (``G_1``)."""
    return topic.build(f"{topic.object_type.prefix}_1")


def _batch_size(timer: timeit.Timer, batch_seconds: float) -> int:
    """Calls per batch so that one batch takes about ``batch_seconds`` (doubling from 1, like autorange)."""
    number = 1
    while (took := timer.timeit(number)) < batch_seconds / 4:
        number *= 2
    return max(1, int(number * batch_seconds / max(took, 1e-9)))


def _time(fns: Sequence[Callable[[], object]], rounds: int, batch_seconds: float) -> list[list[float]]:
    """µs per call of each of ``fns``, one figure per round, the fns interleaved within a round."""
    timers = [(t, _batch_size(t, batch_seconds)) for t in map(timeit.Timer, fns)]
    per_call: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, (timer, number) in enumerate(timers):
            per_call[i].append(timer.timeit(number) / number * 1e6)
    return per_call


def _calls(cls: Any, sample: Any, data: bytes, codec: Any) -> list[Callable[[], object]]:
    """The four timed calls: binding encode and decode, codec encode and decode."""
    return [sample.serialize, lambda: cls.deserialize(data), lambda: codec.encode(sample), lambda: codec.decode(data)]


def _figure(values: list[float]) -> Row:
    return {"median": round(float(np.median(values)), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def codec_speed(
    registry: Registry,
    rounds: int = 7,
    batch_seconds: float = 0.02,
    types: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[Row]:
    """One row per topic type: binding and codec µs per encode and decode (medians), speed-ups, path."""
    from ..codec import codec_for

    names = [t.name for t in registry.topics()]
    unknown = sorted(set(types or ()) - set(names))
    if unknown:
        raise GridbusError(f"bench codec --types: no topic type {', '.join(unknown)}; known: {', '.join(names)}")
    rows = []
    for topic in registry.topics():
        if types and topic.name not in types:
            continue
        cls: Any = topic.cls
        sample = _sample(topic)
        data = sample.serialize()
        codec = codec_for(cls)
        same = codec.encode(sample) == data and codec.encode(codec.decode(data)) == data  # NaN-proof
        fns = _calls(cls, sample, data, codec)
        enc_b, dec_b, enc_c, dec_c = (_figure(v) for v in _time(fns, rounds, batch_seconds))
        row: Row = {
            "type": topic.name,
            "bytes": len(data),
            "path": codec.path,
            "reason": codec.reason,
            "same_bytes": same,
            "rounds": rounds,
            "binding_encode_us": enc_b["median"],
            "binding_decode_us": dec_b["median"],
            "codec_encode_us": enc_c["median"],
            "codec_decode_us": dec_c["median"],
            "encode_speedup": round(enc_b["median"] / enc_c["median"], 1),
            "decode_speedup": round(dec_b["median"] / dec_c["median"], 1),
            "spread_us": {
                "binding_encode": enc_b,
                "binding_decode": dec_b,
                "codec_encode": enc_c,
                "codec_decode": dec_c,
            },
        }
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def goals(rows: list[Row]) -> list[Row]:
    """For Generator_Measurement: >= 10x faster and <= 5 µs, each way."""
    out = []
    for row in rows:
        if row["type"] == GOAL_TYPE:
            for way in ("encode", "decode"):
                out.append(goal(f"{GOAL_TYPE} {way} speed-up", row[f"{way}_speedup"], 10, at_least=True))
                out.append(goal(f"{GOAL_TYPE} {way} µs (codec)", row[f"codec_{way}_us"], 5))
    return out
