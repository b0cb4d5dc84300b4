"""The gridbus command line, run as a user would, across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from helpers import gridbus, gridbus_each


@pytest.mark.integration
def test_types_lists_objects_fields_and_units(env):
    out = gridbus("types", "--json", env=env, check=True).stdout.splitlines()
    types = {t["prefix"]: t for t in map(json.loads, out)}
    assert {"G", "CB", "L", "Bus", "TL", "MG", "SM", "PV_EM", "W_EM", "ES", "PMU"} <= set(types)
    fields = {f["name"]: f for t in types["G"]["topics"] if t["role"] == "Measurement" for f in t["fields"]}
    assert fields["f"]["unit"] == "Hz" and fields["P"]["unit"] == "W"
    table = gridbus("types", "CB", env=env, check=True).stdout
    assert "Breaker_Command" in table and "OPEN" in table


@pytest.mark.integration
def test_publish_and_subscribe_json(env):
    sub = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "subscribe", "G_1", "--count", "3", "--json", "--timeout", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    gridbus("publish", "G_1", "f=59.98", "Va=119.5", "--count", "5", "--rate", "20", "--wait", "5", env=env, check=True)
    out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert set(first) == {"id", "topic", "data", "source_time", "reception_time"}
    assert first["id"] == "G_1" and first["topic"] == "Generator_Measurement"
    assert first["data"]["f"] == 59.98 and first["data"]["Va"] == 119.5
    assert first["source_time"] <= first["reception_time"]


@pytest.mark.integration
def test_publish_a_command_reaches_a_late_subscriber_within_its_lifespan(env):
    gridbus("publish", "CB_2", "status=CLOSED", "--wait", "0", env=env, check=True)
    # the publisher has exited: transient-local data lives with its writer, so nothing is replayed
    got = gridbus("subscribe", "CB_2", "--role", "Command", "--count", "1", "--timeout", "1", env=env)
    assert got.returncode == 1 and "received 0 of 1" in got.stderr


@pytest.mark.integration
def test_qos_show_json(env):
    out = gridbus("qos", "show", "G_1", "--json", env=env, check=True).stdout.splitlines()
    rows = {r["topic"]: r for r in map(json.loads, out)}
    keys = {
        "reliability",
        "durability",
        "history",
        "deadline",
        "lifespan",
        "latency_budget",
        "destination_order",
        "transport_priority",
        "ownership",
    }
    assert set(rows) == {"Generator_Measurement", "Generator_State", "Generator_Command"}
    for row in rows.values():
        assert keys <= set(row)
    assert rows["Generator_State"]["durability"] == "transient_local"
    assert rows["Generator_Command"]["lifespan"] == 2.0
    assert rows["Generator_Measurement"]["history"] == {"kind": "keep_last", "depth": 1}
    assert rows["Generator_State"]["deadline"] is None


@pytest.mark.integration
def test_ls_shows_participants_and_topics(env):
    pub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridbus.cli.main",
            "publish",
            "MG_1",
            "P=100",
            "--count",
            "60",
            "--rate",
            "20",
            "--wait",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = gridbus("ls", "--duration", "2.5", "--json", env=env, check=True).stdout
    pub.wait(timeout=20)
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["kind"] == "participant" and e["event"] == "join" for e in events)
    assert any(
        e.get("topic") == "Microgrid_Measurement" and e.get("type") == "grid::Microgrid::Measurement" for e in events
    )


@pytest.mark.integration
def test_domain_flag_and_environment(env):
    out = gridbus("qos", "show", "CB_1", "--json", "--domain", "7", env=env, check=True)
    assert out.returncode == 0
    bad = dict(env, GRIDBUS_DOMAIN="seven")
    err = gridbus("subscribe", "G_1", "--timeout", "0.1", env=bad)
    assert err.returncode == 2 and "GRIDBUS_DOMAIN='seven'" in err.stderr


@pytest.mark.integration
def test_bad_input_exits_non_zero_with_a_clear_message(env, tmp_path):
    cases = [
        (("publish", "Z_1", "f=1"), "unknown object id 'Z_1'"),
        (("publish", "G_1", "freq=60"), "has no field freq"),
        (("publish", "G_1", "f=abc"), "G_1.f (Generator_Measurement): expected a number"),
        (("publish", "G_1", "f=1e6"), "above the maximum 400 Hz"),
        (("publish", "G_1", "f"), "expected field=value"),
        (("subscribe", "NOPE_*", "--timeout", "0.1"), "matches no object type"),
        (("qos", "show", "X_1"), "unknown object id 'X_1'"),
        (("types", "--idl", str(tmp_path / "missing.idl")), "missing.idl"),
    ]
    broken = tmp_path / "qos.xml"
    broken.write_text("<dds>\n<qos_library name='x'>\n</dds>\n")
    cases.append((("qos", "show", "G_1", "--qos", str(broken)), f"{broken}:3"))
    for (args, message), proc in zip(cases, gridbus_each(*(args for args, _ in cases), env=env), strict=True):
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


@pytest.mark.integration
def test_demo_runs(env):
    proc = gridbus("demo", "--seconds", "3", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "CB_1 state is now CLOSED" in proc.stdout
    assert "G_2: f=" in proc.stdout and "late joiner got the breaker state: CB_1 OPEN" in proc.stdout


@pytest.mark.integration
def test_log_records_go_to_stderr_as_plain_text_or_json_lines(env):
    """Warnings by default, as bare text; ``--log-format json`` (before or after the command)
    makes each one a JSON object; stdout keeps the command's own JSON lines."""
    args = ("translate", "vfd-modbus", "--port", "/nonexistent/tty", "--duration", "0.5")
    plain = gridbus(*args, env=env, check=True)
    assert "translate: G_1 on /nonexistent/tty: port: cannot open the port" in plain.stderr
    assert not plain.stderr.lstrip().startswith("{")
    for options in (("--log-format", "json", *args), (*args, "-v", "--log-format", "json")):
        proc = gridbus(*options, env=env, check=True)
        records = [json.loads(line) for line in proc.stderr.splitlines()]
        assert records and all(set(r) == {"time", "level", "logger", "message"} for r in records)
        fault = [
            r for r in records if r["logger"] == "gridbus.translators.translator" and "/nonexistent" in r["message"]
        ]
        assert fault and fault[0]["level"] == "WARNING"
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        assert list(lines[0]) == ["ready"] and list(lines[-1]) == ["done"]


def test_a_command_handler_runs_in_process(capsys):
    """``main()`` and the handlers it calls are plain functions: no subprocess needed."""
    import logging

    from gridbus.cli.main import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["types", "CB", "--json"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [r["prefix"] for r in rows] == ["CB"]
        assert main(["types", " "]) == 2
        assert "TYPE is empty" in capsys.readouterr().err
    finally:  # main() installed the CLI's log handler: take it away
        root.handlers[:] = handlers
        root.setLevel(level)


BENCH_ALIASES = {  # gridbus bench X -> the command registered beside its concept
    "pmu": ["pmu", "bench"],
    "vpmu": ["pmu", "bench-sim"],
    "cosim": ["testbed-bench"],
    "net": ["net", "bench"],
    "bridge": ["bridge", "bench"],
}


def _subparser(parser, path):
    import argparse

    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _options(parser):
    """Each option's flags, destination, default, type (by name: factories make new closures) and help."""
    kind = lambda t: getattr(t, "__qualname__", repr(t))  # noqa: E731
    return sorted(repr((a.option_strings, a.dest, a.default, kind(a.type), a.help)) for a in parser._actions)


@pytest.mark.parametrize("alias", sorted(BENCH_ALIASES))
def test_bench_alias_has_help_and_its_commands_options_and_handler(alias, capsys):
    from gridbus.cli.main import build_parser, main

    with pytest.raises(SystemExit) as stop:
        main(["bench", alias, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: gridbus bench {alias} ")
    parser = build_parser()
    original = BENCH_ALIASES[alias]
    assert _options(_subparser(parser, ["bench", alias])) == _options(_subparser(parser, original))
    by_alias, by_original = parser.parse_args(["bench", alias]), parser.parse_args(original)
    assert by_alias.handler is getattr(by_original, "bridge_handler", by_original.handler)
    for name, value in vars(by_alias).items():  # the same defaults reach the handler
        if name not in ("command", "bench_command", "handler"):
            assert getattr(by_original, name) == value, name
