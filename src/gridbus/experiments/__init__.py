"""The DDS paper's experiments (section 7) and a synchrophasor case, run end to end on the virtual testbed.

``gridbus experiment sync|load-sharing|reconfig|synchrophasor|all`` — see :mod:`.cases` for
what each does and :mod:`.report` for what it writes.
"""

from .cases import CASES
from .runner import run_experiment

__all__ = ["CASES", "run_experiment"]
