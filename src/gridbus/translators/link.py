"""The serial transport: a port opened in one call, half-duplex transactions, line timing.

The same code opens ``/dev/ttyUSB0`` on a lab bench and a pseudo-terminal in
the tests.  A pty moves bytes instantly and ignores the baud rate, so the link
(and the simulated device) wait the time the bytes would take on a real line
(start bit, data bits, parity, stop bits per character) — that keeps latency
figures at 9600 and 115200 baud meaningful.
"""

from __future__ import annotations

import errno
import os
import termios
import time
from collections.abc import Callable

import serial

from ..errors import DeviceRejected as DeviceRejected  # the link's errors, importable from here too
from ..errors import DeviceTimeout, FrameError, PortLost
from ..errors import LinkError as LinkError
from .profile import SerialSettings


def char_time(settings: SerialSettings) -> float:
    """Seconds one character takes on the line."""
    bits = 1 + settings.bytesize + (0 if settings.parity == "N" else 1) + settings.stopbits
    return bits / settings.baudrate


def why(exc: BaseException, port: str) -> str:
    """A port error's reason without the port's path (Link_State names the port; the path,
    repeated by pyserial, would crowd the reason out of a 128-byte last_error)."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):  # termios.error
        code = exc.args[0]
    if isinstance(code, int) and code > 0:
        return f"{os.strerror(code)} (errno {errno.errorcode.get(code, code)})"
    return str(exc).replace(os.path.realpath(port), "the port").replace(port, "the port")


def is_pty(path: str) -> bool:
    return os.path.realpath(path).startswith("/dev/pts/")


class SerialLink:
    """One serial port and its request/response discipline."""

    def __init__(self, port: str, settings: SerialSettings, emulate_line: bool | None = None) -> None:
        self.port = port
        self.settings = settings
        self.emulate_line = is_pty(port) if emulate_line is None else emulate_line
        self.serial: serial.Serial | None = None
        self._last_activity = 0.0

    @property
    def is_open(self) -> bool:
        return self.serial is not None

    def open(self) -> None:
        """Open and configure in one call (see docs/serial.md: a pty refuses parity-only changes later)."""
        s = self.settings
        parity = s.parity
        for attempt in range(2):
            try:
                self.serial = serial.Serial(
                    port=self.port,
                    baudrate=s.baudrate,
                    bytesize=s.bytesize,
                    parity=parity,
                    stopbits=s.stopbits,
                    timeout=0,
                    exclusive=True,
                )
                return
            except termios.error as exc:
                # A pty ignores parity (the kernel clears PARENB), and re-opening one whose only
                # difference is parity gets EINVAL from tcsetattr: parity means nothing there anyway.
                if attempt == 0 and exc.args[0] == errno.EINVAL and parity != "N" and is_pty(self.port):
                    parity = "N"
                    continue
                self.serial = None
                raise PortLost(f"cannot configure the port: {why(exc, self.port)}") from None
            except (serial.SerialException, OSError, ValueError) as exc:
                self.serial = None
                raise PortLost(f"cannot open the port: {why(exc, self.port)}") from None

    def close(self) -> None:
        if self.serial is not None:
            try:
                self.serial.close()
            except (serial.SerialException, OSError, termios.error):
                pass
        self.serial = None

    def send(self, data: bytes) -> None:
        """Write one frame after the line's inter-frame silence (half duplex: stale input dropped)."""
        if self.serial is None:
            raise PortLost("the port is not open")
        gap = self.settings.inter_frame - (time.monotonic() - self._last_activity)
        if gap > 0:
            time.sleep(gap)
        try:
            self.serial.reset_input_buffer()
            self.serial.write(data)
            self.serial.flush()
        except (serial.SerialException, OSError, termios.error) as exc:
            raise PortLost(f"the port failed: {why(exc, self.port)}") from None
        if self.emulate_line:
            time.sleep(len(data) * char_time(self.settings))
        self._last_activity = time.monotonic()

    def receive(self, complete: Callable[[bytes], bool]) -> bytes:
        """Read until ``complete(buffer)`` or the reply timeout."""
        if self.serial is None:
            raise PortLost("the port is not open")
        buffer = b""
        deadline = time.monotonic() + self.settings.timeout
        while True:
            try:
                waiting = self.serial.in_waiting
                chunk: bytes = self.serial.read(waiting or 1)
            except (serial.SerialException, OSError, termios.error) as exc:
                raise PortLost(f"the port failed: {why(exc, self.port)}") from None
            if chunk:
                buffer += chunk
                self._last_activity = time.monotonic()
                if complete(buffer):
                    return buffer
            elif time.monotonic() > deadline:
                if buffer:
                    raise FrameError(f"incomplete or garbled reply {buffer[:32]!r}")
                raise DeviceTimeout(f"no reply within {self.settings.timeout:g} s")
            else:
                time.sleep(0.0005)

    def transact(self, request: bytes, complete: Callable[[bytes], bool]) -> bytes:
        self.send(request)
        return self.receive(complete)
