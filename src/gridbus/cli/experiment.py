"""``gridbus experiment``: the paper's cases end to end, with a progress bar and a verdict table.

:func:`gridbus.experiments.run_experiment` returns a summary dict; this module
only shows it (figures, breaker closures, and one pass/FAIL row per expected
outcome).  The exit status is 1 when a case did not reproduce the paper.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GridbusError
from .argtypes import output_dir
from .common import command

if TYPE_CHECKING:
    from rich.console import Console

    from .common import Subcommands


def cmd_experiment(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn

    from ..experiments import CASES, run_experiment

    names = list(CASES) if args.name == "all" else [args.name]
    if args.speed <= 0:
        raise GridbusError("--speed must be > 0")
    console = Console()
    failed = 0
    for name in names:
        out = Path(args.out) / name if len(names) > 1 or args.out == "experiments" else Path(args.out)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stage]}"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{name} (x{args.speed:g})", total=1.0, stage="")

            def progress(now: float, total: float, stage: str, task: TaskID = task) -> None:
                bar.update(task, completed=min(1.0, now / max(total, 1e-9)), stage=f"t={now:6.1f} s  {stage}")

            summary = run_experiment(
                name,
                out,
                speed=args.speed,
                domain=args.domain,
                partition=args.partition,
                system=args.system,
                progress=progress,
            )
        print_summary(console, summary, out)
        failed += not summary["reproduced"]
    if len(names) > 1:
        console.print(f"{len(names) - failed} of {len(names)} cases reproduced the paper")
    return 1 if failed else 0


def print_summary(console: Console, summary: dict[str, Any], out: Path) -> None:
    """The case's figures, its breaker closures, where the files are, and the verdict."""
    from rich.table import Table

    table = Table(title=f"{summary['title']} ({summary['figures']})", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    skip = {
        "case",
        "title",
        "figures",
        "closures",
        "trips",
        "controllers",
        "events",
        "files",
        "sync_limits",
        "verdict",
        "reproduced",
    }
    for key, value in summary.items():
        if key not in skip:
            table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    closures = Table(title="breaker closures (plant's view)", title_justify="left")
    for column in ("t (s)", "breaker", "df (Hz)", "dV (V)", "dphi (deg)", "fault"):
        closures.add_column(column)
    for c in summary["closures"]:
        closures.add_row(
            f"{c['t']:.1f}", c["breaker"], f"{c['df']:+.3f}", f"{c['dV']:+.2f}", f"{c['dphi_deg']:+.1f}", c["fault"]
        )
    console.print(closures)
    console.print(
        f"results in {out}/: summary.json, {len(summary['files']['csv'])} CSV files, "
        f"plots {', '.join(summary['files']['plots'])}"
    )
    print_verdict(console, summary)


def print_verdict(console: Console, summary: dict[str, Any]) -> None:
    """One row per expected outcome; the case reproduced the paper when every row passes."""
    from rich.table import Table

    table = Table(title=f"verdict: {summary['title']}", title_justify="left")
    for column in ("check", "expected", "measured", "pass"):
        table.add_column(column)
    for c in summary["verdict"]:
        measured = "n/a" if c["measured"] is None else str(c["measured"])
        table.add_row(c["name"], c["expected"], measured, "[green]pass" if c["pass"] else "[bold red]FAIL")
    console.print(table)
    passed = sum(c["pass"] for c in summary["verdict"])
    word = "reproduced" if summary["reproduced"] else "did NOT reproduce"
    console.print(
        f"{summary['case']}: {word} the paper ({passed} of {len(summary['verdict'])} checks pass; "
        f"simulated {summary['ended_at']:.0f} s in {summary['wall_seconds']:.0f} s wall, "
        f"x{summary['effective_speed']:.1f} of x{summary['speed']:g})"
    )


def register(sub: Subcommands) -> None:
    """Add ``experiment`` to the ``gridbus`` subcommands."""
    p = command(
        sub,
        "experiment",
        cmd_experiment,
        "run one of the paper's experiments end to end "
        "(testbed, controllers, recorder) and write CSV, plots and summary.json",
    )
    p.add_argument("name", choices=["sync", "load-sharing", "reconfig", "synchrophasor", "all"])
    p.add_argument("--speed", type=float, default=10.0, help="simulated seconds per wall-clock second")
    p.add_argument(
        "--out",
        type=output_dir("experiment output directory"),
        default="experiments",
        help="output directory (one subdirectory per case)",
    )
    p.add_argument("--system", default=None, help="system file (default: the shipped FIU testbed)")
