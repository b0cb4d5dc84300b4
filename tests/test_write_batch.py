"""Batching writers (``bus.writer(..., batch=True)``): samples wait for ``flush()``, none is lost or reordered.

The writer runs in another process, so that what arrives travelled through
Cyclone's network path (in one process DDS delivers locally, batching or not).
The child reports each phase on stdout and waits for the parent's word on stdin
before going on, so each check sees exactly what was sent before it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from gridbus import Bus, GridbusError

# The writing process: phases announced on stdout, each started by a line on stdin.
CHILD = textwrap.dedent(
    """
    import sys
    from gridbus import Bus, GridbusError

    domain, partition = int(sys.argv[1]), sys.argv[2]
    step = lambda: sys.stdin.readline()
    say = lambda word: print(word, flush=True)
    with Bus(domain, partition=partition) as bus:
        batched = bus.writer("BENCH_1", "Ping", batch=True)
        plain = bus.writer("BENCH_2", "Ping")
        Ping = batched.topic.cls
        ping = lambda n, who="BENCH_1": Ping(id=who, seq=n, payload=bytes(n % 7))
        batched.wait_for_readers(timeout=10)
        plain.wait_for_readers(timeout=10)
        say("ready")
        step()
        for n in range(10):  # batched, not flushed: nothing leaves yet
            batched.write(ping(n))
        plain.write(ping(0, "BENCH_2"))  # the default writer sends at once
        say("held")
        step()
        batched.flush()
        for burst in range(3):  # 3 bursts of 200 through write_many (which flushes)
            batched.write_many([ping(n) for n in range(10 + 200 * burst, 10 + 200 * (burst + 1))])
        try:  # a bad sample ends write_many with an error, but what came before it is sent
            batched.write_many([ping(610), ping(611), ping(0, "BENCH_2")])
        except GridbusError:
            say("refused")
        gone = bus.writer("BENCH_3", "Ping", batch=True)  # shares BENCH_1's DDS writer
        gone.write(ping(0, "BENCH_3"))
        gone.dispose()  # flushes: the sample and the news leave now
        say("bursts")
        step()
        for n in range(612, 712):  # a last burst left unflushed: closing the bus sends it
            batched.write(ping(n))
        say("closing")
    say("closed")
    """
)


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _collect(reader, seqs: dict[str, list[int]], until: int, timeout: float = 10.0) -> None:
    """Take into ``seqs`` (per object) until BENCH_1 has ``until`` samples or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while len(seqs["BENCH_1"]) < until and time.monotonic() < deadline:
        for s in reader.take(0.2):
            seqs[s.id].append(s.data.seq)


@pytest.mark.integration
def test_batched_samples_wait_for_flush_and_all_arrive_in_order(domain, partition):
    with Bus(domain, partition=partition) as bus:
        gone: list[str] = []
        reader = bus.reader("BENCH", "Ping", on_gone=lambda g: gone.append(f"{g.id} {g.reason}"))
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(domain), partition],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert _line(proc) == "ready"
            seqs: dict[str, list[int]] = {"BENCH_1": [], "BENCH_2": [], "BENCH_3": []}
            _go(proc)
            assert _line(proc) == "held"
            deadline = time.monotonic() + 10
            while not seqs["BENCH_2"] and time.monotonic() < deadline:  # the plain writer's sample came
                for s in reader.take(0.2):
                    seqs[s.id].append(s.data.seq)
            assert seqs["BENCH_2"] == [0]
            for s in reader.take(0.3):  # the batched ten are still in the writer's datagram
                seqs[s.id].append(s.data.seq)
            assert seqs["BENCH_1"] == []

            _go(proc)
            assert _line(proc) == "refused"
            assert _line(proc) == "bursts"
            _collect(reader, seqs, 612)
            assert seqs["BENCH_1"] == list(range(612))  # every sample, in order, the ten held ones first
            deadline = time.monotonic() + 10
            while not gone and time.monotonic() < deadline:
                for s in reader.take(0.2):
                    seqs[s.id].append(s.data.seq)
            assert seqs["BENCH_3"] == [0] and gone == ["BENCH_3 disposed"]  # dispose flushed

            _go(proc)
            assert _line(proc) == "closing"
            assert _line(proc) == "closed"
            _collect(reader, seqs, 712)
            assert seqs["BENCH_1"] == list(range(712))  # the unflushed last burst left on close
            assert seqs["BENCH_2"] == [0]  # the refused sample was not written
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_batching_is_per_writer_and_flush_is_safe_everywhere(domain, partition):
    with Bus(domain, partition=partition) as bus:
        plain, batched = bus.writer("G_1"), bus.writer("G_1", batch=True)
        assert (plain.batch, batched.batch) == (False, True)
        assert plain._dds is not batched._dds  # one DDS writer each: the default one never batches
        assert bus.writer("G_2", batch=True)._dds is batched._dds  # objects of a topic share it
        plain.flush()  # a no-op
        batched.flush()  # nothing held: fine
        assert batched.write_many([]) == 0
        reader = bus.reader("G_1")
        assert batched.write_many(batched.build(f=50.0 + n) for n in range(3)) == 3
        got = reader.take(5.0)
        assert [s.data.f for s in got] == [50.0, 51.0, 52.0]
        with pytest.raises(GridbusError, match="G_1: expected a .* sample, got object"):
            batched.write_many([object()])  # type: ignore[list-item]
