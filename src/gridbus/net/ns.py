"""Network namespaces owned by gridbus: naming, the ``ip`` tool, and cleanup.

Every namespace gridbus creates is named ``gbnet<pid>x<n>-<role>``: the
process id of the owner that made it, a counter (one process may build several
LANs), and a role (``sw`` for the switch, a host name otherwise).  The name is
the record of ownership, so cleanup works after a crash with nothing else to
read: a namespace whose owner process is gone is stale, and :func:`sweep`
kills every process still inside it and deletes it.  A built LAN's state file
also records the owner's start time, so an owner whose PID a later process
reuses still counts as gone.

Nothing here touches the root namespace's interfaces: links are created
directly inside the namespaces (``ip -n NS link add ... peer ... netns NS2``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NetError

log = logging.getLogger(__name__)

PREFIX = "gbnet"
NETNS_DIR = Path("/run/netns")
STATE_DIR = Path("/run/gridbus-net")  # per-LAN files: lan.json, one Cyclone config per host
_NAME = re.compile(rf"^{PREFIX}(?P<pid>\d+)x(?P<n>\d+)-(?P<role>[a-z0-9]+)$")
_IP_TIMEOUT = 20.0


def require_root(what: str = "a namespace LAN") -> None:
    """Raise :class:`NetError` unless this process may create namespaces (root, with ``ip``)."""
    if os.geteuid() != 0:
        raise NetError(f"{what} needs root (network namespaces, veth pairs, bridges); run as root")
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("sysctl", "procps")):
        if shutil.which(tool) is None:
            raise NetError(f"{what} needs the {tool} program ({package}), which is not installed")


def can_build() -> str | None:
    """Why a LAN cannot be built here (None if it can): for tests that skip with a reason."""
    try:
        require_root()
    except NetError as exc:
        return str(exc)
    return None


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    """Run ``ip [-n NS] ARGS``; its output, or :class:`NetError` with its message."""
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_IP_TIMEOUT)
    if check and proc.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc.stdout


def ns_exec(ns: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def run_in(ns: str, argv: Sequence[str], check: bool = True, timeout: float = _IP_TIMEOUT) -> str:
    """Run a short command inside ``ns`` (sysctl, tc); its output, or :class:`NetError`."""
    proc = subprocess.run(ns_exec(ns, argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise NetError(f"in {ns}: {' '.join(argv)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc.stdout


@dataclass(frozen=True)
class OwnedName:
    """A gridbus namespace name taken apart."""

    name: str
    pid: int
    lan: str  # gbnet<pid>x<n>
    role: str


def parse_name(name: str) -> OwnedName | None:
    """The owner and role of a gridbus namespace name; None for anyone else's namespace."""
    match = _NAME.match(name)
    if match is None:
        return None
    return OwnedName(name, int(match["pid"]), f"{PREFIX}{match['pid']}x{match['n']}", match["role"])


def namespaces() -> list[OwnedName]:
    """Every gridbus namespace on this machine (others' namespaces are never listed)."""
    if not NETNS_DIR.is_dir():
        return []
    found = (parse_name(entry.name) for entry in sorted(NETNS_DIR.iterdir()))
    return [n for n in found if n is not None]


def owner_alive(pid: int, started: int | None = None) -> bool:
    """Whether the process that created a namespace still runs.

    ``started`` is the owner's start time (:func:`start_time`) when its LAN
    recorded one: a live process with that PID but another start time took a
    dead owner's PID, and the owner counts as gone.  Without it, the PID alone says.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or start_time(pid) == started


def start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and ")"
    return int(fields[19])  # field 22 of the whole line; fields[0] here is field 3 (the state)


def recorded_owner(lan: str) -> tuple[int, int] | None:
    """The owner PID and start time a LAN's ``lan.json`` records; None without a readable one."""
    try:
        state = json.loads((STATE_DIR / lan / "lan.json").read_text())
        return int(state["owner"]), int(state["owner_started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lan_owner_alive(lan: str, pid: int) -> bool:
    """Whether LAN ``lan`` (named after owner ``pid``) still has its owner: by start time when recorded."""
    recorded = recorded_owner(lan)
    started = recorded[1] if recorded is not None and recorded[0] == pid else None
    return owner_alive(pid, started)


def pids_in(ns: str) -> list[int]:
    """Processes running inside ``ns``."""
    out = ip("netns", "pids", ns, check=False)
    return [int(word) for word in out.split() if word.isdigit()]


def kill_all_in(ns: str, grace: float = 2.0) -> int:
    """SIGTERM every process inside ``ns``, then SIGKILL what is left after ``grace`` s; how many."""
    victims = pids_in(ns)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(owner_alive(p) and not _zombie(p) for p in victims):
            time.sleep(0.02)
    return len(victims)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def delete(ns: str) -> None:
    """Kill what runs in ``ns`` and delete it (its veth ends go with it)."""
    kill_all_in(ns)
    ip("netns", "del", ns, check=False)


def remove_lan(lan: str) -> list[str]:
    """Delete every namespace of one LAN (hosts first, switch last) and its state directory."""
    mine = [n for n in namespaces() if n.lan == lan]
    mine.sort(key=lambda n: n.role == "sw")
    for owned in mine:
        delete(owned.name)
    shutil.rmtree(STATE_DIR / lan, ignore_errors=True)
    return [n.name for n in mine]


def sweep(everything: bool = False) -> list[str]:
    """Remove stale gridbus LANs (owner gone), or every gridbus LAN with ``everything``.

    Called before a LAN is built, by ``gridbus net down --stale/--all``, and
    usable after any crash: the names alone say what is stale.
    """
    removed: list[str] = []
    lans = {n.lan: n.pid for n in namespaces()}
    if STATE_DIR.is_dir():  # a state directory whose namespaces are already gone
        for entry in STATE_DIR.iterdir():
            owned = parse_name(f"{entry.name}-sw")
            if owned is not None:
                lans.setdefault(owned.lan, owned.pid)
    for lan, pid in sorted(lans.items()):
        if everything or not lan_owner_alive(lan, pid):
            log.info("removing %s LAN %s (owner pid %d)", "a" if everything else "stale", lan, pid)
            removed += remove_lan(lan)
            shutil.rmtree(STATE_DIR / lan, ignore_errors=True)
    return removed


def lan_states() -> list[dict[str, Any]]:
    """What ``gridbus net ls`` shows: each LAN's ``lan.json`` (hosts, addresses, owner)."""
    states: list[dict[str, Any]] = []
    live = {n.lan for n in namespaces()}
    for lan in sorted(live):
        path = STATE_DIR / lan / "lan.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {"lan": lan, "hosts": {}}
        owned = parse_name(f"{lan}-sw")
        state["owner_alive"] = owned is not None and lan_owner_alive(lan, owned.pid)
        states.append(state)
    return states


def lan_state(lan: str | None) -> dict[str, Any]:
    """The state of LAN ``lan``, or of the only LAN if ``lan`` is None (NetError otherwise)."""
    states = lan_states()
    if lan is None:
        if len(states) != 1:
            names = ", ".join(str(s["lan"]) for s in states) or "none"
            raise NetError(f"{len(states)} LANs are up ({names}); name one with --lan")
        return dict(states[0])
    for state in states:
        if state["lan"] == lan:
            return dict(state)
    raise NetError(f"no LAN {lan!r} is up; `gridbus net ls` lists them")
