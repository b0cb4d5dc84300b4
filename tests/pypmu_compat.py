"""pypmu (PyPI ``synchrophasor`` 1.0.0a0), the independent C37.118.2 implementation the tests use.

pypmu 1.0.0a0 calls ``collections.Sequence``, an alias Python 3.10 removed
(synchrophasor/frame.py:235, in ``CommonFrame.set_time``): without it every decoder and
every frame with a non-zero FRACSEC raises.  The tests put the alias back
(``collections.Sequence = collections.abc.Sequence``), the only change made to pypmu's
world; its code runs as published.  Where pypmu cannot be imported the tests skip.
"""

from __future__ import annotations

import collections
import collections.abc
import sys
from types import ModuleType

import pytest


def pypmu_frame(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """pypmu's ``synchrophasor.frame``, with the ``collections.Sequence`` alias it needs."""
    try:
        import synchrophasor.frame as frame
    except Exception as exc:  # not installed, or broken on this Python
        pytest.skip(f"pypmu (synchrophasor, extra 'interop') not importable on Python {sys.version.split()[0]}: {exc}")
    monkeypatch.setattr(collections, "Sequence", collections.abc.Sequence, raising=False)
    return frame


# A pypmu Pmu server in its own process: prints {"port": N}, then queues one data frame per
# line of stdin ([stat, phasors, freq, dfreq, analog, digital, soc, frasec], pypmu's units).
PYPMU_SERVER = r"""
import collections, collections.abc, json, logging, os, sys
collections.Sequence = collections.abc.Sequence  # the alias pypmu 1.0.0a0 needs (frame.py:235)
from synchrophasor.frame import ConfigFrame2, DataFrame
from synchrophasor.pmu import Pmu
protocol = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # pypmu logs and prints to stdout: keep stdout for the lines to the test
spec = json.loads(sys.argv[1])
args, multi = spec["cfg"], spec["cfg"][2] > 1
for i in (10, 11, 12):  # PHUNIT, ANUNIT, DIGUNIT: pypmu wants tuples (JSON has lists)
    args[i] = [[tuple(u) for u in units] for units in args[i]] if multi else [tuple(u) for u in args[i]]
cfg = ConfigFrame2(*args)
Pmu.logger.setLevel(logging.WARNING)
# buffer_size 4: pypmu reads one recv() as at most one frame (pmu.py:277); gridbus sends its
# commands back to back, so read them in small bites.  set_timestamp False: send our times
pmu = Pmu(pmu_id=spec["cfg"][0], data_rate=50, port=0, ip="127.0.0.1", buffer_size=4, set_timestamp=False)
pmu.set_configuration(cfg)
pmu.set_header("pypmu test stream")
pmu.run()
print(json.dumps({"port": pmu.socket.getsockname()[1]}), file=protocol, flush=True)
# not sys.stdin: a child that multiprocessing forks closes sys.stdin, and would wait for ever for
# its lock if this thread held it in a read
for line in os.fdopen(os.dup(0)):  # one data frame per line: [stat, phasors, freq, dfreq, analog, digital, soc, frasec]
    stat, phasors, freq, dfreq, analog, digital, soc, frasec = json.loads(line)
    phasors = [[tuple(p) for p in ph] for ph in phasors] if multi else [tuple(p) for p in phasors]
    pmu.send(DataFrame(spec["cfg"][0], stat, phasors, freq, dfreq, analog, digital, cfg, soc, frasec))
    print(json.dumps({"queued": len(pmu.client_buffers)}), file=protocol, flush=True)
"""
