"""Checks of a device profile's entries and register map, made when it is loaded.

Everything a profile says must mean something to the translator: a key the
protocol cannot express (``address`` in an ASCII profile, a 32-bit value
written with function 6), a command that carries nothing, control-word bits
set and cleared at once, two values on the same registers, a heartbeat without
an interval.  Each problem is a sentence the loader reports as
``file:line: reason``; nothing is silently ignored.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..tomlfile import Locator
from . import registers

if TYPE_CHECKING:
    from .profile import CommandMap, Profile, StatusMap

MODBUS_KEYS = ("address", "table", "value", "type", "word_order", "word", "set", "clear", "pulse", "bit", "map")
TEXT_KEYS = ("send", "query")
_BITS = "a 16-bit word has bits 0..15"


def parse_key(target: Any, key: str, value: Any) -> None:
    """Check one key of a [commands]/[status]/[words]/[watchdog] entry and set it on ``target``;
    ValueError says what is wrong.  ``register = 4xxxx/3xxxx`` sets the address and table."""
    if key == "register":
        if not _is_int(value):
            raise ValueError(f"register must be an integer register number, got {value!r}")
        table, address = registers.register_number(value)
        if hasattr(target, "table"):
            target.table = table
        elif table != "holding":
            raise ValueError(f"register {value} is an input register, which cannot be written")
        target.address = address
        return
    if not hasattr(target, key) or key == "name":
        known = ["register", *(k for k in vars(target) if k != "name")]
        raise ValueError(f"unknown key {key!r}; known: {', '.join(known)}")
    target_value = _checked(key, value)
    if key == "table" and target_value == "input" and not hasattr(target, "bit"):
        raise ValueError("an input register cannot be written")
    setattr(target, key, target_value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(key: str, value: Any) -> Any:  # noqa: PLR0911 - one branch per kind of key
    if key == "send":
        value = [value] if isinstance(value, str) else value
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise ValueError("send must be a string or a list of strings")
        return value
    if key in ("query", "word"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key} must be a non-empty string")
        return value
    if key in ("address", "value", "bit", "initial"):
        high = 15 if key == "bit" else registers.limits("uint16")[1]
        if not _is_int(value) or not 0 <= value <= high:
            raise ValueError(
                f"{key} must be an integer 0..{high} ({_BITS if key == 'bit' else 'Modbus is 16-bit'}), got {value!r}"
            )
        return value
    if key in ("set", "clear", "hold"):
        if not (isinstance(value, list) and all(_is_int(b) and 0 <= b <= 15 for b in value)):
            raise ValueError(f"{key} must be a list of bit numbers 0..15 ({_BITS}), got {value!r}")
        return value
    choices = {"type": tuple(registers.TYPES), "word_order": registers.WORD_ORDERS, "table": registers.TABLES}
    if key in choices:
        if value not in choices[key]:
            raise ValueError(f"{key} {value!r} is not known; known: {', '.join(choices[key])}")
        return value
    if key == "map":
        return _enum_map(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number{' other than 0' if key == 'scale' else ''}, got {value!r}")
    if (key == "scale" and value == 0) or (key in ("pulse", "interval", "timeout") and value < 0):
        raise ValueError(f"{key} must be a finite number {'other than 0' if key == 'scale' else '>= 0'}, got {value!r}")
    return value


def _enum_map(value: Any) -> dict[str, str]:
    if not (isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values())):
        raise ValueError('map must be a table of device values to names, like { 0 = "FORWARD", 1 = "REVERSE" }')
    for raw in value:
        if not raw.isdigit():
            raise ValueError(f"map key {raw!r} is not a device value (a non-negative integer)")
    return dict(value)


def protocol_problem(target: CommandMap | StatusMap, keys: set[str], profile: Profile) -> str:
    """What ``target`` (given ``keys``) says that its profile's protocol cannot express, or ''."""
    if profile.protocol != "modbus-rtu":
        extra = sorted(keys & {*MODBUS_KEYS, "register"} - {"map"})
        if extra:
            return f"{', '.join(extra)}: modbus-rtu keys, which a {profile.protocol} profile cannot use"
        if not (getattr(target, "send", None) or getattr(target, "query", "")):
            return f'a {profile.protocol} profile needs {"send" if hasattr(target, "send") else "query"} = "..."'
        return ""
    extra = sorted(keys & set(TEXT_KEYS))
    if extra:
        return f"{', '.join(extra)}: text-protocol keys; a modbus-rtu profile maps it to a register"
    if target.address is None and not getattr(target, "word", ""):
        return "a modbus-rtu profile maps it to a register (address = N or register = 4xxxx)"
    kind = target.kind if hasattr(target, "kind") else target.type
    if hasattr(target, "send") and registers.size(kind) == 2 and profile.write_function == 6:
        return "a 32-bit value takes two registers, which write_function = 6 cannot write: use 16"
    return ""


def command_problem(command: CommandMap, is_action: bool, protocol: str) -> str:
    """What is wrong with a command's shape (an action carries no number, a set-point one), or ''."""
    if protocol != "modbus-rtu":
        return ""
    bits = bool(command.set or command.clear)
    if command.word and not bits:
        return "a control-word command sets or clears bits: give set = [..] and/or clear = [..]"
    if bits and not command.word:
        return 'set/clear name bits of a control word: give word = "..." (a [words] entry)'
    if bits and (command.address is not None or command.value is not None or command.type):
        return "a control-word command takes its address from [words]: drop address/value/type"
    if set(command.set) & set(command.clear):
        return f"bits {sorted(set(command.set) & set(command.clear))} are both set and cleared"
    if command.pulse and not command.set:
        return "pulse clears the set bits again after a time: it needs set = [..]"
    if is_action and not bits and command.value is None:
        return "an action carries no number: give value = N (a whole word) or word + set/clear (bits)"
    if not is_action and (bits or command.value is not None):
        return "a set-point carries a number: value, word, set and clear are for actions"
    if command.value is not None and registers.size(command.kind) != 1:
        return "a fixed value is one 16-bit word: type must be int16 or uint16"
    return ""


def status_problem(item: StatusMap, members: list[str], is_enum: bool) -> str:
    if item.bit is not None and registers.size(item.type) != 1:
        return f"bit picks a bit of one 16-bit word, not of a {item.type}"
    if is_enum and item.address is not None and not item.map:
        return f'an enumerated value needs map = {{ 0 = "{members[1]}", ... }} (device value -> name)'
    if item.map and not is_enum:
        return "map is for enumerated State fields (direction)"
    unknown = [v for v in item.map.values() if v not in members]
    if unknown:
        return f"map names {', '.join(unknown)}, not among {', '.join(members)}"
    return ""


def check_layout(profile: Profile, doc: dict[str, Any], loc: Locator) -> None:
    """[words], [watchdog] and the register map as a whole: nothing written twice differently,
    no two values on the same registers, every word a command names exists."""
    from .layout import parse_watchdog, parse_words, writes_and_reads

    if profile.protocol != "modbus-rtu":
        for section in ("words", "watchdog"):
            if section in doc:
                raise loc.error(f"[{section}] is for modbus-rtu profiles", section=section)
        return
    parse_words(profile, doc.get("words", {}), loc)
    parse_watchdog(profile, doc.get("watchdog"), loc)
    writes_and_reads(profile, loc)
