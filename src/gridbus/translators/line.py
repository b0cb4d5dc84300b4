"""One serial line (one port) serving one or several objects: a multidrop RS-485 line.

On RS-485 several drives share a pair of wires, each with its own Modbus unit
id, and only one master may talk at a time.  A :class:`Line` owns the port and
gives the translators (one per unit id and bus object) their turns, one
transaction at a time: commands, pulse ends and heartbeats of any unit before
any status poll, round robin among the units, so a command waits at most for
the transaction on the wire, never for a whole poll cycle.  A unit that stops
answering is out of reach on its own (the others are served on); a port that
vanishes takes every unit down and is reopened every 0.25 s.
"""

from __future__ import annotations

import logging
import time

from ..errors import GridbusError, PortLost
from .link import SerialLink
from .profile import Profile
from .translator import RECONNECT_INTERVAL, Translator

log = logging.getLogger(__name__)


LINE_SETTINGS = ("baudrate", "bytesize", "parity", "stopbits")


def same_line(line: Profile, profiles: list[Profile]) -> None:
    """Drives on one line must all speak Modbus RTU at the line's settings (baud, framing)."""
    for p in profiles:
        if len(profiles) > 1 and p.protocol != "modbus-rtu":
            raise GridbusError(f"profile {p.name}: only Modbus RTU drives share a line (unit ids)")
        for key in LINE_SETTINGS:
            mine, theirs = getattr(p.serial, key), getattr(line.serial, key)
            if mine != theirs:
                raise GridbusError(
                    f"profile {p.name} has {key} {mine}, the line ({line.name}) {theirs}: "
                    "drives on one line share its settings (--baud sets the rate of all)"
                )


class Line:
    def __init__(self, link: SerialLink, translators: list[Translator]) -> None:
        units = [t.unit for t in translators]
        if len(set(units)) != len(units):
            raise GridbusError(f"{link.port}: two objects with one unit id ({units}); each drive needs its own")
        self.link, self.translators = link, translators
        self._turn = 0
        self._next_connect = 0.0
        self._stopping = False

    def stop(self) -> None:
        """Ask :meth:`run` to finish its step and shut down cleanly (safe in a signal handler)."""
        self._stopping = True

    def run(self, duration: float | None = None) -> None:
        for t in self.translators:
            t.report_unmapped()
        start = time.monotonic()
        try:
            while not self._stopping and (duration is None or time.monotonic() - start < duration):
                self.step()
        finally:
            self.link.close()
            for t in self.translators:
                t.close()

    def step(self) -> None:
        for t in self.translators:
            t.take_commands()
        now = time.monotonic()
        if not self.link.is_open:
            if now >= self._next_connect:
                self._connect()
            else:
                time.sleep(0.005)
        else:
            try:
                if not self._serve(now):
                    time.sleep(0.002)
            except PortLost as exc:
                self._drop(exc)
        for t in self.translators:
            t.publish_health()

    def _serve(self, now: float) -> bool:
        """One transaction of the unit whose turn it is: urgent work first, then polls."""
        count = len(self.translators)
        order = [self.translators[(self._turn + i) % count] for i in range(count)]
        for wants, act in ((Translator.urgent, Translator.serve_urgent), (Translator.poll_due, None)):
            for t in order:
                if wants(t, now):
                    if act is None:
                        t.poll()
                    else:
                        act(t, now)
                    self._turn = (self.translators.index(t) + 1) % count
                    return True
        return False

    def _connect(self) -> None:
        try:
            self.link.open()
        except PortLost as exc:
            self._next_connect = time.monotonic() + RECONNECT_INTERVAL
            for t in self.translators:
                t.line_lost(f"{exc.kind}: {exc}", str(exc))
            return
        for t in self.translators:
            t.port_open()

    def _drop(self, exc: PortLost) -> None:
        self.link.close()
        self._next_connect = time.monotonic() + RECONNECT_INTERVAL
        log.warning("translate: %s lost: %s", self.link.port, exc)
        for t in self.translators:
            t.line_lost(f"{exc.kind}: {exc}", str(exc))
