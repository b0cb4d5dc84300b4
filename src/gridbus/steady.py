"""Keep a soft real-time loop from stalling on the interpreter: one process-wide setting, nested safely.

Two things stall every thread of a Python process that moves data at speed:

* a full garbage collection of a big heap the loop did not make (a test process
  that loaded ANDES, numpy and the data model holds hundreds of thousands of
  objects): 50-150 ms, half a second on a loaded machine, with the GIL held;
  ``gc.freeze`` moves what exists at the start out of the collector's sight, so
  full collections look only at what the loop made since;
* the GIL's switch interval (5 ms by default): a thread that gives the GIL up
  for a blocking call (SQLite's ``executemany``, a socket) waits that long to
  get it back beside a busy pure-Python thread.

Both are process-wide, and a recorder may run inside an experiment, or two
recorders side by side, so :func:`steady_loop` counts its users: the heap is
frozen and the interval saved on the outermost entry, and restored on the
outermost exit.  The outermost exit thaws the whole heap: an application that
froze its own start-up heap with ``gc.freeze`` finds it thawed after a gridbus
loop.  (Telling an application's freeze apart from the interpreter's own is
not possible: CPython 3.12 keeps a few hundred objects in the permanent
generation after every collection, so ``gc.get_freeze_count()`` is not 0
there before anything was frozen.)
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_users = 0
_interval = 0.005  # the switch interval saved by the outermost entry


@contextmanager
def steady_loop(switch_interval: float | None = None) -> Iterator[None]:
    """Freeze the heap that exists now and, if given, shorten the GIL switch interval; undo on exit.

    ``switch_interval`` only ever shortens the interval in force (the shortest asked for wins
    while several users overlap); the outermost exit restores the interval it found.
    """
    _enter(switch_interval)
    try:
        yield
    finally:
        _exit()


def _enter(switch_interval: float | None) -> None:
    global _users, _interval
    with _lock:
        if _users == 0:
            _interval = sys.getswitchinterval()
            gc.collect()  # the garbage that exists now would otherwise stay for the whole run
            gc.freeze()
        _users += 1
        if switch_interval is not None and switch_interval < sys.getswitchinterval():
            sys.setswitchinterval(switch_interval)


def _exit() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            sys.setswitchinterval(_interval)
            gc.unfreeze()
