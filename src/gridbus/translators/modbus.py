"""The translator's Modbus RTU client: profile commands and status over a (shared) link.

pymodbus gives the PDUs and the RTU framer (CRC, frame sizes); the transport is
gridbus's own half-duplex link, so a CRC error or garbage is reported, not
hidden.  One client serves one unit id; several clients share one link on a
multidrop line.  What the profile describes is done here: function 6 or 16
for writes, 3 or 4 for reads, 16/32-bit and float values in either word order,
control words kept as a cached image whose bits commands set and clear (so
START never clears REVERSE or a bit the word must hold), and the heartbeat.
"""

from __future__ import annotations

from typing import Any

from ..errors import DeviceRejected, FrameError
from ..extras import require
from . import registers
from .link import SerialLink
from .profile import CommandMap, ObjectTypes, Profile, StatusMap, object_types

MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
}
READ_MAX = 125  # Modbus: registers one read may return
# a gap of more unread registers than this costs more line time than another request would
# (a request and its reply's overhead are 13 bytes; each register read is 2)
GAP_MAX = 6


def register_blocks(regs: list[int], limit: int = READ_MAX, gap: int = GAP_MAX) -> list[tuple[int, int]]:
    """(start, count) reads covering ascending ``regs``, none longer than ``limit``, none
    reading more than ``gap`` unused registers in a row (separate status blocks)."""
    blocks: list[tuple[int, int]] = []
    for register in regs:
        start, count = blocks[-1] if blocks else (0, 0)
        if blocks and register - start < limit and register - (start + count) <= gap:
            blocks[-1] = (blocks[-1][0], register - blocks[-1][0] + 1)
        else:
            blocks.append((register, 1))
    return blocks


def command_words(command: CommandMap, value: float | None) -> list[int]:
    """The words a fixed-value or set-point command writes (ValueDoesNotFit if it cannot)."""
    if command.value is not None:
        return [command.value]
    if value is None:
        raise TypeError(f"the {command.name} command carries a value and was given none")
    return registers.encode(command.device_value(value), command.kind, command.word_order)


def enum_codes(profile: Profile, registry: ObjectTypes | None = None) -> dict[str, dict[int, float]]:
    """For each enum-mapped status value: device value -> the State enum member's index
    (``registry``: the object types, default gridbus's data model)."""
    state = object_types(registry).by_prefix(profile.object).topics.get("State")
    out: dict[str, dict[int, float]] = {}
    for name, item in profile.status.items():
        info = state.fields.get(name) if state is not None else None
        if item.map and info is not None and info.enum is not None:
            index = {m.name: float(i) for i, m in enumerate(info.enum)}
            out[name] = {int(raw): index[member] for raw, member in item.map.items()}
    return out


class ModbusClient:
    def __init__(
        self, link: SerialLink, profile: Profile, unit: int | None = None, registry: ObjectTypes | None = None
    ) -> None:
        require("pymodbus", "Modbus RTU")  # the serial extra; imported here, where it is used
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        self.link, self.profile = link, profile
        self.unit = profile.unit if unit is None else unit
        self.framer = FramerRTU(DecodePDU(False))
        self.blocks = {t: register_blocks(profile.status_registers(t)) for t in registers.TABLES}
        self.images = {n: w.initial | _mask(w.hold) for n, w in profile.words.items()}
        self.enums = enum_codes(profile, registry)
        self.beats = 0
        self._todo: list[tuple[str, int, int]] = []  # status blocks still to read in this poll
        self._words: dict[tuple[str, int], int] = {}

    def _transact(self, request: Any) -> Any:  # pymodbus's PDUs carry no types
        from pymodbus.pdu import ExceptionResponse

        reply: dict[str, Any] = {}

        def complete(buffer: bytes) -> bool:
            used, pdu = self.framer.handleFrame(buffer, self.unit, 0)
            if pdu is not None:
                reply["pdu"] = pdu
                return True
            if used:  # consumed without a frame: CRC error or garbage
                raise FrameError(f"CRC error or garbage in reply {buffer[:32].hex()}")
            return False

        self.link.transact(self.framer.buildFrame(request), complete)
        pdu = reply["pdu"]
        if isinstance(pdu, ExceptionResponse):
            reason = MODBUS_EXCEPTIONS.get(pdu.exception_code, f"exception {pdu.exception_code}")
            raise DeviceRejected(f"modbus {reason}")
        if getattr(pdu, "dev_id", self.unit) != self.unit:
            raise FrameError(f"reply from unit {pdu.dev_id}, not {self.unit}")
        return pdu

    def write(self, address: int, words: list[int]) -> None:
        """Write ``words`` at ``address``: function 6 for one word unless the profile says 16."""
        from pymodbus.pdu.register_message import WriteMultipleRegistersRequest, WriteSingleRegisterRequest

        if len(words) == 1 and self.profile.write_function == 6:
            request: Any = WriteSingleRegisterRequest(address=address, registers=words, dev_id=self.unit)
        else:
            request = WriteMultipleRegistersRequest(address=address, registers=words, dev_id=self.unit)
        self._transact(request)

    def apply(self, command: CommandMap, value: float | None) -> None:
        if command.word:
            image = (self.images[command.word] | _mask(command.set)) & ~_mask(command.clear) & 0xFFFF
            self._write_word(command.word, image)
            return
        assert command.address is not None  # the profile loader requires one
        self.write(command.address, command_words(command, value))

    def release(self, command: CommandMap) -> None:
        """End a pulse: clear the bits an edge-triggered command set (a fault reset)."""
        self._write_word(command.word, self.images[command.word] & ~_mask(command.set))

    def _write_word(self, name: str, image: int) -> None:
        word = self.profile.words[name]
        assert word.address is not None
        image |= _mask(word.hold)
        self.write(word.address, [image])
        self.images[name] = image  # only once the device took it

    def heartbeat(self) -> None:
        watchdog = self.profile.watchdog
        assert watchdog is not None and watchdog.address is not None
        value = watchdog.value if watchdog.value is not None else self.beats & 0xFFFF
        self.write(watchdog.address, [value])
        self.beats += 1

    def read_status(self) -> dict[str, float]:
        while (status := self.read_step()) is None:
            pass
        return status

    def read_step(self) -> dict[str, float] | None:
        """Read the next status block; the status once the last block is in, else None.  A poll
        is done a block at a time, so commands on the line are served between the blocks."""
        from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

        if not self._todo:
            self._todo = [(t, start, count) for t, blocks in self.blocks.items() for start, count in blocks]
            self._words = {}
        table, start, count = self._todo[0]
        kind = ReadInputRegistersRequest if table == "input" else ReadHoldingRegistersRequest
        try:
            pdu = self._transact(kind(address=start, count=count, dev_id=self.unit))
            got = list(pdu.registers)
            if len(got) != count:
                raise FrameError(f"asked for {count} registers at {start:#06x}, got {len(got)}")
        except Exception:
            self._todo = []  # the next poll starts afresh
            raise
        self._words.update({(table, start + i): w for i, w in enumerate(got)})
        self._todo.pop(0)
        if self._todo:
            return None
        return {name: self._value(name, item, self._words) for name, item in self.profile.status.items()}

    def _value(self, name: str, item: StatusMap, words: dict[tuple[str, int], int]) -> float:
        assert item.address is not None
        table = self.profile.status_table(item)
        raw = [words[(table, item.address + i)] for i in range(registers.size(item.type))]
        if item.bit is not None:
            number = float((raw[0] >> item.bit) & 1)
        else:
            number = registers.decode(raw, item.type, item.word_order)
        if name in self.enums:
            return self.enums[name].get(int(number), 0.0)  # an unmapped device value: unknown
        return number if item.bit is not None else item.bus_value(number)


def _mask(bits: list[int]) -> int:
    out = 0
    for bit in bits:
        out |= 1 << bit
    return out
