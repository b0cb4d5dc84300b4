"""Angle arithmetic on phasors, shared by the simulator and the controllers.

The plant folds its rotor angles and the synchronizer compares them with the
same rule; both import it from here so that a controller does not pull in the
simulator for one line of trigonometry.
"""

from __future__ import annotations

import math


def wrap(angle: float) -> float:
    """An angle in radians folded into [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def advance(angle: float, frequency: float, nominal: float, seconds: float) -> float:
    """The angle (rad, not folded) of a phasor at ``frequency`` Hz, ``seconds`` later, measured
    in the frame that rotates at ``nominal`` Hz (the frame every measured angle is given in)."""
    return angle + 2 * math.pi * (frequency - nominal) * seconds
