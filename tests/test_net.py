"""The namespace LAN (gridbus.net): hosts, DDS across them, cleanup after a crash.

Needs root (network namespaces); skipped with the reason otherwise.  Nothing
leaves the namespaces: every address is on the LAN's private subnet.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import gridbus

from gridbus.bench.peers import read_line
from gridbus.errors import NetError
from gridbus.net import Impairment, Lan, can_build, namespaces, ns

pytestmark = [pytest.mark.integration, pytest.mark.skipif(can_build() is not None, reason=str(can_build()))]

PROBE = [sys.executable, str(__import__("gridbus.net.probe", fromlist=["x"]).__file__)]


def _writer_script(domain: int, partition: str, object_id: str, readers: int, count: int, fields: str) -> str:
    """A writer on a LAN host: waits for ``readers`` matched readers, writes, prints its eth0 tx bytes."""
    return f"""
import time
from gridbus import Bus
def tx():
    return int(open("/sys/class/net/eth0/statistics/tx_bytes").read())
with Bus(domain={domain}, partition={partition!r}) as bus:
    w = bus.writer({object_id!r})
    end = time.monotonic() + 15
    while w.matched < {readers} and time.monotonic() < end:
        time.sleep(0.02)
    matched = w.matched
    time.sleep(0.5)
    before = tx()
    for i in range({count}):
        w.write({fields})
        time.sleep(0.01)
    time.sleep(0.5)
    print(matched, tx() - before, flush=True)
    time.sleep(1.0)
"""


def _subscribe(lan: Lan, host: str, domain: int, partition: str, what: str, count: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "gridbus.cli.main", "subscribe", what, "--count", str(count)]
    argv += ["--timeout", "20", "--domain", str(domain), "--partition", partition]
    return lan.popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_hosts_are_namespaces_on_one_subnet_and_dds_crosses_them(domain, partition):
    with Lan(hosts=3) as lan:
        names = {n.name for n in namespaces() if n.lan == lan.name}
        assert names == {f"{lan.name}-{r}" for r in ("sw", "h1", "h2", "h3")}
        addresses = {h.address for h in lan.hosts.values()}
        assert addresses == {"10.254.0.11", "10.254.0.12", "10.254.0.13"}
        config = lan.hosts["h2"].config.read_text()
        assert '<NetworkInterface name="eth0"/>' in config and "<AllowMulticast>true</AllowMulticast>" in config
        subs = [_subscribe(lan, h, domain, partition, "G_1", 5) for h in ("h2", "h3")]
        script = _writer_script(domain, partition, "G_1", 2, 5, "f=60.0")
        out = lan.run("h1", [sys.executable, "-c", script], capture_output=True, text=True, timeout=40)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[0] == "2"  # both reader hosts matched
        for sub in subs:
            stdout, stderr = sub.communicate(timeout=30)
            assert sub.returncode == 0, stderr
            assert len(stdout.splitlines()) == 5
    assert not [n for n in namespaces() if n.lan == lan.name]


def test_multicast_topic_sends_one_copy_unicast_one_per_reader_host(domain, partition):
    """Generator_Measurement is multicast in qos/topics.xml; forcing unicast multiplies the bytes."""
    per_sample = {}
    for transport in (None, "unicast"):
        with Lan(hosts=4, transport=transport) as lan:
            subs = [_subscribe(lan, h, domain, partition, "G_1", 20) for h in ("h2", "h3", "h4")]
            script = _writer_script(domain, partition, "G_1", 3, 20, "f=60.0")
            out = lan.run("h1", [sys.executable, "-c", script], capture_output=True, text=True, timeout=40)
            assert out.returncode == 0, out.stderr
            matched, tx = (int(x) for x in out.stdout.split())
            assert matched == 3
            for sub in subs:
                sub.communicate(timeout=30)
            per_sample[transport or "multicast"] = tx / 20
    # three reader hosts: unicast puts about three copies on the wire, multicast one
    assert per_sample["unicast"] > 2.5 * per_sample["multicast"], per_sample


def _probe(lan: Lan, src: str, dst: str, count: int, rate: float, port: int = 5000, seconds: float = 20) -> list[int]:
    recv = lan.popen(dst, [*PROBE, "recv", str(port), "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
    sent = lan.run(src, [*PROBE, "send", lan.hosts[dst].address, str(port), "--rate", str(rate), "--count", str(count)])
    assert sent.returncode == 0
    delays: list[int] = json.loads(recv.stdout.readline())["delays_us"]
    recv.wait(timeout=10)
    return delays


def test_userspace_stage_delays_and_drops_frames():
    """No netem here: the stage holds each frame at least the requested delay and drops about the loss."""
    with Lan(hosts=2, netem=False) as lan:
        # h1 learns h2's address on the clean link first: resolving it across 30 % loss can fail
        # three times in a row, and the kernel then drops what it queued (CI once saw 48 of the
        # 300 frames reach the stage)
        assert len(_probe(lan, "h1", "h2", 5, 100, port=5003)) == 5
        lan.impair("h1", Impairment(delay_ms=20, jitter_ms=5, loss_pct=30))
        delays = _probe(lan, "h1", "h2", 300, 300)
        assert delays and min(delays) >= 15_000  # never earlier than delay - jitter
        lan.impair("h1", Impairment())  # clean again: frames go straight to the bridge (the stage ends)
        assert len(_probe(lan, "h1", "h2", 100, 200)) == 100
        stats = lan.hosts["h1"].stage_stats
        assert stats is not None
        forward = stats["directions"]["p1>q1"]
        # the loss model, judged on the stage's own counts (a starved receiver on a loaded machine
        # may lose more on its own; that is not the stage's loss): 30 % of what reached it
        assert forward["received"] >= 300
        assert 0.15 * forward["received"] < forward["dropped"] < 0.45 * forward["received"], forward
        assert len(delays) <= forward["received"] - forward["dropped"]  # a dropped frame never arrives


def test_bandwidth_limit_queues_a_burst():
    """tbf at 1 Mbit/s: a burst of 96 KB queues (a lower bound on delay, not a timing assert)."""
    with Lan(hosts=2) as lan:
        lan.impair("h1", Impairment(rate_mbit=1))
        big = lan.popen("h2", [*PROBE, "recv", "5002", "--seconds", "20"], stdout=subprocess.PIPE, text=True)
        assert big.stdout is not None and big.stdout.readline().strip() == "ready"
        lan.run("h1", [*PROBE, "send", "10.254.0.12", "5002", "--rate", "0", "--count", "80", "--size", "1200"])
        got = json.loads(big.stdout.readline())["delays_us"]
        big.wait(timeout=10)
        # unlimited, the burst crosses in about a millisecond; at 1 Mbit/s the bucket holds it back
        assert got and max(got) > 100_000


def test_link_down_and_up():
    with Lan(hosts=2) as lan:
        lan.set_link("h1", up=False)
        assert _probe(lan, "h1", "h2", 20, 100, seconds=2) == []
        lan.set_link("h1", up=True)
        # another port: probes sent during the outage may wait in h1's neighbour (ARP) queue and
        # leave once the link is back; they must not count as this round's
        assert len(_probe(lan, "h1", "h2", 20, 100, port=5001)) == 20


_CRASHER = """
import sys, time
from gridbus.net import Lan, Impairment
lan = Lan(hosts=2).up()
lan.impair("h1", Impairment(delay_ms=5))
sleeper = lan.popen("h2", ["sleep", "300"])
print(lan.name, sleeper.pid, lan.stage_pid("h1"), flush=True)
time.sleep(300)
"""


def test_sigkilled_owner_leaves_nothing_after_net_down(env):
    owner = subprocess.Popen([sys.executable, "-c", _CRASHER], stdout=subprocess.PIPE, text=True, env=env)
    lan = ""
    try:
        line = read_line(owner, 30.0)
        assert line, "the LAN owner did not report its LAN within 30 s"
        lan, sleeper, stage = line.split()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)
        left = [n.name for n in namespaces() if n.lan == lan]
        assert len(left) == 3  # the crash left the switch and both hosts behind
        listed = gridbus("net", "ls", "--json", env=env, check=True)
        assert any(
            json.loads(line)["lan"] == lan and not json.loads(line)["owner_alive"]
            for line in listed.stdout.splitlines()
        )
        down = gridbus("net", "down", env=env, check=True)  # default: remove stale LANs
        assert f"{lan}-sw" in down.stdout
        assert not [n for n in namespaces() if n.lan == lan]
        for pid in (int(sleeper), int(stage)):
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(pid), f"process {pid} survived the cleanup"
    finally:  # an assertion that failed before (or in) `net down` must not leave the LAN behind
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=10)
        if lan and [n for n in namespaces() if n.lan == lan]:
            gridbus("net", "down", lan, env=env)


def _alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_net_run_uses_the_hosts_configuration(env):
    with Lan(hosts=2) as lan:
        out = gridbus("net", "run", "--lan", lan.name, "h2", "--", "sh", "-c", "echo $CYCLONEDDS_URI", env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"file://{lan.hosts['h2'].config}"
        bad = gridbus("net", "run", "--lan", lan.name, "h9", "--", "true", env=env)
        assert bad.returncode == 2 and "no host 'h9'" in bad.stderr


def test_bad_lan_settings_are_refused():
    with pytest.raises(NetError, match="host name"):
        Lan(hosts=["H1"])
    with pytest.raises(NetError, match="repeat"):
        Lan(hosts=["a", "a"])
    with pytest.raises(NetError, match="subnet"):
        Lan(hosts=2, subnet="10.254.0.0/33")
    with Lan(hosts=1) as lan, pytest.raises(NetError, match="no host 'h5'"):
        lan.impair("h5", Impairment(delay_ms=1))


def test_net_up_holds_the_lan_then_removes_it(env):
    up = subprocess.run(
        [sys.executable, "-m", "gridbus.cli.main", "net", "up", "--names", "a1,b1", "--seconds", "1"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout.splitlines()[0])
    assert sorted(info["hosts"]) == ["a1", "b1"] and info["hosts"]["a1"]["address"] == "10.254.0.11"
    assert not [n for n in namespaces() if n.lan == info["lan"]]


def _listed_alive(lan: Lan) -> list[bool]:
    return [bool(s["owner_alive"]) for s in ns.lan_states() if s["lan"] == lan.name]


def test_a_live_process_that_reused_the_owners_pid_is_not_the_owner(env):
    """lan.json records the owner's start time: the PID alive with another start time is a stale LAN."""
    with Lan(hosts=1) as lan:
        state_file = lan.state_dir / "lan.json"
        state = json.loads(state_file.read_text())
        assert state["owner"] == os.getpid() and state["owner_started"] == ns.start_time(os.getpid())
        assert _listed_alive(lan) == [True]
        state_file.unlink()  # no state file (a LAN still being built): the PID alone says, and it runs
        assert _listed_alive(lan) == [True]
        assert f"{lan.name}-sw" not in ns.sweep()
        # as if this live process had taken a dead owner's PID: same PID, another start time
        state_file.write_text(json.dumps(dict(state, owner_started=state["owner_started"] + 1)))
        assert _listed_alive(lan) == [False]
        listed = gridbus("net", "ls", "--json", env=env, check=True)
        assert [json.loads(line)["owner_alive"] for line in listed.stdout.splitlines() if lan.name in line] == [False]
        down = gridbus("net", "down", env=env, check=True)  # default: remove stale LANs
        assert f"{lan.name}-sw" in down.stdout
        assert not [n for n in namespaces() if n.lan == lan.name]
