"""Each example runs briefly, so none can rot."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import ROOT

pytestmark = pytest.mark.integration  # joins DDS or starts processes

EXAMPLES = ROOT / "examples"


def run(name: str, *args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_controller_closes_the_breaker_of_the_measurement_agent(env):
    agent = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "measurement_agent.py"), "--objects", "3", "--rate", "20", "--seconds", "6"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    controller = run("controller.py", "--seconds", "4", env=env)
    agent_out, agent_err = agent.communicate(timeout=30)
    assert controller.returncode == 0, controller.stderr
    assert "closing CB_1" in controller.stdout and "CB_1 is CLOSED" in controller.stdout
    assert "'G_1': 60.0" in controller.stdout and "'G_3': 60.0" in controller.stdout
    assert agent.returncode == 0, agent_err
    assert "CB_1 command: CLOSED" in agent_out


def test_latency_benchmark_script(env):
    proc = run("latency_benchmark.py", "--count", "200", "--rate", "200", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "200/200 answered" in proc.stdout and "p90" in proc.stdout
