"""The names of the test signals and compliance tests, without numpy.

The ``gridbus`` parser offers them as choices; every CLI process builds the
whole parser, so importing :mod:`gridbus.pmu.signals` (numpy) just for these
names cost every command, ``gridbus publish`` included, about 0.15 s.
"""

from __future__ import annotations

SIGNALS = ("steady", "ramp", "step", "step-mag", "step-phase", "harmonics", "noise", "rocof")
TESTS = ("steady", "ramp", "step", "rocof")
