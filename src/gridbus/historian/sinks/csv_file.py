"""The CSV sink: an append-only file, marks in a ``<file>.marks`` sidecar so a cut-short batch is cut off."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import TextIO, TypedDict

from ...errors import SinkRefused, SinkUnavailable
from .base import COLUMNS, Key, Mark, Row, create_private, file_problem, unwritable


class CsvMarks(TypedDict):
    """The ``<file>.marks`` sidecar: the file size at the last mark, and each journal's mark."""

    size: int | None
    journals: dict[str, int]


class CsvSink:
    """Append-only CSV; marks live in ``<file>.marks`` (JSON: file size and journal marks)."""

    def __init__(self, path: str) -> None:
        self.url = path
        self.handle: TextIO | None = None
        self.marks_path = Path(path + ".marks")

    def check(self) -> None:
        path = Path(self.url)
        problem = file_problem(path) or unwritable(path, "it")
        if problem:
            raise SinkRefused(f"{self.url}: {problem}")
        if path.exists() and path.stat().st_size:
            try:
                with open(path, newline="", encoding="utf-8") as handle:
                    header = next(csv.reader(handle), None)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise SinkRefused(f"{self.url}: {getattr(exc, 'strerror', None) or exc}") from None
            if header is None or tuple(header) != COLUMNS:
                raise SinkRefused(
                    f"{self.url}:1: another layout ({','.join(header or [])}); gridbus writes {','.join(COLUMNS)}"
                )
        try:
            self.connect()
        except SinkUnavailable as exc:
            raise SinkRefused(str(exc)) from None

    def connect(self) -> None:
        self._connect()

    def _connect(self) -> TextIO:
        path = Path(self.url)
        try:
            create_private(path)
            new = path.stat().st_size == 0
            self.handle = handle = open(path, "a", newline="", encoding="utf-8")
            if new:
                csv.writer(handle).writerow(COLUMNS)
                handle.flush()
        except OSError as exc:
            self.handle = None
            raise SinkUnavailable(f"{self.url}: {exc.strerror}") from None
        return handle

    def _marks(self) -> CsvMarks:
        try:
            marks: CsvMarks = json.loads(self.marks_path.read_text())
            return marks
        except (OSError, ValueError):
            return {"size": None, "journals": {}}

    def forwarded(self, journal: str) -> int:
        """The journal's mark; a tail written after the last mark (a crash mid-batch) is cut off."""
        marks = self._marks()
        size = marks.get("size")
        if size is not None and Path(self.url).exists() and Path(self.url).stat().st_size > size:
            self.close()
            os.truncate(self.url, size)
        return int(marks.get("journals", {}).get(journal, 0))

    def existing(self, keys: list[Key]) -> set[Key]:
        """Which of these samples the file already holds (a scan: CSV has no index)."""
        if not keys:
            return set()
        wanted = set(keys)
        low, high = min(k[2] for k in keys), max(k[2] for k in keys)
        found: set[Key] = set()
        try:
            with open(self.url, newline="", encoding="utf-8", errors="replace") as handle:
                for record in csv.reader(handle):
                    if len(record) == len(COLUMNS):
                        try:
                            key = (record[0], record[1], float(record[2]))
                        except ValueError:
                            continue
                        if low <= key[2] <= high and key in wanted:
                            found.add(key)
        except (OSError, csv.Error) as exc:
            raise SinkUnavailable(f"{self.url}: {getattr(exc, 'strerror', None) or exc}") from None
        return found

    def write(self, rows: list[Row], mark: Mark | None = None) -> None:
        handle = self.handle if self.handle is not None else self._connect()
        created = time.time()
        try:
            writer = csv.writer(handle)
            for o, t, s, r, f in rows:
                writer.writerow((o, t, repr(s), repr(r), repr(created), f))
            handle.flush()
            if mark is not None:
                marks = self._marks()
                marks["size"] = handle.tell()
                marks.setdefault("journals", {})[mark[0]] = mark[1]
                tmp = self.marks_path.with_suffix(".tmp")
                create_private(tmp)
                tmp.write_text(json.dumps(marks))
                os.replace(tmp, self.marks_path)
        except OSError as exc:
            self.close()
            raise SinkUnavailable(f"{self.url}: {exc.strerror}") from None

    def close(self) -> None:
        if self.handle is not None:
            try:
                self.handle.close()
            except OSError:
                pass
            self.handle = None
