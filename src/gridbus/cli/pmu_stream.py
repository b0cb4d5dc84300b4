"""Subcommands of ``gridbus pmu`` (see :mod:`gridbus.cli.pmu`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .common import Subcommands


def add_commands(pmus: Subcommands) -> None:
    """Add this module's subcommands to ``gridbus pmu``."""
