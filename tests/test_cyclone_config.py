"""A Cyclone configuration that does not parse is refused (issue 10, item 3), and so is a
partition name Cyclone cannot take (item 7).

Cyclone itself falls back to its defaults (a non-loopback interface and
multicast) on an empty or truncated file.  The end-to-end test runs gridbus
inside a private network namespace that has a second interface, and checks that
this interface sent no packet while gridbus refused the configuration.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, gridbus

from gridbus import Bus, ConfigError
from gridbus.bus import LOOPBACK_CONFIG, check_partition, cyclone_config

SRC = ROOT / "src"


def _truncated(tmp_path: Path) -> Path:
    text = LOOPBACK_CONFIG.read_text()
    path = tmp_path / "truncated.xml"
    path.write_text(text[: text.index("<Peers>")])  # cut inside <Discovery>
    return path


def test_a_configuration_that_does_not_parse_names_the_file_and_the_reason(tmp_path, monkeypatch):
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=rf"{empty}: empty Cyclone DDS configuration"):
        cyclone_config(empty)
    truncated = _truncated(tmp_path)
    lines = truncated.read_text().count("\n") + 1
    with pytest.raises(ConfigError, match=rf"{truncated}:{lines}: .*malformed XML"):
        cyclone_config(str(truncated))
    other = tmp_path / "other.xml"
    other.write_text('<?xml version="1.0"?>\n<dds>\n</dds>\n')
    with pytest.raises(ConfigError, match=rf"{other}:2: the root element is <dds>, expected <CycloneDDS>"):
        cyclone_config(f"file://{other}")
    with pytest.raises(ConfigError, match="is not a regular file"):
        cyclone_config(tmp_path)
    with pytest.raises(ConfigError, match=r"configuration text:1: .*malformed XML"):
        cyclone_config("<CycloneDDS><Domain>")
    assert cyclone_config("<General><AllowMulticast>false</AllowMulticast></General>"), (
        "a fragment, as Cyclone accepts in CYCLONEDDS_URI, is fine"
    )
    for uri, reason in (
        (f"file://{empty}", "empty"),
        (f"file://{tmp_path}/none.xml", "does not exist"),
        (f"file://{LOOPBACK_CONFIG},file://{truncated}", "malformed XML"),
    ):
        monkeypatch.setenv("CYCLONEDDS_URI", uri)
        with pytest.raises(ConfigError, match=f"CYCLONEDDS_URI.*{reason}|{reason}.*CYCLONEDDS_URI"):
            cyclone_config(None)


def _netns_available() -> str | None:
    """Why the private-namespace test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for unshare -n"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", "ip link add d0 type veth peer name d1 && mount -t sysfs sysfs /sys"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if probe.returncode != 0:
        return f"no private network namespace with a veth pair here: {probe.stderr.strip()}"
    return None


NETNS_SCRIPT = r"""
mount -t sysfs sysfs /sys
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
ip link add d0 type veth peer name d1 && ip addr add 10.99.0.1/24 dev d0 &&
ip link set d1 up && ip link set d0 up && ip link set lo up || exit 97
tx() { cat /sys/class/net/d0/statistics/tx_packets; }
echo "tx-before $(tx)"
$PY -m gridbus.cli.main publish G_1 f=60 --config "$EMPTY" 2>"$OUT/empty.err"; echo "rc-empty $?"
CYCLONEDDS_URI="file://$TRUNC" $PY -m gridbus.cli.main publish G_1 f=60 2>"$OUT/uri.err"; echo "rc-uri $?"
CYCLONEDDS_URI="$EMPTY" $PY -m gridbus.cli.main publish G_1 f=60 2>"$OUT/uri-empty.err"; echo "rc-uri-empty $?"
CYCLONEDDS_URI="file://$OUT/missing.xml" $PY -m gridbus.cli.main subscribe G --count 1 2>"$OUT/missing.err"
echo "rc-missing $?"
sleep 1
echo "tx-after $(tx)"
# control: Cyclone's own defaults do use d0 here, so a silent fallback would have been seen
$PY -c 'import time; from cyclonedds.domain import DomainParticipant; p = DomainParticipant(0); time.sleep(1.5)'
echo "tx-control $(tx)"
"""


@pytest.mark.integration
def test_a_bad_configuration_sends_no_packet_on_another_interface(tmp_path):
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    truncated = _truncated(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CYCLONEDDS_URI"}
    env.update(
        PY=sys.executable,
        EMPTY=str(empty),
        TRUNC=str(truncated),
        OUT=str(tmp_path),
        PYTHONPATH=str(SRC),
        GRIDBUS_DOMAIN="0",
    )
    run = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", NETNS_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 97, f"could not set up the namespace: {run.stderr}"
    figures = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert [figures[k] for k in ("rc-empty", "rc-uri", "rc-uri-empty", "rc-missing")] == ["2"] * 4, run.stdout
    assert re.search(
        rf"^gridbus: error: {empty}: empty Cyclone DDS configuration", (tmp_path / "empty.err").read_text(), re.M
    )
    assert re.search(
        rf"^gridbus: error: {truncated}:\d+ \(named by CYCLONEDDS_URI\): .*malformed XML",
        (tmp_path / "uri.err").read_text(),
        re.M,
    )
    assert f"{empty} (named by CYCLONEDDS_URI): empty" in (tmp_path / "uri-empty.err").read_text()
    assert "missing.xml (named by CYCLONEDDS_URI) does not exist" in (tmp_path / "missing.err").read_text()
    assert "Traceback" not in "".join(p.read_text() for p in tmp_path.glob("*.err"))
    assert int(figures["tx-after"]) == int(figures["tx-before"]) == 0, "gridbus sent packets on d0"
    assert int(figures["tx-control"]) > 0, "the control (Cyclone's defaults) should have used d0"


@pytest.mark.parametrize(
    "name, reason",
    [
        ("p" * 65536, "65536 bytes long; at most 256"),
        ("lab*", "wildcard"),
        ("lab\n2", "control character"),
    ],
)
@pytest.mark.integration
def test_a_partition_name_cyclone_cannot_take_is_refused(env, name, reason):
    proc = gridbus("publish", "G_1", "f=60", "--partition", name, env=env, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-300:])  # -11 was a segfault
    assert proc.stderr.startswith("gridbus: error: partition name") and reason in proc.stderr
    with pytest.raises(ConfigError, match=reason):
        check_partition(name)


@pytest.mark.integration
def test_a_fine_partition_name_still_works(domain):
    name = "lab-3 bench/ü" + "x" * 200
    with Bus(domain, partition=name) as bus:
        assert bus.partition == name
