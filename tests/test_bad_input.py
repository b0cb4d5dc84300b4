"""Every bad input to the ``gridbus`` CLI is a clear error (issue 10, item 7).

The cases are the table in ``bad_input_table.py`` (NaN, inf, 0 and negative
numbers, missing files, directories, FIFOs, non-UTF-8 text, bad QoS numbers,
IDL names that are Python keywords, malformed field assignments...).  Each
runs as a real ``gridbus`` process on this test's domain and partition and
must end with ``gridbus: error: ...`` and exit status 2: no traceback, no
hang, no death by signal, no silent acceptance.

The cases run two at a time in the background from the first test on, each in
a process forked from a server that imported gridbus once (its own session,
environment and exit status; see ``bad_input_table.serve``); each test waits
for its own case, so the file takes well under a minute.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import threading
import uuid

import helpers
import pytest
from bad_input_table import CASES, Case, make_fixtures, run_broken_pipe, start_server

OWN_CASES = CASES  # every case, whichever part of gridbus reads the input
CASE_TIMEOUT = 15.0  # a case still running after this is a hang
JOBS = 2


def _case_id(case: Case) -> str:
    env = "".join(f"{k}={v} " for k, v in case.env)
    return (env + case.id)[:80]


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GRIDBUS_DOMAIN"] = str(helpers.next_domain())
    env.pop("CYCLONEDDS_URI", None)
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cli_env):
    """Start every case in the background; yields (future result by case, fixture paths)."""
    fixtures = make_fixtures(tmp_path_factory.mktemp("bad-input"))
    partition = f"t-{uuid.uuid4().hex[:10]}"
    futures = {case: concurrent.futures.Future() for case in OWN_CASES}
    server, finished = start_server(OWN_CASES, fixtures, cli_env, partition, CASE_TIMEOUT, JOBS)

    def collect() -> None:
        try:
            for result in finished:
                futures[result.case].set_result(result)
        finally:
            for future in futures.values():
                if not future.done():
                    future.set_exception(RuntimeError("the fork server ended before this case ran"))

    thread = threading.Thread(target=collect, name="bad-input-results", daemon=True)
    thread.start()
    yield futures, fixtures
    if server.poll() is None:
        server.kill()
    thread.join(timeout=10)


def test_the_table_is_large_and_has_no_duplicates():
    assert len(OWN_CASES) >= 100
    assert len(set(CASES)) == len(CASES)


@pytest.mark.integration
@pytest.mark.parametrize("case", OWN_CASES, ids=_case_id)
def test_bad_input_is_a_clean_error(runs, case):
    futures, fixtures = runs
    result = futures[case].result(timeout=CASE_TIMEOUT * (JOBS + 1) + 30)
    command = "gridbus " + " ".join(result.argv)
    assert result.returncode is not None, f"hang: {command}"
    assert "Traceback" not in result.stderr, f"{command}\n{result.stderr}"
    assert result.returncode >= 0, f"killed by signal {-result.returncode}: {command}"
    assert result.returncode == 2, f"exit {result.returncode} (0 = accepted): {command}\n{result.stderr}"
    assert "gridbus: error:" in result.stderr, result.stderr
    if case.group in ("file", "qos", "idl"):
        # the message names the file (or profile) that was wrong
        named = [
            a
            for a in result.argv[1:]
            if len(a) > 2
            and not a.startswith("-")
            and a not in ("show", "generate", "G_1", "HP_1", "f=60", "vfd-modbus", "sync")
        ]
        assert any(a in result.stderr for a in named), f"{command}\n{result.stderr}"
    if case.group == "qos" or "keyword" in case.id:
        assert re.search(r"\.(xml|idl):\d+: ", result.stderr), result.stderr


@pytest.mark.integration
def test_broken_pipe_exits_quietly(cli_env):
    """``gridbus types --json | head -1``: no traceback, nothing on stderr, no hang."""
    result = run_broken_pipe(cli_env, timeout=CASE_TIMEOUT)
    assert result.returncode is not None, "hang"
    assert result.returncode >= 0 and result.stderr == "", result.stderr


def test_python_keywords_are_refused_but_other_builtin_names_pass(tmp_path):
    from gridbus.errors import IdlError
    from gridbus.idl import check_names

    check_names(
        'module m { struct S { double match; double type; double print; // lambda\n  @unit("class") double self; }; };',
        "ok.idl",
    )
    with pytest.raises(IdlError, match=r"bad\.idl:2: the name 'async' is a Python keyword"):
        check_names("module m { struct S {\n double async; }; };", "bad.idl")
