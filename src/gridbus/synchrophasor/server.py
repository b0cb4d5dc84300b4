"""The server side of the gateway: one C37.118.2 stream to any number of PDCs, over TCP and UDP.

Each TCP client gets its own thread that answers its commands (START, STOP, send header,
CFG-1, CFG-2, CFG-3; with ``cfg3=False`` the CFG-3 command is answered by nothing, as a
PMU without it would).  With ``udp=True`` the same port also takes commands by UDP and answers to the
sender (the standard's "commanded" UDP); ``udp_to`` lists destinations that get the data
frames by UDP without asking ("spontaneous" UDP), with a CFG-2 first and every
``cfg_period`` seconds.  Data frames go only to clients that sent START.  A TCP client
whose socket does not take a frame within ``send_timeout`` is dropped, so a stalled PDC
never holds up the others.  When the configuration changes, every client gets STAT bit
10 (configuration change) on its data frames until it asks for the configuration again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..c37time import to_soc_fracsec
from ..errors import C37118Error
from .cfg3 import encode_config3
from .command import Command, decode_command
from .config import StreamConfig, encode_config
from .data import STAT_CFG_CHANGE, DataFrame, encode_data
from .frame import VERSION_2011, Frame, FrameSplitter, FrameType, encode_header

log = logging.getLogger(__name__)
RECV_SIZE = 65536
_CFG_COMMANDS = {
    Command.SEND_CFG1: FrameType.CFG1,
    Command.SEND_CFG2: FrameType.CFG2,
    Command.SEND_CFG3: FrameType.CFG3,
}


@dataclass
class _Client:
    peer: str
    send: Callable[[bytes], object]
    close: Callable[[], None]
    started: bool = False
    stale: bool = False  # the configuration changed since this client last read it
    wants_cfg: list[FrameType] = field(default_factory=list)  # asked before any configuration existed
    spontaneous: bool = False  # a --udp-to destination: never asked, gets CFG-2 now and then
    cfg_sent: float = 0.0
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
        udp: bool = False,
        udp_to: Sequence[tuple[str, int]] = (),
        cfg_period: float = 60.0,
        on_error: Callable[[object], None] | None = None,
        on_connect: Callable[[str], None] | None = None,
        cfg3: bool = True,
    ) -> None:
        self.idcode, self.header, self.version, self.cfg3 = idcode, header, version, cfg3
        self.max_clients, self.send_timeout, self.cfg_period = max_clients, send_timeout, cfg_period
        self.on_error = on_error or (lambda reason: log.warning("%s", reason))
        self.on_connect = on_connect or (lambda peer: None)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.2)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._udp: socket.socket | None = None
        if udp or udp_to:
            self._udp = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.bind((host, self.port) if udp else (host, 0))
            self._udp.settimeout(0.2)
        self._answers_udp = udp
        self._clients: list[_Client] = []
        self._by_address: dict[tuple[str, int], _Client] = {}
        self._lock = threading.Lock()
        self._config: StreamConfig | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.frames_sent = 0
        for destination in udp_to:
            client = self._udp_client(destination)
            client.started = client.spontaneous = True
            self._clients.append(client)

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
        loops = [self._accept_loop] + ([self._udp_loop] if self._answers_udp else [])
        for loop in loops:
            thread = threading.Thread(target=loop, name=f"c37-server-{self.port}", daemon=True)
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
            if client.spontaneous and (client.stale or time.monotonic() - client.cfg_sent >= self.cfg_period):
                self._send_config(client, FrameType.CFG2)
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
            client.close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._udp is not None:
            self._udp.close()

    # -- connections -----------------------------------------------------------------------
    def _admit(self, client: _Client) -> bool:
        with self._lock:
            full = len(self._clients) >= self.max_clients
            if not full:
                self._clients.append(client)
        if full:
            self.on_error(f"refused PDC {client.peer}: already {self.max_clients} clients")
            client.close()
            return False
        log.info("PDC %s connected to stream %d", client.peer, self.idcode)
        self.on_connect(client.peer)
        return True

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            client = self._tcp_client(sock, f"{addr[0]}:{addr[1]}")
            if not self._admit(client):
                continue
            thread = threading.Thread(target=self._serve_tcp, args=(client, sock), name=f"c37-{client.peer}")
            thread.daemon = True
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _tcp_client(self, sock: socket.socket, peer: str) -> _Client:
        sock.settimeout(0.5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lock = threading.Lock()

        def send(raw: bytes) -> None:
            with lock:
                sock.settimeout(self.send_timeout)
                try:
                    sock.sendall(raw)
                finally:
                    sock.settimeout(0.5)

        return _Client(peer, send, lambda: _close(sock))

    def _udp_client(self, address: tuple[str, int]) -> _Client:
        udp = self._udp
        assert udp is not None
        return _Client(f"udp:{address[0]}:{address[1]}", lambda raw: udp.sendto(raw, address), lambda: None)

    def _serve_tcp(self, client: _Client, sock: socket.socket) -> None:
        splitter = FrameSplitter()
        try:
            while not self._stop.is_set():
                try:
                    data = sock.recv(RECV_SIZE)
                except TimeoutError:
                    continue
                if not data:
                    break
                splitter.feed(data)
                self._commands(client, splitter)
        except OSError as exc:
            log.info("PDC %s: %s", client.peer, exc)
        finally:
            self._drop(client)

    def _udp_loop(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                data, address = self._udp.recvfrom(RECV_SIZE)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            key = (address[0], address[1])
            client = self._by_address.get(key)
            if client is None:
                client = self._udp_client(key)
                if not self._admit(client):
                    continue
                self._by_address[key] = client
            splitter = FrameSplitter()  # one datagram, one frame
            splitter.feed(data)
            self._commands(client, splitter)

    def _commands(self, client: _Client, splitter: FrameSplitter) -> None:
        for item in splitter.frames():
            if isinstance(item, C37118Error):
                self.on_error(f"from {client.peer}: {item}")
            else:
                self._command(client, item)

    def _command(self, client: _Client, frame: Frame) -> None:
        try:
            command, _extra = decode_command(frame)
        except C37118Error as exc:
            self.on_error(f"from {client.peer}: {exc}")
            return
        if frame.idcode != self.idcode:
            self.on_error(f"from {client.peer}: {command.name} to IDCODE {frame.idcode}, this is {self.idcode}")
            return
        log.debug("PDC %s: %s", client.peer, command.name)
        if command is Command.START:
            client.started = True
        elif command is Command.STOP:
            client.started = False
        elif command is Command.SEND_HEADER:
            soc, frac = self._now()
            self._send(client, encode_header(self.idcode, self.header, soc, frac, version=self.version))
        elif command in _CFG_COMMANDS and (self.cfg3 or command is not Command.SEND_CFG3):
            self._send_config(client, _CFG_COMMANDS[command])
        else:
            self.on_error(f"from {client.peer}: command {command.name} not supported")

    def _send_config(self, client: _Client, kind: FrameType) -> None:
        cfg = self._config
        if cfg is None:
            client.wants_cfg.append(kind)
            return
        soc, frac = self._now(cfg.time_base)
        if kind is FrameType.CFG3:
            raw = encode_config3(cfg, soc, frac, version=self.version)
        else:
            raw = encode_config(cfg, soc, frac, ftype=kind, version=self.version)
        sent = self._send(client, raw)
        if sent and kind in (FrameType.CFG2, FrameType.CFG3):
            client.stale, client.cfg_sent = False, time.monotonic()

    def _send(self, client: _Client, raw: bytes) -> int:
        try:
            client.send(raw)
            return 1
        except OSError as exc:
            if client.spontaneous:  # nobody listens there yet: UDP goes on
                log.debug("%s: %s", client.peer, exc)
                return 0
            self.on_error(f"PDC {client.peer} dropped: {exc}")
            self._drop(client)
            return 0

    def _drop(self, client: _Client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
                log.info("PDC %s disconnected", client.peer)
        self._by_address = {k: c for k, c in self._by_address.items() if c is not client}
        client.close()

    @staticmethod
    def _now(time_base: int = 1_000_000) -> tuple[int, int]:
        return to_soc_fracsec(time.time(), time_base)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
