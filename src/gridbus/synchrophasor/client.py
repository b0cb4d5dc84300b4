"""The client side of the gateway: a PMU's or PDC's C37.118.2 stream onto the bus.

It connects over TCP (or, with ``udp=True``, sends its commands by UDP and reads the frames
that come back: the standard's "commanded" UDP), asks for the header and CFG-3 (long
channel names; if no CFG-3 comes within ``CFG3_WAIT`` seconds it asks for CFG-2), sends START
and publishes each PMU block of each data frame as ``PMU_Measurement`` with the frame's
measurement time as the source time stamp, and each configuration as ``PMU_Config``
(transient-local: late joiners get it).  Malformed frames are counted on ``Link_State`` and
skipped; a dropped connection (on UDP: ``idle_timeout`` seconds without a frame) is made
again with a bounded, doubling backoff.  STAT bit 10 (configuration change), or a data
frame that does not fit the configuration, makes it ask for the configuration again.  A
block marked data-invalid with no values (a PDC's filler for a PMU it did not get) is not
published.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..c37time import from_soc_fracsec
from ..errors import C37118Error
from .adapter import config_fields, measurement_fields, object_id
from .cfg3 import decode_config3
from .command import Command, encode_command
from .config import StreamConfig, decode_config
from .data import STAT_CFG_CHANGE, STAT_DATA_INVALID, DataFrame, PmuData, decode_data
from .frame import Frame, FrameSplitter, FrameType, decode_header
from .health import LinkHealth, link_id_for

if TYPE_CHECKING:
    from ..bus import Bus
    from ..writer import Writer

log = logging.getLogger(__name__)
CFG_RETRY = 1.0  # seconds between two requests for the configuration
CFG3_WAIT = 0.5  # seconds to wait for a CFG-3 before asking for CFG-2 instead


def is_filler(block: PmuData) -> bool:
    """A PDC's block for a PMU it did not get: data-invalid and no values.  Not published:
    on the bus a missing frame is a missing sample (a PDC downstream marks it MISSING)."""
    return bool(block.stat & STAT_DATA_INVALID) and math.isnan(block.freq) and all(map(math.isnan, block.angle))


class GatewayClient:
    """Reads the C37.118.2 stream ``idcode`` at ``host:port`` and publishes it on ``bus``."""

    def __init__(
        self,
        bus: Bus,
        host: str,
        port: int,
        idcode: int,
        *,
        ids: Mapping[int, str] | None = None,
        link_id: str | None = None,
        connect_timeout: float = 2.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        udp: bool = False,
        idle_timeout: float = 5.0,
        on_frame: Callable[[DataFrame, StreamConfig], None] | None = None,
        cfg3: bool = True,
    ) -> None:
        self.bus, self.host, self.port, self.idcode = bus, host, port, idcode
        self.ids = dict(ids or {})
        self.connect_timeout, self.backoff = connect_timeout, backoff
        self.udp, self.idle_timeout = udp, idle_timeout
        scheme = "udp" if udp else "tcp"
        self.health = LinkHealth(
            bus, link_id or link_id_for(host, port), f"{scheme}://{host}:{port}", "c37.118.2-client"
        )
        self.config: StreamConfig | None = None
        self.header = ""
        self.frames = 0
        self._on_frame = on_frame
        self._writers: dict[str, Writer] = {}
        self._published_cfg: dict[str, dict[str, object]] = {}
        self._asked_cfg = 0.0
        self.cfg3 = cfg3  # ask for CFG-3 first
        self.cfg3_offered: bool | None = None  # None: not known yet on this connection
        self._cfg3_dropped = False  # a connection ended while waiting for CFG-3: never ask again
        self._asked_cfg3 = 0.0
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._started = False

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> None:
        """Stream until ``stop()`` or ``duration`` seconds; reconnect after every drop."""
        end = None if duration is None else time.monotonic() + duration
        delay, connects = self.backoff[0], 0
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            try:
                self._session(end, connects > 0)
                delay = self.backoff[0]  # a session that ran resets the backoff
            except OSError as exc:
                self.health.error(f"{self.host}:{self.port}: {exc.strerror or exc}")
            finally:
                self.health.set(connected=False)
                self._note_cfg3_drop()
            connects += 1
            wait = delay if end is None else min(delay, max(0.0, end - time.monotonic()))
            self._stop.wait(wait)
            delay = min(delay * 2, self.backoff[1])
        self.health.publish(force=True)

    # -- one connection ----------------------------------------------------------------------
    def _open(self) -> socket.socket:
        """A TCP connection, or a UDP socket connected to the PMU (commands out, frames in)."""
        if not self.udp:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        family, kind, proto, _name, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
        return sock

    def _session(self, end: float | None, again: bool) -> None:
        with self._open() as sock:
            sock.settimeout(0.2)
            self._sock = sock
            self.config, self._started = None, False  # read it again: it may have changed meanwhile
            self.cfg3_offered, self._asked_cfg3 = (None if self.cfg3 and not self._cfg3_dropped else False), 0.0
            if again:
                self.health.fields["reconnects"] += 1
            self.health.set(connected=True, last_error="")
            log.info("connected to %s:%d, stream %d", self.host, self.port, self.idcode)
            self._send(Command.STOP)  # a fresh start: the PMU may still stream to an old session
            self._send(Command.SEND_HEADER)
            self._ask_config()
            self._read(sock, end)

    def _read(self, sock: socket.socket, end: float | None) -> None:
        splitter = FrameSplitter()
        heard = time.monotonic()
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if self.config is None and (time.monotonic() - self._asked_cfg > CFG_RETRY or self._cfg3_late()):
                    self._ask_config()
                if self.udp and time.monotonic() - heard > self.idle_timeout:  # UDP has no "closed"
                    raise ConnectionAbortedError(f"nothing received for {self.idle_timeout:g} s") from None
                continue
            if not data and not self.udp:
                raise ConnectionResetError("closed by the other side")
            heard = time.monotonic()
            if self.udp:
                splitter = FrameSplitter()  # a datagram is one frame: never join two
            splitter.feed(data)
            for item in splitter.frames():
                if isinstance(item, C37118Error):
                    self.health.error(item)
                    continue
                try:
                    self._handle(item)
                except C37118Error as exc:
                    self.health.error(exc)

    def _handle(self, frame: Frame) -> None:
        if frame.type is FrameType.DATA:
            self._data(frame)
        elif frame.type in (FrameType.CFG1, FrameType.CFG2):
            if (frame.type is FrameType.CFG2 and not self.cfg3_offered) or self.config is None:
                self._configure(decode_config(frame))
        elif frame.type is FrameType.HEADER:
            self.header = decode_header(frame)
            log.info("header of stream %d: %s", frame.idcode, self.header)
        elif frame.type is FrameType.CFG3:
            cfg = decode_config3(frame)
            self.cfg3_offered = True
            self._configure(cfg)
        else:
            raise C37118Error(f"unexpected {frame.type.name} frame from IDCODE {frame.idcode}")

    def _configure(self, cfg: StreamConfig) -> None:
        self.config = cfg
        for pmu in cfg.pmus:
            oid = object_id(pmu.idcode, self.ids)
            fields = config_fields(pmu, cfg)
            if self._published_cfg.get(oid) != fields:
                self._writer(oid, "Config").write(**fields)
                self._published_cfg[oid] = fields
                log.info("%s: configuration %d (%s, %d phasors)", oid, pmu.cfgcnt, pmu.station, len(pmu.phasors))
        self.health.fields["object_id"] = object_id(cfg.pmus[0].idcode, self.ids) if cfg.pmus else ""
        if not self._started:
            self._started = True
            self._send(Command.START)

    def _data(self, frame: Frame) -> None:
        cfg = self.config
        if cfg is None:
            self._ask_config(throttle=True)
            raise C37118Error(f"data frame from IDCODE {frame.idcode} before any configuration")
        try:
            data = decode_data(cfg, frame)
        except C37118Error:
            self._ask_config(throttle=True)
            raise
        stamp = from_soc_fracsec(frame.soc, frame.fracsec, cfg.time_base)
        for pmu, block in zip(cfg.pmus, data.pmus, strict=True):
            if is_filler(block):
                continue
            fields = measurement_fields(block, pmu.idcode, frame.soc, frame.fracsec, frame.time_quality)
            self._writer(object_id(pmu.idcode, self.ids), "Measurement").write(timestamp=stamp, **fields)
        self.frames += 1
        self.health.frame()
        if any(block.stat & STAT_CFG_CHANGE for block in data.pmus):
            self._ask_config(throttle=True)
        if self._on_frame is not None:
            self._on_frame(data, cfg)

    # -- commands ----------------------------------------------------------------------------
    def _ask_config(self, throttle: bool = False) -> None:
        if throttle and time.monotonic() - self._asked_cfg < CFG_RETRY:
            return
        if self._cfg3_late():
            self.cfg3_offered = False
            log.info("stream %d: no CFG-3 within %g s, reading CFG-2", self.idcode, CFG3_WAIT)
        self._asked_cfg = time.monotonic()
        if self.cfg3_offered is False:
            self._send(Command.SEND_CFG2)
            return
        self._asked_cfg3 = self._asked_cfg3 or self._asked_cfg
        self._send(Command.SEND_CFG3)

    def _note_cfg3_drop(self) -> None:
        """Some PMUs close the connection on a CFG-3 request (pypmu 1.0.0a0 does): ask CFG-2 from now on."""
        if self.cfg3_offered is None and self._asked_cfg3 > 0 and not self._cfg3_dropped:
            self._cfg3_dropped = True
            log.info("stream %d: connection ended while waiting for CFG-3; reading CFG-2 from now on", self.idcode)

    def _cfg3_late(self) -> bool:
        """Asked for CFG-3 on this connection and none came in time: the PMU does not offer it."""
        return self.cfg3_offered is None and self._asked_cfg3 > 0 and time.monotonic() - self._asked_cfg3 > CFG3_WAIT

    def _send(self, command: Command) -> None:
        if self._sock is not None:
            self._sock.sendall(encode_command(self.idcode, command))  # on UDP: one datagram

    def _writer(self, oid: str, role: str) -> Writer:
        key = f"{oid}/{role}"
        if key not in self._writers:
            self._writers[key] = self.bus.writer(oid, role)
        return self._writers[key]
