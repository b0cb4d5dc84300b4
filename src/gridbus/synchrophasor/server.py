"""The server side of the gateway: one C37.118.2 stream over TCP to any number of PDCs.

Each client gets its own thread that answers its commands (START, STOP, send header,
CFG-1, CFG-2; CFG-3 is not supported and is answered by nothing, as a PMU without it
would).  Data frames go only to clients that sent START.  A client whose socket does not
take a frame within ``send_timeout`` is dropped, so a stalled PDC never holds up the
others.  When the configuration changes, every client gets STAT bit 10 (configuration
change) on its data frames until it asks for the configuration again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..errors import C37118Error
from .command import Command, decode_command
from .config import StreamConfig, encode_config
from .data import STAT_CFG_CHANGE, DataFrame, encode_data
from .frame import VERSION_2011, Frame, FrameSplitter, FrameType, encode_header, split_time

log = logging.getLogger(__name__)
RECV_SIZE = 65536


@dataclass
class _Client:
    sock: socket.socket
    peer: str
    started: bool = False
    stale: bool = False  # the configuration changed since this client last read it
    wants_cfg: list[FrameType] = field(default_factory=list)  # asked before any configuration existed
    lock: threading.Lock = field(default_factory=threading.Lock)


class GatewayServer:
    """Serves a C37.118.2 stream (IDCODE ``idcode``) on ``host:port`` (port 0: any free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        idcode: int,
        *,
        header: str = "gridbus C37.118.2 gateway",
        max_clients: int = 16,
        send_timeout: float = 2.0,
        version: int = VERSION_2011,
        on_error: Callable[[object], None] | None = None,
        on_connect: Callable[[str], None] | None = None,
    ) -> None:
        self.idcode, self.header, self.version = idcode, header, version
        self.max_clients, self.send_timeout = max_clients, send_timeout
        self.on_error = on_error or (lambda reason: log.warning("%s", reason))
        self.on_connect = on_connect or (lambda peer: None)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.2)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._config: StreamConfig | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.frames_sent = 0

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    @property
    def config(self) -> StreamConfig | None:
        return self._config

    def start(self) -> GatewayServer:
        thread = threading.Thread(target=self._accept_loop, name=f"c37-server-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    # -- the stream ------------------------------------------------------------------------
    def set_config(self, cfg: StreamConfig) -> None:
        """Serve ``cfg`` from now on; clients that read an older one are told by STAT bit 10."""
        cfg = replace(cfg, idcode=self.idcode)
        changed = self._config is not None and self._config != cfg
        self._config = cfg
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.stale = client.stale or changed
            pending, client.wants_cfg = client.wants_cfg, []
            for kind in pending:
                self._send_config(client, kind)

    def publish(self, frame: DataFrame) -> int:
        """Send one data frame to every started client; returns how many got it."""
        cfg = self._config
        if cfg is None:
            raise C37118Error("no configuration to serve data frames with (no PMU_Config seen yet)")
        raw = encode_data(cfg, replace(frame, idcode=self.idcode), version=self.version)
        flagged: bytes | None = None
        sent = 0
        with self._lock:
            clients = [c for c in self._clients if c.started]
        for client in clients:
            if client.stale:
                if flagged is None:
                    marked = [replace(p, stat=p.stat | STAT_CFG_CHANGE) for p in frame.pmus]
                    flagged = encode_data(cfg, replace(frame, idcode=self.idcode, pmus=marked), version=self.version)
                sent += self._send(client, flagged)
            else:
                sent += self._send(client, raw)
        self.frames_sent += sent
        return sent

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            _close(client.sock)
        for thread in self._threads:
            thread.join(timeout=2.0)

    # -- connections -----------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            peer = f"{addr[0]}:{addr[1]}"
            with self._lock:
                full = len(self._clients) >= self.max_clients
                client = _Client(sock, peer)
                if not full:
                    self._clients.append(client)
            if full:
                self.on_error(f"refused PDC {peer}: already {self.max_clients} clients")
                _close(sock)
                continue
            sock.settimeout(0.5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info("PDC %s connected to stream %d", peer, self.idcode)
            self.on_connect(peer)
            thread = threading.Thread(target=self._serve, args=(client,), name=f"c37-client-{peer}", daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _serve(self, client: _Client) -> None:
        splitter = FrameSplitter()
        try:
            while not self._stop.is_set():
                try:
                    data = client.sock.recv(RECV_SIZE)
                except TimeoutError:
                    continue
                if not data:
                    break
                splitter.feed(data)
                for item in splitter.frames():
                    if isinstance(item, C37118Error):
                        self.on_error(f"from {client.peer}: {item}")
                    else:
                        self._command(client, item)
        except OSError as exc:
            log.info("PDC %s: %s", client.peer, exc)
        finally:
            self._drop(client)

    def _command(self, client: _Client, frame: Frame) -> None:
        try:
            command, _extra = decode_command(frame)
        except C37118Error as exc:
            self.on_error(f"from {client.peer}: {exc}")
            return
        if frame.idcode != self.idcode:
            self.on_error(f"from {client.peer}: command {command.name} to IDCODE {frame.idcode}, this is {self.idcode}")
            return
        log.debug("PDC %s: %s", client.peer, command.name)
        if command is Command.START:
            client.started = True
        elif command is Command.STOP:
            client.started = False
        elif command is Command.SEND_HEADER:
            soc, frac = self._now()
            self._send(client, encode_header(self.idcode, self.header, soc, frac, version=self.version))
        elif command in (Command.SEND_CFG1, Command.SEND_CFG2):
            self._send_config(client, FrameType.CFG1 if command is Command.SEND_CFG1 else FrameType.CFG2)
        else:
            self.on_error(f"from {client.peer}: command {command.name} not supported (no CFG-3, no extended frames)")

    def _send_config(self, client: _Client, kind: FrameType) -> None:
        cfg = self._config
        if cfg is None:
            client.wants_cfg.append(kind)
            return
        soc, frac = self._now(cfg.time_base)
        if (
            self._send(client, encode_config(cfg, soc, frac, ftype=kind, version=self.version))
            and kind is FrameType.CFG2
        ):
            client.stale = False

    def _send(self, client: _Client, raw: bytes) -> int:
        try:
            with client.lock:
                client.sock.settimeout(self.send_timeout)
                try:
                    client.sock.sendall(raw)
                finally:
                    client.sock.settimeout(0.5)
            return 1
        except OSError as exc:
            self.on_error(f"PDC {client.peer} dropped: {exc}")
            self._drop(client)
            return 0

    def _drop(self, client: _Client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
                log.info("PDC %s disconnected", client.peer)
        _close(client.sock)

    @staticmethod
    def _now(time_base: int = 1_000_000) -> tuple[int, int]:
        return split_time(time.time(), time_base)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
