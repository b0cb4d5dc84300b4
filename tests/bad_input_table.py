"""A table of bad inputs to the ``gridbus`` command line, and what each one gets.

Every case is one CLI invocation that a user could type by mistake: a number
that makes no sense (NaN, inf, 0, negative), a file that is missing, a FIFO, a
directory or not UTF-8, a malformed QoS or IDL file, a field assignment that
does not parse.  Each should end with ``gridbus: error: ...`` and exit status 2:
no traceback, no hang, no death by signal and no silent acceptance.

``tests/test_bad_input.py`` asserts that for every case.  Run this file as a
script to print the whole table with the outcome of each case, e.g. against an
old checkout::

    PYTHONPATH=src python tests/bad_input_table.py [--timeout 10] [--jobs 3] [--all] [-v] [--no-fork]

Cases run in processes forked from a server that imported gridbus once (fast);
``--no-fork`` runs each as a fresh ``python -m gridbus.cli.main`` instead.

Each case names its ``owner``: the part of gridbus that reads the input
(``cli`` for the shared argument types and files; bus, historian, experiments...).
``tests/test_bad_input.py`` asserts every case.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# commands that take the bus options (--domain, --partition, ...)
BUS_COMMANDS = {
    "types",
    "publish",
    "subscribe",
    "qos",
    "ls",
    "bench",
    "testbed",
    "daq",
    "experiment",
    "translate",
    "record",
    "replay",
    "demo",
}
OUTCOMES = ("clean error", "traceback", "hang", "signal", "accepted", "other exit")


@dataclass(frozen=True)
class Case:
    """One bad input: CLI arguments (with ``{fixture}`` placeholders) and who owns its fix."""

    group: str
    args: tuple[str, ...]
    owner: str = "cli"  # the part of gridbus that reads this input
    env: tuple[tuple[str, str], ...] = ()
    bus: bool = True  # add --partition (a case that may join DDS stays private)

    @property
    def id(self) -> str:
        return " ".join(self.args)


def _cases() -> list[Case]:
    c: list[Case] = []

    def add(group: str, *args: str, owner: str = "cli", env: dict[str, str] | None = None, bus: bool = True) -> None:
        c.append(Case(group, args, owner, tuple((env or {}).items()), bus))

    # ---- numbers: NaN, inf, 0 or negative where a positive finite number is meant
    for value in ("nan", "inf", "-1", "0"):
        add("number", "publish", "G_1", "f=60", "--rate", value)
    for value in ("nan", "inf", "-1"):
        add("number", "publish", "G_1", "f=60", "--wait", value)
    for value in ("0", "-1", "1.5"):
        add("number", "publish", "G_1", "f=60", "--count", value)
    for value in ("nan", "-1", "0", "inf"):
        add("number", "subscribe", "G_1", "--timeout", value)
    for value in ("0", "-3"):
        add("number", "subscribe", "G_1", "--count", value)
    for value in ("nan", "-1", "inf"):
        add("number", "ls", "--duration", value)
    for value in ("-1", "233", "1000", "nan", "x"):
        add("number", "types", "--domain", value)
    add("number", "publish", "G_1", "f=60", "--domain", "-1")
    add("number", "subscribe", "G_1", "--domain", "300")
    add("number", "types", env={"GRIDBUS_DOMAIN": "-5"})
    add("number", "publish", "G_1", "f=60", env={"GRIDBUS_DOMAIN": "abc"})
    for value in ("nan", "inf", "0", "-1"):
        add("number", "testbed", "--rate", value)
        add("number", "testbed", "--speed", value)
    for value in ("nan", "inf", "-1", "0"):
        add("number", "testbed", "--duration", value)
    for value in ("nan", "inf"):
        add("number", "testbed", "--epoch", value)
    for value in ("nan", "0", "-1"):
        add("number", "daq", "--config", "{daq_ok}", "--rate", value)
    for value in ("nan", "-1"):
        add("number", "daq", "--config", "{daq_ok}", "--duration", value)
    for value in ("0", "-9600", "nan"):
        add("number", "translate", "vfd-modbus", "--port", "{missing}", "--baud", value)
        add("number", "device-sim", "vfd-modbus", "--baud", value, bus=False)
    add("number", "translate", "vfd-modbus", "--port", "{missing}", "--duration", "nan")
    # finite but absurd: 1/rate or a timeout in ns overflows time.sleep() or a DDS duration
    add("number", "publish", "G_1", "f=60", "--rate", "1e-300", "--count", "2", "--wait", "0")
    add("number", "publish", "G_1", "f=60", "--wait", "1e300")
    add("number", "subscribe", "G_1", "--timeout", "1e300")
    add("number", "ls", "--duration", "1e300")
    add("number", "testbed", "--speed", "1e300", "--duration", "1")
    add("number", "daq", "--config", "{daq_ok}", "--rate", "1e300", "--duration", "1")
    add("number", "daq", "--config", "{daq_ok}", "--rate", "10000", "--duration", "1")
    add("number", "testbed", "--epoch", "1e300")
    add("number", "testbed", "--epoch", "-5")
    add("number", "device-sim", "vfd-modbus", "--duration", "-1", bus=False)
    add("number", "device-sim", "vfd-modbus", "--duration", "nan", bus=False)
    for value in ("nan", "-1", "0", "inf"):
        add("number", "demo", "--seconds", value)
    for value in ("nan", "-0.1", "inf"):
        add("number", "agc", "--deadband", value)
    for sizes in ("0", "-32", "abc", "32,,64", "nan", "1e9"):
        add("number", "bench", "latency", "--sizes", sizes)
    for rates in ("nan", "0", "-50", "inf", "x"):
        add("number", "bench", "latency", "--rates", rates)
    add("number", "bench", "latency", "--count", "0")
    add("number", "bench", "latency", "--count", "-10")
    add("number", "bench", "latency", "--modes", "fast")
    add("number", "bench", "latency", "--modes", "")
    for value in ("nan", "0", "-1", "inf"):
        add("number", "bench", "throughput", "--seconds", value)
    add("number", "bench", "throughput", "--size", "-1")
    add("number", "bench", "throughput", "--size", "0")
    for bauds in ("0", "-9600", "fast", ""):
        add("number", "bench", "serial", "--bauds", bauds)
    add("number", "bench", "serial", "--count", "0")
    add("number", "bench", "serial", "--profiles", "no-such-profile")
    # owned elsewhere: historian and experiment arguments
    add("number", "experiment", "sync", "--speed", "nan", owner="experiments")
    add("number", "experiment", "sync", "--speed", "inf", owner="experiments")
    add("number", "record", "G", "--db", "{tmp}/r.sqlite", "--batch", "0", owner="historian")
    add("number", "record", "G", "--db", "{tmp}/r.sqlite", "--flush-interval", "nan", owner="historian")
    add("number", "record", "G", "--db", "{tmp}/r.sqlite", "--max-buffer", "-1", owner="historian")
    add("number", "replay", "--csv", "{csv_ok}", "--speed", "nan", owner="historian")
    add("number", "replay", "--csv", "{csv_ok}", "--speed", "0", owner="historian")
    add("number", "bench", "historian", "--objects", "0", owner="historian")
    add("number", "bench", "historian", "--rate", "nan", owner="historian")
    add("number", "bench", "historian", "--batches", "x", owner="historian")
    add("number", "record", "G", "--db", "{tmp}/r2.sqlite", "--duration", "-1", owner="historian")
    add("file", "testbed", "--check", "--system", "{system_step0}", owner="testbed")
    add("file", "testbed", "--check", "--system", "{system_step_neg}", owner="testbed")
    add("file", "translate", "{profile_scale_nan}", "--port", "{missing}", owner="translators")
    add("file", "translate", "{profile_register_big}", "--port", "{missing}", owner="translators")
    add("file", "translate", "{profile_register_pdu}", "--port", "{missing}", owner="translators")
    add("file", "translate", "{profile_heartbeat_no_interval}", "--port", "{missing}", owner="translators")
    add("number", "translate", "vfd-modbus", "--port", "{missing}", "--object", "G_2:unit=0", owner="translators")
    add("number", "device-sim", "vfd-modbus", "--units", "1,x", owner="translators")
    add(
        "field",
        "translate",
        "vfd-modbus",
        "--port",
        "{missing}",
        "--object",
        "G_1",
        "--object",
        "G_2",
        owner="translators",
    )
    add(
        "field",
        "translate",
        "load-scpi",
        "--port",
        "{missing}",
        "--object",
        "L_1:unit=1",
        "--object",
        "L_2:unit=2",
        owner="translators",
    )
    add("number", "device-sim", "speed-controller-ascii", "--units", "1,2", owner="translators")
    add(
        "field",
        "translate",
        "drive-acs-like",
        "--port",
        "{missing}",
        "--object",
        "G_1:unit=1",
        "--object",
        "G_2:unit=2,profile=vfd-modbus",  # 9600 baud on a 19200 line
        owner="translators",
    )
    add(
        "field",
        "translate",
        "vfd-modbus",
        "--port",
        "{missing}",
        "--object",
        "G_2:unit=2,colour=red",
        owner="translators",
    )
    add(
        "field", "device-sim", "drive-acs-like", "--units", "1,2", "--unit-profile", "5=vfd-modbus", owner="translators"
    )

    # ---- files given to the bus options and the loaders
    for kind in ("missing", "dir", "fifo", "binary", "empty"):
        add("file", "qos", "show", "G_1", "--qos", "{%s}" % kind)
        add("file", "qos", "show", "G_1", "--topic-map", "{%s}" % kind)
        add("file", "types", "--idl", "{%s}" % kind)
        add("file", "testbed", "--check", "--system", "{%s}" % kind)
        add("file", "daq", "--config", "{%s}" % kind)
        add("file", "translate", "{%s_toml}" % kind, "--port", "{missing}")
    for kind in ("missing", "dir", "fifo", "binary"):
        add("file", "publish", "G_1", "f=60", "--qos", "{%s}" % kind)
        add("file", "publish", "G_1", "f=60", "--config", "{%s}" % kind)
        add("file", "subscribe", "G_1", "--topic-map", "{%s}" % kind)
        add("file", "device-sim", "{%s_toml}" % kind, bus=False)
    add("file", "publish", "G_1", "f=60", "--config", "{empty}", owner="bus")
    add("file", "qos", "show", "G_1", "--topic-map", "{map_bad_qos_file}")
    for name in ("I_neg", "pf_big", "f_zero", "V_nan", "rate_high"):
        add("file", "daq", "--config", "{daq_%s}" % name, "--duration", "1")
    add("file", "idl", "generate", "{missing}", bus=False)
    add("file", "idl", "generate", "{dir}", bus=False)
    add("file", "idl", "generate", "--idl-dir", "{missing}", bus=False)
    add("file", "idl", "generate", "--idl-dir", "{tmp}/emptydir", bus=False)
    add("file", "idl", "generate", "{idl_ok}", "--out", "{file}/types", bus=False)
    add("file", "testbed", "--serial-drives", "{file}/drives", "--duration", "1")
    add("file", "testbed", "--drive-profile", "no-such-drive", "--serial-drives", "{tmp}/drv", "--duration", "1")
    add("file", "device-sim", "vfd-modbus", "--link", "{file}/port", bus=False)
    add("file", "device-sim", "vfd-modbus", "--link", "{dir}", bus=False)
    add("file", "experiment", "sync", "--out", "{file}/out", owner="experiments")
    add("file", "delays", "--db", "{fifo}", owner="historian", bus=False)
    add("file", "delays", "--db", "{dir}", owner="historian", bus=False)
    add("file", "replay", "--csv", "{binary}", owner="historian")
    add("file", "record", "G", "--db", "{file}/x.sqlite", owner="historian")

    # ---- QoS XML with bad numbers
    for name in ("depth0", "depth_neg", "sec_neg", "nanosec_big", "max_samples0", "priority_x", "depth_huge"):
        add("qos", "qos", "show", "G_1", "--qos", "{qos_%s}" % name)
    add("qos", "publish", "G_1", "f=60", "--qos", "{qos_depth0}")

    # ---- IDL
    for name in ("keyword_field", "keyword_struct", "keyword_module", "syntax", "noprefix", "prefix_bad"):
        add("idl", "types", "--idl", "{idl_%s}" % name)
    add("idl", "publish", "HP_1", "lambda=1", "--idl", "{idl_keyword_field}")

    # ---- field assignments, object ids, patterns
    add("field", "publish", "G_1")
    add("field", "publish", "G_1", "f")
    add("field", "publish", "G_1", "=60")
    add("field", "publish", "G_1", "f=abc")
    add("field", "publish", "G_1", "f=")
    add("field", "publish", "G_1", "f=1", "f=2")
    add("field", "publish", "G_1", "id=G_2", "f=60")
    add("field", "publish", "G_1", "f=inf")
    add("field", "publish", "G_1", "f=-1")
    add("field", "publish", "G_1", "f_ref=nan", "f_ref=60")
    add("field", "publish", "G_1", "f_ref=1e400")
    add("field", "publish", "G_1", "nosuch=1")
    add("field", "publish", "G_1", "f=60", "status=OPEN")
    add("field", "publish", "CB_1", "status=HALF")
    add("field", "publish", "G_1", "f=60", "--role", "Nosuch")
    add("field", "publish", "G_1", "f=60", "--role", "Command")
    add("field", "publish", "G_", "f=60")
    add("field", "publish", "G_1 ", "f=60")
    add("field", "publish", "Nope_1", "f=60")
    add("field", "publish", "G_" + "9" * 40, "f=60")
    add("field", "publish", "", "f=60")
    add("field", "publish", "PMU_1", "Va=1,2")
    add("field", "publish", "CTRL_1", "reason=\udcff\udcfe")  # bytes 0xff 0xfe: not UTF-8
    add("field", "publish", "CTRL_1", "reason=" + "x" * 300)
    add("field", "publish", "G_1", "f=0x10")
    add("field", "publish", "BENCH_1", "payload=1,2,300", "--role", "Ping")  # octet > 255
    add("field", "publish", "FT_1", "x=1e300", "--idl", "{idl_f32}")  # beyond float32
    add("field", "translate", "vfd-modbus", "--port", "{file}", "--object", "CB_1", "--duration", "1")
    add("field", "translate", "vfd-modbus", "--port", "{file}", "--object", "nope", "--duration", "1")
    add("field", "types", "--idl", "{idl_ok}", "--idl", "{idl_ok}")
    add("field", "subscribe", "Nope_*")
    add("field", "subscribe", "")
    add("field", "subscribe", "G_1", "--role", "Nosuch")
    add("field", "types", "Nosuch")
    add("field", "types", "")
    add("field", "qos", "show", "Nosuch")
    add("field", "qos", "show", "")
    add("field", "publish", "G_1", "f=60", "--partition", "x" * 70000, owner="bus", bus=False)
    return c


CASES = _cases()


# ------------------------------------------------------------------- fixtures
QOS_BAD = {
    "depth0": "<history><kind>KEEP_LAST_HISTORY_QOS</kind><depth>0</depth></history>",
    "depth_neg": "<history><kind>KEEP_LAST_HISTORY_QOS</kind><depth>-3</depth></history>",
    "depth_huge": "<history><kind>KEEP_LAST_HISTORY_QOS</kind><depth>99999999999999</depth></history>",
    "sec_neg": "<deadline><period><sec>-1</sec><nanosec>0</nanosec></period></deadline>",
    "nanosec_big": "<deadline><period><sec>0</sec><nanosec>5000000000</nanosec></period></deadline>",
    "max_samples0": "<resource_limits><max_samples>0</max_samples></resource_limits>",
    "priority_x": "<transport_priority><value>high</value></transport_priority>",
}
DAQ_BAD = {  # name: ([agent] rate, a line of the [[object]])
    "I_neg": ("10.0", "I = -1.0"),
    "pf_big": ("10.0", "pf = 2.0"),
    "f_zero": ("10.0", "f = 0.0"),
    "V_nan": ("10.0", "V = nan"),
    "rate_high": ("20000.0", ""),  # above the 7680 Hz sample rate
}
IDL_TEMPLATE = """module {top} {{
  module {module} {{
    const string PREFIX = "{prefix}";
    @final @topic
    struct {struct} {{
      @key string<32> id;
      double {field};
    }};
  }};
}};
"""
IDL_BAD = {
    "keyword_field": dict(top="kwf", module="HeatPump", prefix="HP", struct="Measurement", field="lambda"),
    "keyword_struct": dict(top="kws", module="Thing", prefix="TK", struct="class", field="x"),
    "keyword_module": dict(top="kwm", module="import", prefix="IM", struct="Measurement", field="x"),
    "noprefix": None,
    "syntax": None,
    "prefix_bad": dict(top="pbad", module="Thing", prefix="9_x", struct="Measurement", field="x"),
}


def make_fixtures(root: Path) -> dict[str, str]:
    """Create the files the cases name (a FIFO, a directory, binary text, bad XML/IDL...)."""
    root.mkdir(parents=True, exist_ok=True)
    fx: dict[str, str] = {"tmp": str(root), "missing": str(root / "no-such-file")}
    (root / "adir").mkdir(exist_ok=True)
    (root / "emptydir").mkdir(exist_ok=True)
    fx["dir"] = str(root / "adir")
    fifo = root / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    fx["fifo"] = str(fifo)
    (root / "binary").write_bytes(b"\xff\xfe\x00<dds>\x80\x81 [x]\n\xc3\x28")
    fx["binary"] = str(root / "binary")
    (root / "empty").write_text("")
    fx["empty"] = str(root / "empty")
    (root / "file").write_text("a plain file\n")
    fx["file"] = str(root / "file")
    for kind in ("missing", "dir", "fifo", "binary", "empty"):
        fx[f"{kind}_toml"] = fx[kind]  # profile given as a path
    (root / "profdir.toml").mkdir(exist_ok=True)
    fx["dir_toml"] = str(root / "profdir.toml")
    (root / "bin.toml").write_bytes((root / "binary").read_bytes())
    fx["binary_toml"] = str(root / "bin.toml")
    if not (root / "fifo.toml").exists():
        os.mkfifo(root / "fifo.toml")
    fx["fifo_toml"] = str(root / "fifo.toml")
    (root / "empty.toml").write_text("")
    fx["empty_toml"] = str(root / "empty.toml")
    fx["missing_toml"] = str(root / "missing.toml")

    src = Path(__file__).resolve().parents[1]
    qos_text = (src / "qos" / "gridbus_qos.xml").read_text()
    for name, policy in QOS_BAD.items():
        text = qos_text.replace(
            "<durability><kind>VOLATILE_DURABILITY_QOS</kind></durability>",
            "<durability><kind>VOLATILE_DURABILITY_QOS</kind></durability>\n        " + policy,
            1,
        )
        (root / f"qos_{name}.xml").write_text(text)
        fx[f"qos_{name}"] = str(root / f"qos_{name}.xml")
    (root / "map_bad.xml").write_text(f'<topics qos_file="{fx["binary"]}"><topic name="*" profile="a::b"/></topics>')
    fx["map_bad_qos_file"] = str(root / "map_bad.xml")
    for name, parts in IDL_BAD.items():
        if name == "noprefix":
            text = "module nop { module Thing { @final struct Measurement { @key string<32> id; double x; }; }; };\n"
        elif name == "syntax":
            text = 'module syn { module Thing { const string PREFIX = "SY"; struct { }; };\n'
        else:
            text = IDL_TEMPLATE.format(**parts)
        (root / f"{name}.idl").write_text(text)
        fx[f"idl_{name}"] = str(root / f"{name}.idl")
    (root / "f32.idl").write_text(
        'module f32mod { module Thing { const string PREFIX = "FT";\n'
        "@final @topic struct Measurement { @key string<32> id; float x; }; }; };\n"
    )
    fx["idl_f32"] = str(root / "f32.idl")
    (root / "ok.idl").write_text(
        IDL_TEMPLATE.format(top="okgen", module="Thing", prefix="OK", struct="Measurement", field="x")
    )
    fx["idl_ok"] = str(root / "ok.idl")
    for name, (rate, line) in DAQ_BAD.items():
        (root / f"daq_{name}.toml").write_text(f'[agent]\nrate = {rate}\n[[object]]\nid = "G_2"\n{line}\n')
        fx[f"daq_{name}"] = str(root / f"daq_{name}.toml")
    system = (src / "src" / "gridbus" / "data" / "systems" / "fiu-testbed.toml").read_text()
    for name, step in (("step0", "step = 0.0"), ("step_neg", "step = -0.01")):
        (root / f"system_{name}.toml").write_text(system.replace("step = 0.01", step, 1))
        fx[f"system_{name}"] = str(root / f"system_{name}.toml")
    profile = (src / "translators" / "profiles" / "vfd-modbus.toml").read_text()
    for name, old, new in (
        ("scale_nan", "scale = 100.0", "scale = nan"),
        ("register_big", "address = 0x2001", "address = 0x1FFFFF"),
        ("register_pdu", "address = 0x2001", "register = 0x2001"),
        ("heartbeat_no_interval", "[status]", "[watchdog]\naddress = 0x2010\n\n[status]"),
    ):
        (root / f"profile_{name}.toml").write_text(profile.replace(old, new, 1))
        fx[f"profile_{name}"] = str(root / f"profile_{name}.toml")
    daq_example = src / "examples" / "daq-agent.toml"
    fx["daq_ok"] = str(daq_example)
    (root / "ok.csv").write_text("object_id,topic,source_time,reception_time,created_time,fields\n")
    fx["csv_ok"] = str(root / "ok.csv")
    return fx


# --------------------------------------------------------------------- running
@dataclass
class Result:
    case: Case
    outcome: str
    returncode: int | None
    stderr: str = ""
    seconds: float = 0.0
    argv: list[str] = field(default_factory=list)


def argv_of(case: Case, fixtures: dict[str, str], partition: str) -> list[str]:
    args = [a.format(**fixtures) for a in case.args]
    if case.bus and args and args[0] in BUS_COMMANDS:
        depth = 2 if args[0] in ("qos", "bench") else 1
        args = args[:depth] + ["--partition", partition] + args[depth:]
    return args


def classify(returncode: int | None, stderr: str) -> str:
    if returncode is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if returncode < 0:
        return "signal"
    if returncode == 0:
        return "accepted"
    if returncode == 2 and "error:" in stderr:
        return "clean error"
    return "other exit"


def run_case(case: Case, fixtures: dict[str, str], env: dict[str, str], partition: str, timeout: float) -> Result:
    """Run one case as ``python -m gridbus.cli.main``; a hang is killed with its children."""
    argv = argv_of(case, fixtures, partition)
    full_env = dict(env, **dict(case.env))
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", *argv],
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        _out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        _out, err = proc.communicate()
        code = None
    _kill_group(proc.pid)  # what it started and left behind (a recorder, an echo...)
    return Result(case, classify(code, err), code, err, time.monotonic() - start, argv)


# ------------------------------------------------------------ the fork server
# Starting Python and importing gridbus (cyclonedds, numpy) costs about 0.4 s
# of CPU per case.  A fork server imports the CLI once, never touches DDS
# itself, and runs each case in a forked child: a process of its own, in its own
# session (a hang is killed with its children), with its own environment, its
# stdout and stderr in files, and Python's exit behaviour (SystemExit codes,
# a traceback and status 1 for an uncaught exception, signals seen as such).


def _child(argv: list[str], env: dict[str, str], out_path: str, err_path: str) -> None:
    """In the forked child: become ``gridbus ARGV`` and exit with its status."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for fd, path in ((1, out_path), (2, err_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [sys.argv[0], *argv]
    code: int = 1
    try:
        from gridbus.cli.main import main

        code = main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:  # what the interpreter does with an uncaught exception
        import traceback

        traceback.print_exc()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code if isinstance(code, int) else 1)


def serve(request: dict) -> None:
    """Run the requested cases, ``jobs`` at a time; print one JSON line per finished case."""
    import json

    import gridbus.cli.main  # noqa: F401  (import once, before any fork)

    cases = [CASES[i] for i in request["cases"]]
    fixtures, env, partition = request["fixtures"], request["env"], request["partition"]
    timeout, jobs = request["timeout"], request["jobs"]
    pending = list(enumerate(cases))
    running: dict[int, tuple[int, float, str]] = {}  # pid -> (index, started, directory)
    scratch = tempfile.mkdtemp(prefix="gridbus-bad-serve-")
    while pending or running:
        while pending and len(running) < jobs:
            index, case = pending.pop(0)
            argv = argv_of(case, fixtures, partition)
            out, err = f"{scratch}/{index}.out", f"{scratch}/{index}.err"
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(argv, dict(env, **dict(case.env)), out, err)
            running[pid] = (index, time.monotonic(), err)
        pid, status = os.waitpid(-1, os.WNOHANG)
        finished = {pid: os.waitstatus_to_exitcode(status)} if pid else {}
        now = time.monotonic()
        for other, (_index, started, _err) in list(running.items()):
            if other not in finished and now - started > timeout:
                _kill_group(other)
                os.waitpid(other, 0)
                finished[other] = None
        for done, code in finished.items():
            _kill_group(done)  # what the case started and left behind
            index, started, err_path = running.pop(done)
            with open(err_path, errors="replace") as handle:
                stderr = handle.read()
            print(
                json.dumps(
                    {
                        "index": request["cases"][index],
                        "returncode": code,
                        "stderr": stderr,
                        "seconds": round(now - started, 3),
                    }
                ),
                flush=True,
            )
        if not finished:
            time.sleep(0.01)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except ProcessLookupError:
        pass


def start_server(
    cases: list[Case], fixtures: dict[str, str], env: dict[str, str], partition: str, timeout: float, jobs: int
):
    """Start the fork server; returns an iterator of finished Results (in completion order)."""
    import json

    indices = [CASES.index(c) for c in cases]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    proc.stdin.write(
        json.dumps(
            {
                "cases": indices,
                "fixtures": fixtures,
                "env": env,
                "partition": partition,
                "timeout": timeout,
                "jobs": jobs,
            }
        )
    )
    proc.stdin.close()

    def results():
        try:
            for line in proc.stdout:
                row = json.loads(line)
                case = CASES[row["index"]]
                yield Result(
                    case,
                    classify(row["returncode"], row["stderr"]),
                    row["returncode"],
                    row["stderr"],
                    row["seconds"],
                    argv_of(case, fixtures, partition),
                )
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    return proc, results()


def run_broken_pipe(env: dict[str, str], timeout: float = 15.0) -> Result:
    """``gridbus types --json | head -1``: the reader goes away after one line."""
    case = Case("pipe", ("types", "--json", "|", "head", "-1"))
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "types", "--json"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    proc.stdout.readline()
    proc.stdout.close()
    try:
        proc.wait(timeout=timeout)
        err = proc.stderr.read().decode(errors="replace")
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        err, code = "", None
    proc.stderr.close()
    outcome = classify(code, err)
    if code is not None and outcome != "traceback" and not err.strip():
        outcome = "clean error"  # quiet exit: nothing on stderr
    return Result(case, outcome, code, err, time.monotonic() - start)


def run_all(
    cases: list[Case], env: dict[str, str], timeout: float, jobs: int, root: Path, fork: bool = True
) -> list[Result]:
    """Every case (forked from the server, or each a fresh ``python -m gridbus.cli.main``)."""
    fixtures = make_fixtures(root)
    partition = f"badinput-{os.getpid()}"
    if fork:
        _proc, finished = start_server(cases, fixtures, env, partition, timeout, jobs)
        by_case = {r.case: r for r in finished}
        results = [by_case[c] for c in cases]
    else:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(lambda c: run_case(c, fixtures, env, partition, timeout), cases))
    return results + [run_broken_pipe(env)]


def table(results: list[Result]) -> str:
    groups = sorted({r.case.group for r in results})
    header = f"{'group':<8} {'tried':>5} " + " ".join(f"{o:>11}" for o in OUTCOMES)
    lines = [header, "-" * len(header)]

    def row(name: str, rs: list[Result]) -> str:
        return f"{name:<8} {len(rs):>5} " + " ".join(f"{sum(r.outcome == o for r in rs):>11}" for o in OUTCOMES)

    for g in groups:
        lines.append(row(g, [r for r in results if r.case.group == g]))
    lines.append("-" * len(header))
    lines.append(row("all", results))
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        import json

        serve(json.loads(sys.stdin.read()))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a case counts as a hang")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="include cases owned by other parts of issue 10")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each case that is not a clean error")
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="run each case as a fresh python process (slower; what a user's shell does)",
    )
    parser.add_argument("--domain", type=int, default=int(os.environ.get("GRIDBUS_TEST_DOMAIN_BASE", 200)))
    opts = parser.parse_args()
    env = dict(os.environ, GRIDBUS_DOMAIN=str(opts.domain))
    env.pop("CYCLONEDDS_URI", None)
    cases = [c for c in CASES if opts.all or c.owner == "cli"]
    with tempfile.TemporaryDirectory(prefix="gridbus-bad-") as tmp:
        results = run_all(cases, env, opts.timeout, opts.jobs, Path(tmp), fork=not opts.no_fork)
    if opts.verbose:
        for r in results:
            if r.outcome != "clean error":
                last = (r.stderr.strip().splitlines() or [""])[-1][:150]
                print(f"[{r.outcome}] ({r.case.owner}) gridbus {r.case.id[:90]} -> rc={r.returncode} {last}")
    print(table(results))
    if opts.all:
        print("\nowned by this part (cli):")
        print(table([r for r in results if r.case.owner == "cli"]))
        print("\nowned elsewhere:")
        print(table([r for r in results if r.case.owner != "cli"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
