"""Modbus register values and addresses: how a number becomes 16-bit words, and back.

A profile says each value's type (``int16``, ``uint16``, ``int32``, ``uint32``,
``float32``) and, for the 32-bit ones, the word order (``big``: the high word
first, at the lower address; ``little``: the low word first).  Addresses are
either the 0-based PDU address sent on the wire (``address = 101``) or a
Modicon register number that also names the table (``register = 40102``:
holding register 102, PDU address 101; ``30001``: the first input register).
The client (:mod:`gridbus.translators.modbus`) and the simulated device
(:mod:`gridbus.translators.modbus_device`) share this code, so both ends
agree on every layout a profile can describe.
"""

from __future__ import annotations

import math
import struct

# type -> (registers, struct format of the big-endian bytes)
TYPES = {"int16": (1, "h"), "uint16": (1, "H"), "int32": (2, "i"), "uint32": (2, "I"), "float32": (2, "f")}
WORD_ORDERS = ("big", "little")
TABLES = ("holding", "input")
FLOAT32_MAX = 3.4028234663852886e38
# Modicon register numbers: (first, last, table, first number's PDU address 0)
REGISTER_NUMBERS = (
    (40001, 49999, "holding"),
    (30001, 39999, "input"),
    (400001, 465536, "holding"),
    (300001, 365536, "input"),
)


class ValueDoesNotFit(ValueError):
    """A value that its register type cannot carry (never wrapped or clipped)."""


def size(kind: str) -> int:
    """Registers a value of type ``kind`` takes."""
    return TYPES[kind][0]


def register_number(number: int) -> tuple[str, int]:
    """(table, PDU address) of a Modicon register number; ValueError for any other number."""
    for first, last, table in REGISTER_NUMBERS:
        if first <= number <= last:
            return table, number - first
    raise ValueError(
        f"{number} is not a register number (holding 40001-49999 or 400001-465536, "
        f"input 30001-39999 or 300001-365536); write address = {number} for a 0-based PDU address"
    )


def limits(kind: str) -> tuple[float, float]:
    """The smallest and largest value a register type carries."""
    count, fmt = TYPES[kind]
    if fmt == "f":
        return -FLOAT32_MAX, FLOAT32_MAX
    bits = 16 * count
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if fmt.islower() else (0, 2**bits - 1)


def encode(value: float, kind: str, word_order: str = "big") -> list[int]:
    """The words that carry ``value`` (already in device units) as type ``kind``."""
    count, fmt = TYPES[kind]
    low, high = limits(kind)
    if not math.isfinite(value):
        raise ValueDoesNotFit(f"{value!r} is not finite")
    number: float | int = float(value) if fmt == "f" else int(round(value))
    if not low <= number <= high:
        raise ValueDoesNotFit(f"{number:g} does not fit the {kind} register ({low:g}..{high:g})")
    data = struct.pack(">" + fmt, number)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * count, 2)]
    return words[::-1] if word_order == "little" else words


def decode(words: list[int], kind: str, word_order: str = "big") -> float:
    """The value ``words`` carry as type ``kind`` (device units)."""
    _, fmt = TYPES[kind]
    ordered = words[::-1] if word_order == "little" else words
    data = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in ordered)
    return float(struct.unpack(">" + fmt, data)[0])
