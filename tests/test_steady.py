"""gridbus.steady: the process-wide GC freeze and switch interval, nested and overlapping safely.

A recorder may run inside an experiment, or two recorders in two threads; the
first to leave must not thaw the other's heap or put the interval back under it.
"""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from gridbus.steady import steady_loop


@pytest.fixture(autouse=True)
def _interpreter_as_found():
    # (not the freeze count: CPython 3.12 keeps a few hundred objects in the permanent generation
    # after every collection, frozen or not)
    interval = sys.getswitchinterval()
    yield
    assert sys.getswitchinterval() == interval


def test_nested_users_keep_the_heap_frozen_until_the_outermost_leaves():
    interval = sys.getswitchinterval()
    with steady_loop():
        frozen = gc.get_freeze_count()
        assert frozen > 0 and sys.getswitchinterval() == interval
        with steady_loop(0.001):
            assert sys.getswitchinterval() == 0.001
        assert gc.get_freeze_count() >= frozen  # the inner exit thawed nothing
        assert sys.getswitchinterval() == 0.001  # the interval is the outermost's to restore
    assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == interval


def test_overlapping_users_in_two_threads_restore_the_interval_found_first():
    interval = sys.getswitchinterval()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, float] = {}

    def first() -> None:
        with steady_loop(0.002):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with steady_loop(0.001):
            second_in.set()
            first_out.wait(10)
            seen["after first left"] = sys.getswitchinterval()
            seen["frozen"] = gc.get_freeze_count()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen["after first left"] == 0.001 and seen["frozen"] > 0
    assert sys.getswitchinterval() == interval and gc.get_freeze_count() == 0


def test_an_exception_inside_still_restores_everything():
    interval = sys.getswitchinterval()
    with pytest.raises(RuntimeError), steady_loop(0.001):
        raise RuntimeError("the loop failed")
    assert gc.get_freeze_count() == 0 and sys.getswitchinterval() == interval
