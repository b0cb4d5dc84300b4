"""A Modbus profile's register map as a whole: control words, the heartbeat, overlaps.

Loaded after the [commands] and [status] entries, so the checks can see the
whole map: each control word a command names exists and is used, no command
clears a bit the word must hold, the heartbeat has an address and an interval
shorter than the drive's own timeout, and no two values share a register
unless they are the same register read two ways (``f`` and ``speed`` from one
word) or different bits of one word.
"""

from __future__ import annotations

from typing import Any

from ..tomlfile import Locator
from . import registers
from .profile import Profile, Watchdog, WordMap
from .profile_checks import parse_key

Span = tuple[str, str, int, int, str]  # (section, name, first, last, what)


def parse_words(profile: Profile, doc: Any, loc: Locator) -> None:
    for name, spec in doc.items():
        if not isinstance(spec, dict):
            raise loc.error(f"[words] {name} must be a table like {{ address = 0x2000 }}", key=name, section="words")
        word = WordMap(name)
        for key, value in spec.items():
            try:
                parse_key(word, key, value)
            except ValueError as exc:
                raise loc.error(f"[words] {name}: {exc}", key=name, section="words") from None
        if word.address is None:
            raise loc.error(f"[words] {name}: a control word needs address = N or register = 4xxxx", section="words")
        profile.words[name] = word
    used = set()
    for name, command in profile.commands.items():
        if not command.word:
            continue
        used_word = profile.words.get(command.word)
        if used_word is None:
            raise loc.error(
                f"[commands] {name}: word {command.word!r} is not in [words]; "
                f"known: {', '.join(profile.words) or 'none'}",
                key=name,
                section="commands",
            )
        used.add(command.word)
        if set(command.clear) & set(used_word.hold):
            raise loc.error(
                f"[commands] {name}: clears bit(s) {sorted(set(command.clear) & set(used_word.hold))} that word "
                f"{command.word} holds set",
                key=name,
                section="commands",
            )
    for name in profile.words.keys() - used:
        raise loc.error(f"[words] {name}: no command sets or clears its bits", key=name, section="words")


def parse_watchdog(profile: Profile, doc: Any, loc: Locator) -> None:
    if doc is None:
        return
    watchdog = Watchdog()
    for key, value in doc.items():
        try:
            parse_key(watchdog, key, value)
        except ValueError as exc:
            raise loc.error(f"[watchdog] {exc}", key=key, section="watchdog") from None
    if watchdog.address is None:
        raise loc.error(
            "[watchdog] a heartbeat needs its register: address = N or register = 4xxxx", section="watchdog"
        )
    if not watchdog.interval:
        raise loc.error("[watchdog] a heartbeat needs interval = seconds between writes (> 0)", section="watchdog")
    if watchdog.timeout and watchdog.interval >= watchdog.timeout:
        raise loc.error(
            f"[watchdog] interval {watchdog.interval:g} s is not shorter than the drive's timeout "
            f"{watchdog.timeout:g} s: it would trip between heartbeats",
            key="interval",
            section="watchdog",
        )
    profile.watchdog = watchdog


def writes_and_reads(profile: Profile, loc: Locator) -> None:
    writes: list[Span] = []
    for name, c in profile.commands.items():
        if c.word:
            continue
        assert c.address is not None  # protocol_problem: a modbus command has one
        what = "fixed" if c.value is not None else "value"
        writes.append(("commands", name, c.address, c.address + registers.size(c.kind) - 1, what))
    for name, w in profile.words.items():
        assert w.address is not None
        writes.append(("words", name, w.address, w.address, "word"))
    if profile.watchdog is not None and profile.watchdog.address is not None:
        a = profile.watchdog.address
        writes.append(("watchdog", "address", a, a, "heartbeat"))
    _no_overlap(writes, loc, lambda x, y: x[4] == y[4] == "fixed" and x[2] == y[2])
    for table in registers.TABLES:
        reads: list[Span] = []
        for name, s in profile.status.items():
            if s.address is not None and profile.status_table(s) == table:
                what = f"bit {s.bit}" if s.bit is not None else s.type
                reads.append(("status", name, s.address, s.address + registers.size(s.type) - 1, what))
        _no_overlap(reads, loc, _same_register_two_ways)


def _same_register_two_ways(x: Span, y: Span) -> bool:
    if x[2:4] != y[2:4]:
        return False
    bits = [s[4] for s in (x, y) if s[4].startswith("bit ")]
    return len(bits) != 2 or bits[0] != bits[1]


def _no_overlap(spans: list[Span], loc: Locator, allowed: Any) -> None:
    for i, later in enumerate(spans):
        for earlier in spans[:i]:
            if later[2] <= earlier[3] and earlier[2] <= later[3] and not allowed(earlier, later):
                section, name = later[0], later[1]
                raise loc.error(
                    f"[{section}] {name}: register(s) {_span(later)} overlap {earlier[1]} "
                    f"([{earlier[0]}], {_span(earlier)}, {earlier[4]})",
                    key=name,
                    section=section,
                )


def _span(s: Span) -> str:
    return f"{s[2]:#06x}" if s[2] == s[3] else f"{s[2]:#06x}..{s[3]:#06x}"
