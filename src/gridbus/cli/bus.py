"""Bus tools: ``types``, ``publish``, ``subscribe``, ``qos show``, ``ls``, ``idl generate``, ``demo``.

The commands a user reaches for to see and poke the data space without any
service running: what the data model holds, what is on the domain, and one
sample in or out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GridbusError
from ..resources import idl_dir
from .argtypes import input_file, nonneg_float, output_dir, positive_float, positive_int
from .common import (
    bus_options,
    command,
    domain_of,
    local_clock,
    open_bus,
    open_registry,
    print_json_lines,
    print_table,
    sample_json,
)

if TYPE_CHECKING:
    from ..model import TopicType
    from .common import Subcommands


# ------------------------------------------------------------------------ types
def cmd_types(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    if args.type is not None and not args.type.strip():
        raise GridbusError("TYPE is empty; give an object type name or prefix (G, Generator), or none for all")
    objects = [registry.by_name(args.type)] if args.type else list(registry.object_types.values())
    if args.json:
        print_json_lines(
            {
                "type": obj.name,
                "prefix": obj.prefix,
                "title": obj.title,
                "module": obj.module,
                "topics": [_with_codec(t.describe(), t) for t in obj.topics.values()],
            }
            for obj in objects
        )
        return 0
    for obj in objects:
        rows = []
        for topic in obj.topics.values():
            for info in topic.fields.values():
                if info.name == "id":
                    continue
                span = (
                    ""
                    if info.min is None and info.max is None
                    else f"{'' if info.min is None else f'{info.min:g}'}..{'' if info.max is None else f'{info.max:g}'}"
                )
                note = info.doc or ("|".join(m.name for m in info.enum) if info.enum else "")
                rows.append((topic.name, info.name, info.type_name, info.unit or "", span, note))
        print_table(
            f"{obj.name} ({obj.prefix}_x) - {obj.title}  (codec: {_codec_note(list(obj.topics.values()))})",
            ("topic", "field", "type", "unit", "range", "note"),
            rows,
            right=False,
            title_justify="left",
        )
    return 0


def _with_codec(described: dict[str, Any], topic: TopicType) -> dict[str, Any]:
    """A topic's description plus the serializer its samples go through (``fast`` or ``binding``, and why)."""
    from ..codec import codec_for  # here, not at import: a board over Zenoh has no cyclonedds

    codec = codec_for(topic.cls)
    return described | {"codec": codec.path, "codec_reason": codec.reason}


def _codec_note(topics: list[TopicType]) -> str:
    """``fast``, or which topics keep the binding's serializer and why."""
    from ..codec import codec_for

    slow = [(t.name, codec_for(t.cls)) for t in topics if codec_for(t.cls).path != "fast"]
    if not slow:
        return "fast"
    reasons = {codec.reason for _, codec in slow}
    if len(slow) == len(topics) and len(reasons) == 1:
        return f"binding, {reasons.pop()}"
    return "; ".join(f"{name} on the binding: {codec.reason}" for name, codec in slow)


# ---------------------------------------------------------------------- publish
def parse_assignments(items: list[str]) -> dict[str, str]:
    """``f=60 Va=120`` as a dict; a field given twice or the id given as a field is an error."""
    fields: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise GridbusError(f"expected field=value, got {item!r}")
        if not value:
            raise GridbusError(f"{name}: no value after '=' in {item!r}")
        if name == "id":
            raise GridbusError(f"{item!r}: the object id is the first argument, not a field")
        if name in fields:
            raise GridbusError(f"field {name} is given twice ({name}={fields[name]} and {item})")
        if _is_infinite(value):
            raise GridbusError(f"{name}={value}: not a finite number (NaN means 'unset' in commands)")
        fields[name] = value
    return fields


def _is_infinite(text: str) -> bool:
    try:
        return math.isinf(float(text))
    except ValueError:
        return False


def cmd_publish(args: argparse.Namespace) -> int:
    fields = parse_assignments(args.fields)
    if not fields and not args.role:
        raise GridbusError(
            f"nothing to publish: give field=value pairs for {args.id} (or --role to publish a sample of defaults)"
        )
    obj = open_registry(args).parse_id(args.id)  # check before joining the domain
    topic = obj.topic(args.role) if args.role else obj.topic_of_fields(fields)
    topic.build(args.id, fields)
    with open_bus(args) as bus:
        writer = bus.writer(args.id, topic.role)
        sample = writer.build(**fields)  # check before anything is sent
        writer.wait_for_readers(1, timeout=args.wait)
        period = 1.0 / args.rate if args.rate else 0.0
        start = time.monotonic()
        for i in range(args.count):
            if period:
                delay = start + i * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            writer.write(sample)
        if topic.role != "Measurement":
            time.sleep(0.2)  # let reliable data reach the readers
        print(f"published {args.count} x {topic.name} {json.dumps(topic.to_dict(sample))}", file=sys.stderr)
    return 0


# -------------------------------------------------------------------- subscribe
def cmd_subscribe(args: argparse.Namespace) -> int:
    if not args.pattern.strip():
        raise GridbusError("PATTERN is empty; give an object id (G_1), a type (G), G_* or *")
    objects, _ = open_registry(args).select(args.pattern)  # check before joining the domain
    if args.role and not any(args.role in o.topics for o in objects):
        raise GridbusError(f"no object type matching {args.pattern!r} has a {args.role} topic")
    with open_bus(args) as bus:
        reader = bus.reader(args.pattern, args.role, mode="wait")
        end = None if args.timeout is None else time.monotonic() + args.timeout
        seen = 0
        while args.count is None or seen < args.count:
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            sample = reader.take_one(timeout=remaining)
            if sample is None:
                break
            seen += 1
            if args.json:
                print(sample_json(sample), flush=True)
            else:
                values = " ".join(
                    f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sample.fields().items()
                    if k != "id"
                )
                print(f"{local_clock(sample.source_time)} {sample.topic} {sample.id} {values}", flush=True)
    if args.count is not None and seen < args.count:
        print(f"gridbus: received {seen} of {args.count} samples before the timeout", file=sys.stderr)
        return 1
    return 0


# -------------------------------------------------------------------------- qos
def cmd_qos_show(args: argparse.Namespace) -> int:
    from ..qos import TopicMap, describe

    registry = open_registry(args)
    known = {o.prefix for o in registry.object_types.values()} | {o.name for o in registry.object_types.values()}
    obj = registry.by_name(args.id) if args.id in known else registry.parse_id(args.id)
    qos_map = TopicMap(args.topic_map, args.qos_file) if args.topic_map else TopicMap(qos_file=args.qos_file)
    rows = [
        {
            "topic": topic.name,
            "profile": qos_map.profile_for(topic.name),
            "transport": qos_map.transport_for(topic.name),
            **describe(qos_map.writer_qos(topic.name)),
            "reader": describe(qos_map.reader_qos(topic.name)),
        }
        for topic in obj.topics.values()
    ]
    if args.json:
        print_json_lines(rows)
        return 0
    print_table(
        f"QoS in effect for {args.id} (writer side; reader where it differs)",
        (
            "topic",
            "profile",
            "transport",
            "reliability",
            "durability",
            "history",
            "deadline",
            "lifespan",
            "latency budget",
            "order",
            "priority",
            "ownership",
        ),
        (
            (
                row["topic"],
                row["profile"],
                row["transport"],
                row["reliability"],
                row["durability"],
                f"{row['history']['kind']} {row['history']['depth'] or ''}".strip(),
                _duration(row["deadline"]),
                _duration(row["lifespan"]),
                _duration(row["latency_budget"]),
                row["destination_order"].removeprefix("by_"),
                str(row["transport_priority"]),
                row["ownership"],
            )
            for row in rows
        ),
        right=False,
    )
    return 0


def _duration(seconds: float | None) -> str:
    return "inf" if seconds is None else f"{seconds:g} s"


# --------------------------------------------------------------------------- ls
def cmd_ls(args: argparse.Namespace) -> int:
    from ..discovery import watch

    return watch(open_bus(args), duration=args.duration, as_json=args.json)


# -------------------------------------------------------------------------- idl
def cmd_idl_generate(args: argparse.Namespace) -> int:
    from ..idl import TYPES_DIR, generate

    files = [Path(f) for f in args.files] or sorted(Path(args.idl_dir).glob("*.idl"))
    if not files:
        raise GridbusError(f"no IDL files in {args.idl_dir}")
    out = Path(args.out) if args.out else TYPES_DIR
    for path in generate(files, out):
        print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from .. import demo

    try:
        return demo.run(domain_of(args), args.seconds, args.partition, say=lambda line: print(line, flush=True))
    except ChildProcessError as exc:
        print(f"gridbus demo: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------- parsers
def register(sub: Subcommands) -> None:
    """Add the bus tools to the ``gridbus`` subcommands."""
    p = command(sub, "types", cmd_types, "list object types, their topics, fields and units")
    p.add_argument("type", nargs="?", help="one object type (name or prefix)")
    p.add_argument("--json", action="store_true", help="one JSON object per type")

    p = command(
        sub, "publish", cmd_publish, "publish fields of one object (a command or state field publishes on that topic)"
    )
    p.add_argument("id", help="object id, e.g. G_1 or CB_3")
    p.add_argument("fields", nargs="*", metavar="field=value")
    p.add_argument("--role", help="topic role (Measurement, State, Command, Protection)")
    p.add_argument("--count", type=positive_int, default=1)
    p.add_argument("--rate", type=positive_float, default=None, help="samples per second (default: back to back)")
    p.add_argument("--wait", type=nonneg_float, default=1.0, help="seconds to wait for a reader first")

    p = command(sub, "subscribe", cmd_subscribe, "print samples of an object, a type or all (*)")
    p.add_argument("pattern", help="G_1, G, G_* or *")
    p.add_argument("--role", help="topic role (default Measurement, else State)")
    p.add_argument("--count", type=positive_int, default=None)
    p.add_argument("--timeout", type=positive_float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line: id, topic, data, source_time, reception_time"
    )

    qos = sub.add_parser("qos", help="QoS in effect").add_subparsers(dest="qos_command", required=True)
    p = qos.add_parser("show", help="QoS in effect for each topic of an object")
    bus_options(p)
    p.set_defaults(handler=cmd_qos_show)
    p.add_argument("id", help="object id (G_1) or type (G)")
    p.add_argument("--json", action="store_true")

    p = command(sub, "ls", cmd_ls, "list participants and topics on the domain as they join and leave")
    p.add_argument("--duration", type=nonneg_float, default=3.0, help="seconds to watch (0 = until Ctrl-C)")
    p.add_argument("--json", action="store_true")

    idl = sub.add_parser("idl", help="data model tools").add_subparsers(dest="idl_command", required=True)
    p = idl.add_parser("generate", help="regenerate the Python types from IDL with idlc")
    p.set_defaults(handler=cmd_idl_generate)
    p.add_argument(
        "files", nargs="*", type=input_file("IDL file"), help="IDL files (default: every *.idl in --idl-dir)"
    )
    p.add_argument("--idl-dir", default=str(idl_dir()))
    p.add_argument(
        "--out",
        type=output_dir("output package directory"),
        default=None,
        help="output package directory (default: gridbus/types)",
    )


def register_demo(sub: Subcommands) -> None:
    """``gridbus demo``, last in the command list as before."""
    p = command(sub, "demo", cmd_demo, "two processes: generator measurements, a breaker command and its state")
    p.add_argument("--seconds", type=positive_float, default=4.0)
