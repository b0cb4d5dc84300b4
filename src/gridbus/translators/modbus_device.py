"""The simulated Modbus RTU drive: one or several unit ids answering on one line.

It answers from the same profile the translator uses: reads of the status
registers (function 3 or 4, every type and word order the profile names),
writes by function 6 (refused with "illegal function" when the profile says the
drive takes only 16) or 16, control words whose bit patterns become commands
(each pattern that holds is obeyed on every write, START when its bits are
set; an edge-triggered one such as RESET only on the rising edge of its bit), refused when a bit the word must hold is
missing, set-points, and the heartbeat.  Units the server does not play stay
silent, as other drives on a shared RS-485 line would answer for themselves.
"""

from __future__ import annotations

from typing import Any

from ..extras import require
from . import registers
from .device_model import DeviceModel, Rejected
from .modbus import enum_codes
from .profile import CommandMap

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3


class Refusal(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _active(command: CommandMap, image: int) -> bool:
    return all(image >> b & 1 for b in command.set) and not any(image >> b & 1 for b in command.clear)


class ModbusServer:
    def __init__(self, model: DeviceModel, units: dict[int, DeviceModel] | None = None) -> None:
        require("pymodbus", "a Modbus RTU device")  # the serial extra; imported here, where it is used
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        self.model, self.profile = model, model.profile
        self.models = units or {self.profile.unit: model}
        self.images: dict[int, dict[str, int]] = {u: {} for u in self.models}
        self.framer = FramerRTU(DecodePDU(True))
        self.areas = {t: self.profile.status_registers(t) for t in registers.TABLES}
        self.enums = {n: {v: raw for raw, v in codes.items()} for n, codes in enum_codes(self.profile).items()}
        self.last_kind = ""
        self.writes: list[tuple[int, int, list[int]]] = []  # (unit, address, words) received, heartbeats aside

    def take_writes(self) -> list[tuple[int, int, list[int]]]:
        """The writes received since the last call (what a test checks the drive was sent)."""
        taken, self.writes = self.writes, []
        return taken

    def power_on(self, unit: int) -> None:
        """The unit forgot its settings: control words back to 0."""
        self.images[unit] = {}

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        """(bytes used, reply) for the buffer received so far; (0, None) = wait for more."""
        from pymodbus.pdu import ExceptionResponse

        used, pdu = self.framer.handleFrame(buffer, 0, 0)
        if pdu is None:
            return used, None
        if pdu.dev_id not in self.models:
            return used, b""  # another device's request: stay silent
        try:
            reply = self._answer(pdu, pdu.dev_id)
        except Refusal as exc:
            reply = ExceptionResponse(pdu.function_code, exc.code, device_id=pdu.dev_id)
        return used, self.framer.buildFrame(reply)

    def _answer(self, pdu: Any, unit: int) -> Any:  # pymodbus's PDUs carry no types
        from pymodbus.pdu import register_message as rm

        if isinstance(pdu, (rm.ReadHoldingRegistersRequest, rm.ReadInputRegistersRequest)):
            self.last_kind = "query"
            table = "input" if isinstance(pdu, rm.ReadInputRegistersRequest) else "holding"
            words = self._read(unit, table, pdu.address, pdu.count)
            kind = rm.ReadInputRegistersResponse if table == "input" else rm.ReadHoldingRegistersResponse
            return kind(registers=words, dev_id=unit)
        if isinstance(pdu, rm.WriteSingleRegisterRequest):
            if self.profile.write_function == 16:
                raise Refusal(ILLEGAL_FUNCTION)  # a drive that takes only "write multiple"
            self._write(unit, pdu.address, [pdu.registers[0]])
            return rm.WriteSingleRegisterResponse(address=pdu.address, registers=pdu.registers, dev_id=unit)
        if isinstance(pdu, rm.WriteMultipleRegistersRequest):
            self._write(unit, pdu.address, list(pdu.registers))
            return rm.WriteMultipleRegistersResponse(address=pdu.address, count=len(pdu.registers), dev_id=unit)
        raise Refusal(ILLEGAL_FUNCTION)

    def _read(self, unit: int, table: str, start: int, count: int) -> list[int]:
        area = self.areas[table]
        if not 1 <= count <= 125:  # the Modbus limit of one read
            raise Refusal(ILLEGAL_VALUE)
        if not area or not (area[0] <= start and start + count - 1 <= area[-1]):
            raise Refusal(ILLEGAL_ADDRESS)
        words = dict.fromkeys(range(start, start + count), 0)
        model = self.models[unit]
        for name, item in self.profile.status.items():
            if item.address not in words or self.profile.status_table(item) != table:
                continue
            value = model.status(name)
            if name in self.enums:
                value = float(self.enums[name].get(value, 0))
            if item.bit is not None:
                words[item.address] |= (1 if value else 0) << item.bit
                continue
            raw = value if name in self.enums else value * item.scale
            limit = registers.limits(item.type)
            encoded = registers.encode(max(limit[0], min(limit[1], raw)), item.type, item.word_order)
            for i, w in enumerate(encoded):
                if item.address + i in words:
                    words[item.address + i] = w
        return list(words.values())

    def _write(self, unit: int, address: int, words: list[int]) -> None:
        self.last_kind = "command"
        profile, model = self.profile, self.models[unit]
        watchdog = profile.watchdog
        if watchdog is not None and address == watchdog.address and len(words) == 1:
            self.last_kind = "heartbeat"
            model.heartbeat()
            return
        self.writes.append((unit, address, list(words)))
        for name, word in profile.words.items():
            if word.address == address and len(words) == 1:
                self._control_word(unit, name, words[0])
                return
        for command in profile.commands.values():
            if command.word or command.address != address:
                continue
            if command.value is not None:
                if words == [command.value]:
                    return self._obey(model, command.name, None)
                continue
            if len(words) != registers.size(command.kind):
                raise Refusal(ILLEGAL_ADDRESS)
            number = registers.decode(words, command.kind, command.word_order)
            return self._obey(model, command.name, number / command.scale)
        written = {c.address for c in profile.commands.values()}
        raise Refusal(ILLEGAL_ADDRESS if address not in written else ILLEGAL_VALUE)

    def _control_word(self, unit: int, name: str, image: int) -> None:
        word = self.profile.words[name]
        if any(not image >> b & 1 for b in word.hold):
            raise Refusal(ILLEGAL_VALUE)  # e.g. the remote-control bit: the drive will not obey
        before = self.images[unit].get(name, 0)
        for command in self.profile.commands.values():
            if command.word != name or not _active(command, image):
                continue
            new = not _active(command, before)
            if command.pulse and not new:
                continue  # an edge-triggered bit (a reset) acts on its rising edge only
            try:
                self._obey(self.models[unit], command.name, None)
            except Refusal:
                if new:
                    raise
                # a level held from before (START while tripped): not obeyed, and not an error
        self.images[unit][name] = image

    @staticmethod
    def _obey(model: DeviceModel, name: str, value: float | None) -> None:
        try:
            model.command(name, value)
        except Rejected:
            raise Refusal(ILLEGAL_VALUE) from None

    def corrupt(self, reply: bytes) -> bytes:
        return reply[:-1] + bytes([reply[-1] ^ 0xFF])


class LineServer:
    """Drives of different profiles on one simulated line: each unit answers from its own."""

    def __init__(self, servers: list[ModbusServer]) -> None:
        self.servers = servers
        self.last_kind = ""

    def handle(self, buffer: bytes) -> tuple[int, bytes | None]:
        used, reply = 0, None
        for server in self.servers:
            used, reply = server.handle(buffer)
            if reply is None:  # not a whole frame yet: the same for every server
                return used, None
            if reply:
                self.last_kind = server.last_kind
                return used, reply
        return used, reply  # another device's request: silence

    def take_writes(self) -> list[tuple[int, int, list[int]]]:
        return [w for server in self.servers for w in server.take_writes()]

    def power_on(self, unit: int) -> None:
        for server in self.servers:
            if unit in server.models:
                server.power_on(unit)

    def corrupt(self, reply: bytes) -> bytes:
        return self.servers[0].corrupt(reply)


def line_server(models: dict[int, DeviceModel]) -> ModbusServer | LineServer:
    """One server for the units of one profile, a :class:`LineServer` for several profiles."""
    by_profile: dict[str, dict[int, DeviceModel]] = {}
    for unit, model in models.items():
        by_profile.setdefault(model.profile.path, {})[unit] = model
    servers = [ModbusServer(next(iter(group.values())), group) for group in by_profile.values()]
    return servers[0] if len(servers) == 1 else LineServer(servers)
