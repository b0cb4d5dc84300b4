"""Protocol responders of the device simulator: text (ASCII, SCPI-like) devices here, Modbus RTU
in :mod:`gridbus.translators.modbus_device`.

Each turns the bytes received so far into (bytes used, reply), answering from
a :class:`~gridbus.translators.device_model.DeviceModel` the way the profile's
device does, including its refusals and a deliberately corrupted reply.
"""

from __future__ import annotations

from .device_model import DeviceModel, Rejected
from .modbus_device import ModbusServer as ModbusServer  # the Modbus responder has its own module
from .protocols import parse_number, xor_checksum


class TextServer:
    def __init__(self, model: DeviceModel) -> None:
        self.model, self.profile = model, model.profile
        self.terminator = self.profile.terminator.encode()
        self.errors: list[str] = []

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        end = buffer.find(self.terminator)
        if end < 0:
            return 0, None
        line, used = buffer[:end], end + len(self.terminator)
        if self.profile.checksum == "xor":
            payload, star, check = line.rpartition(b"*")
            if not star or xor_checksum(payload) != check.decode(errors="replace").upper():
                return used, self._frame("ERR 2 checksum")
            line = payload
        answer = self._answer(line.decode(errors="replace").strip())
        return used, (b"" if answer is None else self._frame(answer))

    def _frame(self, text: str) -> bytes:
        data = text.encode()
        if self.profile.checksum == "xor":
            data += b"*" + xor_checksum(data).encode()
        return data + self.terminator

    def _answer(self, text: str) -> str | None:
        scpi = self.profile.protocol == "scpi"
        self.last_kind = "query" if text.endswith("?") else "command"
        if scpi and self.profile.error_query and text == self.profile.error_query:
            return self.errors.pop(0) if self.errors else '0,"No error"'
        for name, item in self.profile.status.items():
            if text == item.query:
                value = self.model.status(name) * item.scale
                return f"{value:.3f}"
        for name, spec in self.profile.commands.items():
            for template in spec.send:
                number = _match(template, text)
                if number is False:
                    continue
                try:
                    self.model.command(name, None if number is None else number / spec.scale)
                except Rejected as exc:
                    if scpi:
                        self.errors.append(f'-222,"Data out of range; {exc}"')
                        return None
                    return f"ERR 3 {exc}"
                return None if scpi else "OK"
        if scpi:
            self.errors.append('-113,"Undefined header"')
            return None
        return "ERR 1 unknown command"

    def corrupt(self, reply: bytes) -> bytes:
        body = reply[: -len(self.terminator)]
        return body[:-1] + (b"0" if body[-1:] != b"0" else b"1") + self.terminator


def _match(template: str, text: str) -> float | None | bool:
    """The number a command line carries if it fits ``template`` (None: no number; False: no fit)."""
    if "{" not in template:
        return None if text == template else False
    head = template.split("{", 1)[0]
    tail = template.rsplit("}", 1)[1]
    if not (text.startswith(head) and text.endswith(tail)) or len(text) <= len(head) + len(tail):
        return False
    try:
        return parse_number(text[len(head) : len(text) - len(tail) if tail else None])
    except Exception:
        return False
