"""Shared fixtures: every test gets its own DDS domain id and partition.

Tests never inherit a user's CYCLONEDDS_URI: gridbus then uses its packaged
loopback-only configuration, so no traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import uuid

import pytest
from helpers import next_domain

os.environ.pop("CYCLONEDDS_URI", None)


@pytest.fixture
def domain() -> int:
    """A domain id no other test in this run uses (100..229)."""
    return next_domain()


@pytest.fixture
def partition() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def env(domain, tmp_path):
    """Environment for CLI subprocesses: the test's domain, a private cache."""
    e = dict(os.environ)
    e["GRIDBUS_DOMAIN"] = str(domain)
    e.pop("CYCLONEDDS_URI", None)
    return e
