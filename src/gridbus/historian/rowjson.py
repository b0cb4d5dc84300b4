"""A sample's fields as the historian's JSON text, by code generated once per topic.

Building a dict per sample and handing it to ``json.dumps`` cost the
recorder more than decoding the sample.  :func:`json_writer` generates, for
one topic, a function that formats each field directly: a float as its
``repr`` (what ``json`` writes) or ``null`` when it is NaN or infinite, an
integer as its ``str``, anything else (booleans, strings, enums, lists,
nested structs) through the JSON encoder.  Same text as
``json.dumps`` of the fields with NaN and inf as null (``tests/test_codec.py`` checks it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..jsonsafe import finite
from ..model import _plain

__all__ = ["json_writer"]

FLOAT, INT, OTHER = "float", "int", "other"  # how a field's value is written
_JSON = json.JSONEncoder(separators=(",", ":"))


def _other(value: Any) -> str:
    return _JSON.encode(finite(_plain(value)))


def json_writer(fields: list[tuple[str, str]]) -> Callable[[dict[str, Any]], str]:
    """A function of a sample's field values (``vars(sample)``) giving the JSON of ``fields``.

    ``fields`` are (name, FLOAT / INT / OTHER) in the order the JSON lists them.
    """
    lines = ["def to_json(values):"]
    pieces = []
    for n, (name, kind) in enumerate(fields):
        if not name.isidentifier():
            raise ValueError(f"field name {name!r} is not an identifier")
        lines.append(f"    v{n} = values[{name!r}]")
        if kind == FLOAT:
            value = f'{{"null" if v{n} - v{n} else repr(v{n})}}'  # NaN and ±inf (inf - inf is NaN): null
        elif kind == INT:
            value = f"{{str(v{n})}}"
        else:
            value = f"{{_other(v{n})}}"
        pieces.append(f'"{name}":{value}')
    lines.append("    return f'{{" + ",".join(pieces) + "}}'")
    namespace: dict[str, Any] = {"_other": _other}
    exec(compile("\n".join(lines) + "\n", "<gridbus row json>", "exec"), namespace)  # noqa: S102 - our own source
    function: Callable[[dict[str, Any]], str] = namespace["to_json"]
    return function
