"""A board's Zenoh link to its site's bridge, and a bus-shaped view of it for the DAQ agent.

:class:`BoardLink` is the wire: mutual-TLS Zenoh in client mode to the
bridge (``gridbus bridge --boards``), samples out as JSON field values under
``gridbus/<site>/board/in/<role>/<object>``, commands in under
``gridbus/<site>/board/cmd/<object>``, a liveliness token per object the
board obeys (so the bridge knows whose commands to hand over), and the
topic descriptions from the bridge (:mod:`.schema`).

:class:`BoardBus` gives the DAQ agent, the translators and ``EventLog`` the
part of :class:`gridbus.Bus` they use (``writer``, ``reader`` of commands,
``registry.parse_id``), so the same agent code runs over DDS or Zenoh.
Why JSON and not CDR: building CDR needs the type layout, which lives in the
generated types that import ``cyclonedds.idl``; field values plus the
bridge's description need nothing on the board, and the bridge builds and
checks the DDS sample with the full data model (one JSON encode, ~10 µs, per
sample on the board).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..bridge.link import TlsFiles, check_endpoint, open_session
from ..errors import ConfigError, FieldError, UnknownObjectError
from ..extras import require
from .schema import BoardObject, BoardSample, BoardTopic

__all__ = ["BoardBus", "BoardCommand", "BoardLink", "board_keys"]

log = logging.getLogger(__name__)

_ROLES = ("Measurement", "State")


def board_keys(site: str) -> dict[str, str]:
    """The key expressions of one site's boards (the bridge declares the other ends)."""
    root = f"gridbus/{site}/board"
    return {"schema": f"{root}/schema", "in": f"{root}/in", "cmd": f"{root}/cmd", "alive": f"{root}/alive"}


@dataclass
class BoardCommand:
    """A command the bridge handed over (the shape of :class:`gridbus.Sample` the agent reads)."""

    id: str
    data: BoardSample
    source_time: float

    def fields(self) -> dict[str, Any]:
        return self.data.fields()


class BoardLink:
    """One board's Zenoh session to its site's bridge."""

    def __init__(self, site: str, connect: list[str], tls: TlsFiles, timeout: float = 10.0) -> None:
        for endpoint in connect:
            check_endpoint(endpoint, "--zenoh")
        self.zenoh = require("zenoh", "the Zenoh transport")
        self.site, self.timeout = site, timeout
        self.keys = board_keys(site)
        self.session = open_session([], connect, tls, mode="client")
        self._commands: queue.SimpleQueue[BoardCommand] = queue.SimpleQueue()
        self._topics: dict[str, BoardTopic] = {}  # "Generator_Command" -> topic, for received commands
        self._entities: list[Any] = []
        self._obeyed: set[str] = set()
        self._lock = threading.Lock()
        self.sent = 0

    def describe(self, object_id: str) -> BoardObject:
        """The object type of ``object_id``, as the bridge's data model has it."""
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            for reply in self.session.get(f"{self.keys['schema']}/{object_id}", timeout=1.0):
                if reply.ok is not None:
                    return BoardObject.from_description(json.loads(reply.ok.payload.to_bytes()))
                raise UnknownObjectError(reply.err.payload.to_bytes().decode(errors="replace"))
            time.sleep(0.1)  # no bridge answered yet: the link may still be coming up
        raise ConfigError(f"no bridge of site {self.site} answered within {self.timeout:g} s (is it --boards?)")

    def put(self, object_id: str, role: str, fields: dict[str, Any], timestamp_ns: int) -> None:
        payload = json.dumps({"t": timestamp_ns, "f": fields}, separators=(",", ":"))
        self.session.put(f"{self.keys['in']}/{role}/{object_id}", payload.encode())
        self.sent += 1

    def obey(self, object_id: str, command: BoardTopic) -> None:
        """Receive ``object_id``'s commands (checked against ``command`` when taken)."""
        with self._lock:
            if object_id in self._obeyed:
                return
            self._obeyed.add(object_id)
            self._topics[object_id] = command
            if len(self._obeyed) == 1:
                self._entities.append(self.session.declare_subscriber(f"{self.keys['cmd']}/*", self._on_command))
            self._entities.append(self.session.liveliness().declare_token(f"{self.keys['alive']}/{object_id}"))

    def _on_command(self, sample: Any) -> None:
        object_id = str(sample.key_expr).rsplit("/", 1)[-1]
        topic = self._topics.get(object_id)
        if topic is None:
            return
        try:
            doc = json.loads(sample.payload.to_bytes())
            values = {k: v for k, v in doc["f"].items() if k != "id" and k in topic.fields}
            data = BoardSample({n: f.default for n, f in topic.fields.items()} | values | {"id": object_id})
            self._commands.put(BoardCommand(object_id, data, doc["t"] / 1e9))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("board: malformed command for %s from the bridge: %s", object_id, exc)

    def commands(self, ids: set[str] | None = None) -> list[BoardCommand]:
        """Commands received since the last call (for the objects in ``ids``, default all)."""
        out: list[BoardCommand] = []
        keep: list[BoardCommand] = []
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            (out if ids is None or command.id in ids else keep).append(command)
        for command in keep:
            self._commands.put(command)
        return out

    def close(self) -> None:
        for entity in reversed(self._entities):
            entity.undeclare()
        self.session.close()


class _Registry:
    """``registry.parse_id`` for the agent: object types described by the bridge, cached."""

    def __init__(self, link: BoardLink) -> None:
        self.link = link
        self._cache: dict[str, BoardObject] = {}

    def parse_id(self, object_id: str) -> BoardObject:
        if object_id not in self._cache:
            self._cache[object_id] = self.link.describe(object_id)
        return self._cache[object_id]

    def by_prefix(self, prefix: str) -> BoardObject:
        """The object type of ``prefix`` (``G``), as for any of its objects."""
        return self.parse_id(f"{prefix}_1")


class BoardWriter:
    """Writes one object's samples over the link (``Writer``'s interface)."""

    def __init__(self, link: BoardLink, topic: BoardTopic, object_id: str) -> None:
        self.link, self.topic, self.object_id = link, topic, object_id

    def build(self, **fields: Any) -> BoardSample:
        return self.topic.build(self.object_id, fields)

    def write(self, sample: BoardSample | None = None, /, *, timestamp: float | None = None, **fields: Any) -> Any:
        if sample is None:
            sample = self.topic.build(self.object_id, fields)
        values = {k: v for k, v in sample.fields().items() if k != "id"}
        stamp = time.time_ns() if timestamp is None else int(timestamp * 1e9)
        self.link.put(self.object_id, self.topic.role, values, stamp)
        return sample


class BoardReader:
    """Commands of some of the board's objects (``Reader.take``'s interface, commands only)."""

    def __init__(self, link: BoardLink, ids: set[str]) -> None:
        self.link, self.ids = link, ids

    def take(self, timeout: float = 0.0) -> list[BoardCommand]:
        got = self.link.commands(self.ids)
        end = time.monotonic() + timeout
        while not got and time.monotonic() < end:
            time.sleep(0.01)
            got = self.link.commands(self.ids)
        return got


class BoardBus:
    """The part of :class:`gridbus.Bus` a DAQ agent, a translator and ``EventLog`` use, over Zenoh."""

    def __init__(self, link: BoardLink) -> None:
        self.link = link
        self.registry = _Registry(link)
        self.domain_id = -1  # not on a DDS domain
        self._writing: set[str] = set()

    def writer(self, object_id: str, role: str | None = None, *, deadline: float | None = None) -> BoardWriter:
        obj = self.registry.parse_id(object_id)
        role = role or next((r for r in _ROLES if r in obj.topics), next(iter(obj.topics)))
        self._writing.add(object_id)
        return BoardWriter(self.link, obj.topic(role), object_id)

    def reader(self, pattern: str, role: str | None = None, **_: Any) -> BoardReader:
        """Commands for this board's objects matching ``pattern`` (a prefix or an id)."""
        if role != "Command":
            raise FieldError(f"a board reads only commands over Zenoh, not {role or 'measurements'} of {pattern}")
        prefix = pattern.removesuffix("_*")
        ids = set()
        candidates = {pattern} if "_" in prefix else self._writing  # one object (a translator), or a type
        for object_id in sorted(candidates):
            obj = self.registry.parse_id(object_id)
            if (object_id == pattern or obj.prefix == prefix or pattern == "*") and "Command" in obj.topics:
                self.link.obey(object_id, obj.topic("Command"))
                ids.add(object_id)
        return BoardReader(self.link, ids)

    def command(self, object_id: str, **fields: Any) -> Any:
        return self.writer(object_id, "Command").write(**fields)

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> BoardBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
