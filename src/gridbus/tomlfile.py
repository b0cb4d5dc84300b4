"""TOML data files (system, DAQ agent, device profiles) with ``file:line`` errors.

:mod:`tomllib` reports syntax errors with their line but forgets where values
came from; :class:`Locator` finds them again in the text (an object's
``id = "..."`` line, a key under it, or a ``[section]``), so a check made after
parsing can still say ``file:line: reason``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import GridbusError
from .files import read_text


class Locator:
    """Finds the line of an object (by its ``id = "..."``), a key or a section in a file's text."""

    def __init__(self, path: str, text: str, error: type[GridbusError] = GridbusError) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.error_class = error

    def line_of(self, object_id: str | None = None, key: str | None = None, section: str | None = None) -> int:
        start = 0
        if object_id is not None:
            pattern = re.compile(r'\bid\s*=\s*"' + re.escape(object_id) + '"')
            start = next((n for n, line in enumerate(self.lines) if pattern.search(line)), 0)
        elif section is not None:
            pattern = re.compile(r"^\s*\[+\s*" + re.escape(section) + r"\s*\]+")
            start = next((n for n, line in enumerate(self.lines) if pattern.search(line)), 0)
        if key is not None:
            pattern = re.compile(r'(^|[{,\s])"?' + re.escape(key) + r'"?\s*=')
            for n in range(start, len(self.lines)):
                if n > start and object_id is not None and re.search(r"\bid\s*=", self.lines[n]):
                    break
                if pattern.search(self.lines[n]):
                    return n + 1
        return start + 1

    def error(
        self, reason: str, object_id: str | None = None, key: str | None = None, section: str | None = None
    ) -> GridbusError:
        return self.error_class(f"{self.path}:{self.line_of(object_id, key, section)}: {reason}")


def read_toml(path: str | Path, error: type[GridbusError], what: str) -> tuple[dict[str, Any], Locator]:
    """Parse ``path``; unreadable, non-UTF-8 or malformed files raise ``error`` with ``file:line``."""
    path = Path(path)
    text = read_text(path, error, what)  # stat first: a FIFO or directory must not hang
    if not text.strip():
        raise error(f"{path}:1: the {what} is empty")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise error(f"{path}:{line.group(1) if line else 1}: {exc}") from None
    return doc, Locator(str(path), text, error)


def top_table(doc: dict[str, Any], name: str, loc: Locator) -> dict[str, Any]:
    """The top-level table ``name`` of ``doc`` ({} when absent); any other value is an error at its line."""
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise loc.error(f"{name} must be a table ([{name}])", key=name)
    return value
