"""What the bridge puts on the WAN: key expressions and the small header beside each sample.

Key expressions (one chunk per level, so subscriptions can use ``*``):

- ``gridbus/<site>/data/<topic>/<object>``: a sample a site publishes (put);
- ``gridbus/<site>/state/<topic>/<object>``: the last values a site keeps for
  late joiners (a queryable the far bridge asks on (re)connect);
- ``gridbus/cmd/<origin site>/<topic>/<object>``: a command, sent as a query
  that the receiving bridge answers ``ok``, ``denied`` or ``expired`` —
  the acknowledgement that lets the sender retry until delivered;
- ``gridbus/<site>/bridge``: a bridge's liveliness token (the far site is up);
- ``gridbus/<site>/board/...``: boards without DDS (see :mod:`gridbus.transport`).

The payload is the sample's CDR bytes as DDS made them.  The attachment
carries the DDS source time stamp (int64 ns, little endian) and, for
commands, the sender's message number and session id (for de-duplication of
retries).
"""

from __future__ import annotations

import re
import struct

__all__ = [
    "DATA",
    "cmd_key",
    "data_key",
    "pack_command",
    "pack_time",
    "parse_key",
    "safe_chunk",
    "state_key",
    "unpack_command",
    "unpack_time",
]

DATA = "data"
_TIME = struct.Struct("<q")
_COMMAND = struct.Struct("<qq")
_CHUNK = re.compile(r"[A-Za-z0-9_.\-]+")
ROOT = "gridbus"


def safe_chunk(text: str) -> bool:
    """Whether ``text`` can be one key-expression chunk (no ``/``, wildcards or ``$``)."""
    return bool(_CHUNK.fullmatch(text))


def data_key(site: str, topic: str, object_id: str) -> str:
    return f"{ROOT}/{site}/{DATA}/{topic}/{object_id}"


def state_key(site: str, topic: str = "*", object_id: str = "*") -> str:
    return f"{ROOT}/{site}/state/{topic}/{object_id}"


def cmd_key(origin: str, topic: str, object_id: str) -> str:
    return f"{ROOT}/cmd/{origin}/{topic}/{object_id}"


def parse_key(key: str) -> tuple[str, str, str]:
    """(site, topic, object) of a data, state or command key; ValueError otherwise."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != ROOT:
        raise ValueError(f"not a gridbus bridge key: {key!r}")
    if parts[1] == "cmd":
        return parts[2], parts[3], parts[4]
    return parts[1], parts[3], parts[4]


def pack_time(timestamp_ns: int) -> bytes:
    return _TIME.pack(timestamp_ns)


def unpack_time(data: bytes | None) -> int:
    if data is None or len(data) < _TIME.size:
        raise ValueError("missing source time stamp")
    value: int = _TIME.unpack_from(data)[0]
    return value


def pack_command(timestamp_ns: int, seq: int, session: str) -> bytes:
    return _COMMAND.pack(timestamp_ns, seq) + session.encode()


def unpack_command(data: bytes | None) -> tuple[int, str]:
    """(source time ns, message id) of a command's attachment."""
    if data is None or len(data) <= _COMMAND.size:
        raise ValueError("missing command header")
    stamp, seq = _COMMAND.unpack_from(data)
    return int(stamp), f"{data[_COMMAND.size :].decode(errors='replace')}:{seq}"
