"""``gridbus bridge``: one site's DDS domain joined to other sites over mutual-TLS Zenoh.

Each site runs one bridge.  It reads the topics its ``out`` policy lets go
(raw CDR, never re-encoded), puts them on the WAN under
``gridbus/<site>/data/<topic>/<object>`` and writes what other sites send
into its own domain with the topic's QoS (:mod:`.site`).  Reliable topics go
over Zenoh's reliable channel, best-effort ones may be dropped under
congestion, as DDS would.  What it enforces:

- **who**: mutual TLS, certificates signed by the site's CA (:mod:`.link`);
- **what**: allow/deny per topic and direction, deny wins; no command crosses
  unless allowed (:mod:`.policy`);
- **how often**: per-topic rate caps that coalesce to the newest value;
- **state after a WAN drop**: each bridge keeps the last values of its
  transient-local topics and serves them as a Zenoh queryable; when a far
  bridge's liveliness token (re)appears, the bridge pulls them, so late
  joiners at both ends see current state;
- **commands**: acknowledged and retried within their lifespan
  (:mod:`.commands`); none lost while the link comes back, none stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cyclonedds.core import WaitSet

from ..bus import Bus
from ..extras import require
from ..source import key_id
from .boards import MAX_BOARD_OBJECTS, BoardGateway
from .commands import ANSWER_WAIT, Inbox, Outbox, Pending
from .config import BridgeConfig
from .link import open_session
from .site import SiteTopic, site_topics
from .wire import (
    cmd_key,
    data_key,
    pack_command,
    pack_time,
    parse_key,
    safe_chunk,
    state_key,
    unpack_command,
    unpack_time,
)

__all__ = ["Bridge"]

log = logging.getLogger(__name__)

_TICK = 0.02  # s between checks of capped samples and command retries


class Bridge:
    """One site's bridge; ``run()`` forwards until ``stop()``."""

    def __init__(
        self,
        bus: Bus,
        config: BridgeConfig,
        *,
        retry: float = 0.5,
        boards: Bus | None = None,
        board_objects: int = MAX_BOARD_OBJECTS,
    ) -> None:
        config.check()
        assert config.tls is not None  # checked
        self.zenoh = require("zenoh", "gridbus bridge")
        self.bus, self.config, self.site = bus, config, config.site
        policy = config.policy
        names = {t.name for t in bus.registry.topics()}
        exported = {n for n in names if policy.out.admits_topic(n)}
        imported = {n for n in names if policy.into.admits_topic(n)}
        self.waitset = WaitSet(bus.participant)
        self.topics: dict[str, SiteTopic] = {t.name: t for t in site_topics(bus, exported, imported, self.waitset)}
        self.outbox = Outbox(retry)
        self.inbox = Inbox()
        self.counts = {k: 0 for k in ("out", "in", "denied_out", "denied_in", "capped", "replayed", "stale")}
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, str], deque[tuple[bytes, int]]] = {}  # last values served to late joiners
        self._newest_in: dict[tuple[str, str, str], int] = {}  # (site, topic, id) -> newest source time written
        self._last_out: dict[tuple[str, str], float] = {}
        self._capped: dict[tuple[str, str], tuple[bytes, int]] = {}
        self.peers: set[str] = set()
        self._stopping = False
        self.session = open_session(config.listen, config.connect, config.tls)
        self.boards: BoardGateway | None = None
        try:
            self._declare()
            if boards is not None:
                self.boards = BoardGateway(
                    self.session, self.zenoh, self.site, boards, policy.into, max_objects=board_objects
                )
        except BaseException:
            self.session.close()  # an open session keeps the process alive after the error
            raise

    # -- lifecycle ---------------------------------------------------------------------
    def _declare(self) -> None:
        z, s = self.zenoh, self.session
        remote = z.Locality.REMOTE
        self._entities = [
            s.declare_subscriber("gridbus/*/data/**", self._on_data, allowed_origin=remote),
            s.declare_queryable(f"gridbus/{self.site}/state/**", self._on_state_query),
            s.declare_queryable("gridbus/cmd/**", self._on_command, allowed_origin=remote),
            s.liveliness().declare_subscriber("gridbus/*/bridge", self._on_liveliness, history=True),
            s.liveliness().declare_token(f"gridbus/{self.site}/bridge"),
        ]

    def stop(self) -> None:
        """Ask :meth:`run` to end (safe in a signal handler)."""
        self._stopping = True

    def close(self) -> None:
        if self.boards is not None:
            self.boards.close()
        for entity in reversed(self._entities):
            try:
                entity.undeclare()
            except Exception:
                log.debug("undeclaring a Zenoh entity at close", exc_info=True)
        self.session.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, duration: float | None = None, ready: Callable[[], Any] | None = None) -> None:
        """Forward until ``stop()`` or ``duration`` s."""
        end = None if duration is None else time.monotonic() + duration
        if ready is not None:
            ready()
        while not self._stopping and (end is None or time.monotonic() < end):
            self.waitset.wait(int(_TICK * 1e9))
            self.pump()

    def pump(self) -> None:
        """One round: take from DDS, send capped samples whose time came, retry commands."""
        for topic in self.topics.values():
            if topic.reader is not None:
                for raw, stamp in topic.take():
                    self._export(topic, raw, stamp)
        self._flush_capped()
        for entry in self.outbox.due():
            self._send_command(entry)

    # -- out: DDS -> WAN ---------------------------------------------------------------
    def _export(self, topic: SiteTopic, raw: bytes, stamp: int) -> None:
        object_id = key_id(raw)
        if not safe_chunk(object_id):
            log.warning("%s: object id %r cannot be a key expression; not bridged", topic.name, object_id)
            return
        if not self.config.policy.out.admits(topic.name, object_id):
            self.counts["denied_out"] += 1
            return
        if topic.is_command:
            self._send_command(self.outbox.add(topic.name, object_id, raw, stamp, topic.lifespan))
            return
        key = (topic.name, object_id)
        if topic.durable:
            with self._lock:
                kept = self._kept.setdefault(key, deque(maxlen=topic.depth))
                kept.append((raw, stamp))
        interval = self.config.policy.rates.interval(topic.name)
        if interval:
            now = time.monotonic()
            if now < self._last_out.get(key, 0.0) + interval:
                if key in self._capped:
                    self.counts["capped"] += 1
                self._capped[key] = (raw, stamp)
                return
            self._last_out[key] = now
        self._put(topic, object_id, raw, stamp)

    def _put(self, topic: SiteTopic, object_id: str, raw: bytes, stamp: int) -> None:
        z = self.zenoh
        congestion = z.CongestionControl.BLOCK if topic.reliable else z.CongestionControl.DROP
        self.session.put(
            data_key(self.site, topic.name, object_id),
            raw,
            attachment=pack_time(stamp),
            congestion_control=congestion,
            allowed_destination=z.Locality.REMOTE,
        )
        self.counts["out"] += 1

    def _flush_capped(self) -> None:
        now = time.monotonic()
        for key, (raw, stamp) in list(self._capped.items()):
            interval = self.config.policy.rates.interval(key[0])
            if now >= self._last_out.get(key, 0.0) + interval:
                del self._capped[key]
                self._last_out[key] = now
                self._put(self.topics[key[0]], key[1], raw, stamp)

    def _send_command(self, entry: Pending) -> None:
        self.session.get(
            cmd_key(self.site, entry.topic, entry.object_id),
            lambda reply: self._on_answer(entry.seq, reply),
            payload=entry.raw,
            attachment=pack_command(entry.timestamp, entry.seq, self.outbox.session),
            allowed_destination=self.zenoh.Locality.REMOTE,
            target=self.zenoh.QueryTarget.ALL,
            consolidation=self.zenoh.ConsolidationMode.NONE,  # each answer at once, not at the query's end
            timeout=ANSWER_WAIT,
        )

    def _on_answer(self, seq: int, reply: Any) -> None:
        if reply.ok is not None:
            verdict = reply.ok.payload.to_bytes().decode(errors="replace")
            if verdict != "ok":
                log.warning("command %d: the far bridge answered %s", seq, verdict)
            self.outbox.settle(seq, verdict)

    # -- in: WAN -> DDS ----------------------------------------------------------------
    def _on_data(self, sample: Any) -> None:
        try:
            self._import(str(sample.key_expr), sample.payload.to_bytes(), sample.attachment)
        except Exception:  # a callback on a Zenoh thread must not die
            log.exception("bridge %s: importing %s", self.site, sample.key_expr)

    def _import(self, key: str, raw: bytes, attachment: Any) -> bool:
        site, name, object_id = parse_key(key)
        if site == self.site:
            return False
        stamp = unpack_time(attachment.to_bytes() if attachment is not None else None)
        topic = self.topics.get(name)
        if topic is None or topic.writer is None or not self.config.policy.into.admits(name, object_id):
            self.counts["denied_in"] += 1
            return False
        if topic.durable:  # a replayed value already written (or an older one) is not written again
            with self._lock:
                if stamp <= self._newest_in.get((site, name, object_id), -1):
                    self.counts["stale"] += 1
                    return False
                self._newest_in[(site, name, object_id)] = stamp
        topic.write(raw, stamp)
        self.counts["in"] += 1
        return True

    def _on_command(self, query: Any) -> None:
        try:
            key = str(query.key_expr)
            origin, name, object_id = parse_key(key)
            stamp, message = unpack_command(query.attachment.to_bytes() if query.attachment else None)
            raw = query.payload.to_bytes() if query.payload is not None else b""
            verdict = self.inbox.receive(message, lambda: self._deliver(origin, name, object_id, raw, stamp))
            query.reply(query.key_expr, verdict.encode())
        except Exception:
            log.exception("bridge %s: command query %s", self.site, query.key_expr)

    def _deliver(self, origin: str, name: str, object_id: str, raw: bytes, stamp: int) -> str:
        topic = self.topics.get(name)
        if topic is None or topic.writer is None or not self.config.policy.into.admits(name, object_id):
            self.counts["denied_in"] += 1
            log.warning("bridge %s: refused %s for %s from site %s (policy [in])", self.site, name, object_id, origin)
            return "denied"
        if topic.lifespan is not None and time.time_ns() > stamp + topic.lifespan:
            log.warning(
                "bridge %s: %s for %s from site %s arrived after its lifespan", self.site, name, object_id, origin
            )
            return "expired"
        topic.write(raw, stamp)
        self.counts["in"] += 1
        return "ok"

    # -- state for late joiners and resynchronisation ----------------------------------
    def _on_state_query(self, query: Any) -> None:
        with self._lock:
            kept = [(k, list(v)) for k, v in self._kept.items()]
        wanted = self.zenoh.KeyExpr(str(query.key_expr))
        for (name, object_id), values in kept:
            key = state_key(self.site, name, object_id)
            if wanted.intersects(self.zenoh.KeyExpr(key)):
                for raw, stamp in values:
                    query.reply(key, raw, attachment=pack_time(stamp))

    def _on_liveliness(self, sample: Any) -> None:
        site = str(sample.key_expr).split("/")[1]
        if site == self.site:
            return
        if sample.kind == self.zenoh.SampleKind.PUT:
            log.info("bridge %s: site %s is up; pulling its state, resending commands", self.site, site)
            self.peers.add(site)
            self.outbox.retry_now()
            threading.Thread(target=self.resync, args=(site,), daemon=True).start()
        else:
            log.warning("bridge %s: site %s is gone (WAN link or its bridge down)", self.site, site)
            self.peers.discard(site)

    def resync(self, site: str, timeout: float = 5.0) -> int:
        """Pull ``site``'s kept values into this domain; how many were new."""
        written = 0
        for reply in self.session.get(f"gridbus/{site}/state/**", timeout=timeout):
            if reply.ok is None:
                continue
            sample = reply.ok
            try:
                written += self._import(str(sample.key_expr), sample.payload.to_bytes(), sample.attachment)
            except Exception:
                log.exception("bridge %s: replaying %s", self.site, sample.key_expr)
        self.counts["replayed"] += written
        return written
