"""Helpers the tests import (``from helpers import gridbus, peer, ROOT``).

Kept out of conftest.py, which holds fixtures and hooks only: pytest loads
conftest files itself, and importing one by name breaks under
``--import-mode=importlib`` or as soon as a second conftest.py exists.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(__file__).with_name("peer.py")
# GRIDBUS_TEST_DOMAIN_BASE lets two suites run side by side on one machine without sharing ids.
_domains = itertools.count(int(os.environ.get("GRIDBUS_TEST_DOMAIN_BASE", (os.getpid() % 50) * 2 + 100)))


def next_domain() -> int:
    """A domain id no other test in this run uses (100..229)."""
    return 100 + (next(_domains) - 100) % 130


def gridbus(*args: str, env: dict, timeout: float = 30, check: bool = False) -> subprocess.CompletedProcess:
    """Run the gridbus CLI in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "gridbus.cli.main", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"gridbus {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def gridbus_each(
    *argvs: tuple[str, ...], env: dict, timeout: float = 30, jobs: int = 3
) -> list[subprocess.CompletedProcess]:
    """Run several independent gridbus CLI invocations, ``jobs`` at a time; results in ``argvs`` order.

    Each is still a process of its own; what overlaps is their interpreter start-ups and imports
    (about a second each on this 2-core machine), which one after another dominated the tests
    that try a list of bad inputs.
    """
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda argv: gridbus(*argv, env=env, timeout=timeout), argvs))


def peer(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start tests/peer.py (another process on the bus); it prints 'ready' when set up."""
    proc = subprocess.Popen(
        [sys.executable, str(PEER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise AssertionError(f"peer {args} did not start: {line} {proc.stderr.read()}")
    return proc


def wait_until(condition: Callable[[], object], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` s pass (bounded; no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())
