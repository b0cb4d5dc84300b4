"""The bridge between sites (issue 15, item 4): two DDS domains on this machine as sites A and B,
each with its own ``gridbus bridge`` process, joined over mutual-TLS Zenoh on 127.0.0.1."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest
import zenoh
from bridge_helpers import WanLink, make_pki, port_for, start_bridge, stop, wait_until
from helpers import gridbus, next_domain

from gridbus import Bus
from gridbus.bridge.config import BridgeConfig, load_file
from gridbus.bridge.link import TlsFiles, open_session
from gridbus.errors import ConfigError

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.fixture
def sites(domain):
    """(domain of site A, domain of site B)."""
    return domain, next_domain()


def _bridges(pki, sites, a_args=(), b_args=(), via=None):
    """Bridge A listening, bridge B connecting (through ``via``'s port if given)."""
    a_dom, b_dom = sites
    port = port_for(a_dom)
    a = start_bridge("A", a_dom, pki, "--listen", f"tls/127.0.0.1:{port}", *a_args)
    target = via if via is not None else port
    b = start_bridge("B", b_dom, pki, "--connect", f"tls/127.0.0.1:{target}", *b_args)
    return a, b


def test_controller_at_b_drives_testbed_at_a(pki, sites, env):
    """The virtual testbed runs at site A; a controller at B sees its state (late joiner) and opens a breaker."""
    a_dom, b_dom = sites
    testbed = subprocess.Popen(
        [sys.executable, "-m", "gridbus.cli.main", "testbed", "--domain", str(a_dom), "--rate", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    a = b = None
    try:
        assert testbed.stdout.readline().startswith('{"ready"')
        a, b = _bridges(pki, sites, a_args=("--allow-in", "Breaker_Command"), b_args=("--allow-out", "Breaker_Command"))
        with Bus(b_dom) as controller:
            state = controller.reader("CB_L1", "State")
            seen = {}
            assert wait_until(lambda: seen.update({s.id: s.status.name for s in state.take(0)}) or "CB_L1" in seen)
            # transient-local state, replayed to a late joiner at B; the controller flips the breaker
            target = "OPEN" if seen["CB_L1"] == "CLOSED" else "CLOSED"
            gens = controller.reader("G_1")
            assert gens.take_one(timeout=10) is not None  # measurements cross too
            controller.command("CB_L1", status=target)
            assert wait_until(
                lambda: seen.update({s.id: s.status.name for s in state.take(0)}) or seen["CB_L1"] == target
            )
    finally:
        done_b = stop(b) if b else {}
        done_a = stop(a) if a else {}
        testbed.terminate()
        testbed.communicate(timeout=10)
    assert done_b["commands_delivered"] >= 1 and done_a["in"] >= 1


def test_denied_command_never_reaches_site_a(pki, sites):
    """A's [in] denies Generator_Command: B's generator command is refused, its breaker command gets in."""
    a_dom, b_dom = sites
    a, b = _bridges(
        pki, sites,
        a_args=("--allow-in", "*_Command", "--deny-in", "Generator_Command"),
        b_args=("--allow-out", "*_Command"),
    )  # fmt: skip
    try:
        with Bus(a_dom) as site_a, Bus(b_dom) as site_b:
            gen_cmds = site_a.reader("G", "Command")
            cb_cmds = site_a.reader("CB", "Command")
            time.sleep(0.5)  # readers matched by bridge A's writers
            site_b.command("G_1", action="START", f_ref=60.0)
            site_b.command("CB_1", status="CLOSED")
            got = cb_cmds.take_one(timeout=10)
            assert got is not None and got.id == "CB_1"  # the path works...
            time.sleep(1.0)  # ...and the G_1 command, sent first, had every chance to arrive
            assert gen_cmds.take(0) == []
    finally:
        done_b, done_a = stop(b), stop(a)
    assert done_b["commands_denied"] == 1 and done_b["commands_delivered"] == 1
    assert done_a["denied_in"] >= 1


def test_no_command_crosses_unless_named(pki, sites):
    """With no allow list naming commands, B's bridge sends none (the default: '*' admits no command)."""
    a_dom, b_dom = sites
    a, b = _bridges(pki, sites, a_args=("--allow-in", "*_Command"))
    try:
        with Bus(a_dom) as site_a, Bus(b_dom) as site_b:
            cmds = site_a.reader("CB", "Command")
            states = site_a.reader("CB_1", "State")
            time.sleep(0.5)
            site_b.command("CB_1", status="OPEN")
            site_b.writer("CB_1", "State").write(status="OPEN")  # state does cross
            assert states.take_one(timeout=10) is not None
            assert cmds.take(0) == []
    finally:
        done_b = stop(b)
        stop(a)
    assert done_b["out"] >= 1 and done_b["commands_delivered"] == 0  # B's bridge does not even read commands


def test_client_without_valid_certificate_gets_nothing(pki, sites, tmp_path):
    """An intruder with a wrong-CA certificate (or a self-signed one) sees no data and cannot command."""
    a_dom, b_dom = sites
    port = port_for(a_dom)
    a, b = _bridges(pki, sites, a_args=("--allow-in", "*_Command"))
    intruders = [
        open_session([], [f"tls/127.0.0.1:{port}"], TlsFiles(pki.intruder.cert, pki.intruder.key, pki.wrong_ca.cert)),
        open_session([], [f"tls/127.0.0.1:{port}"], TlsFiles(pki.self_signed.cert, pki.self_signed.key, pki.ca.cert)),
    ]
    stolen: list = []
    try:
        for z in intruders:
            z.declare_subscriber("**", lambda s: stolen.append(str(s.key_expr)), allowed_origin=zenoh.Locality.REMOTE)
        with Bus(a_dom) as site_a, Bus(b_dom) as site_b:
            cmds = site_a.reader("CB", "Command")
            at_b = site_b.reader("G_1")
            g1 = site_a.writer("G_1")
            site_a.writer("CB_1", "State").write(status="CLOSED")
            assert wait_until(lambda: (g1.write(f=60.0), at_b.take(0))[1] != [])  # the real bridge gets data
            for z in intruders:
                replies = list(z.get("gridbus/**", timeout=1.0, allowed_destination=zenoh.Locality.REMOTE))
                assert [r for r in replies if r.ok is not None] == []
                z.put("gridbus/B/data/Breaker_Command/CB_1", b"\x00\x01\x00\x00")
                list(z.get("gridbus/cmd/B/Breaker_Command/CB_1", payload=b"x", timeout=1.0))
            time.sleep(0.5)
            assert cmds.take(0) == []
        assert stolen == []
    finally:
        for z in intruders:
            z.close()
        stop(b)
        stop(a)


def test_wan_drop_and_return_loses_no_command_and_resyncs_state(pki, sites, tmp_path, env):
    """Commands sent before, during and after a WAN outage all arrive once; state changed meanwhile is resent."""
    a_dom, b_dom = sites
    qos = _long_command_lifespan(tmp_path)
    wan = WanLink(port_for(a_dom, 1), port_for(a_dom))
    a = b = None
    try:
        a, b = _bridges(
            pki, sites,
            a_args=("--allow-in", "Generator_Command", "--qos", str(qos)),
            b_args=("--allow-out", "Generator_Command", "--qos", str(qos)),
            via=port_for(a_dom, 1),
        )  # fmt: skip
        with Bus(a_dom) as site_a, Bus(b_dom) as site_b:
            cmds = site_a.reader("G_1", "Command", history=64)
            state_a = site_a.writer("CB_1", "State")
            state_a.write(status="CLOSED")
            state_b = site_b.reader("CB_1", "State")
            assert wait_until(lambda: state_b.take(0) != [])
            received: list[float] = []
            drain = lambda: received.extend(round(s.f_ref, 3) for s in cmds.take(0))  # noqa: E731
            sent = [round(50.0 + i * 0.5, 3) for i in range(15)]
            for f in sent[:5]:
                site_b.command("G_1", f_ref=f)
            assert wait_until(lambda: drain() or len(received) >= 5)
            wan.cut()
            for f in sent[5:10]:  # during the outage: the bridge keeps them
                site_b.command("G_1", f_ref=f)
                time.sleep(0.1)
            state_a.write(status="OPEN")  # state changes while the sites are apart
            time.sleep(1.0)
            wan.restore()
            for f in sent[10:]:
                site_b.command("G_1", f_ref=f)
            assert wait_until(lambda: drain() or len(received) >= 15, timeout=20)
            time.sleep(0.5)
            drain()
            assert sorted(received) == sorted(sent)  # every one, none twice
            assert wait_until(lambda: any(s.status.name == "OPEN" for s in state_b.take(0)), timeout=10)
    finally:
        done_b = stop(b) if b else {}
        stop(a) if a else None
        wan.close()
    assert done_b["commands_delivered"] == 15 and done_b["commands_expired"] == 0


def test_rate_cap_coalesces_to_the_newest_value(pki, sites):
    """--max-frequency '*_Measurement=5': far fewer samples cross, and the last one is the newest."""
    a_dom, b_dom = sites
    a, b = _bridges(pki, sites, a_args=("--max-frequency", "Generator_Measurement=5"))
    try:
        with Bus(a_dom) as site_a, Bus(b_dom) as site_b:
            at_b = site_b.reader("G_1")
            g1 = site_a.writer("G_1")
            assert wait_until(lambda: (g1.write(f=59.0), at_b.take(0))[1] != [])
            values = [59.0 + i * 0.001 for i in range(200)]
            for f in values:
                g1.write(f=f)
                time.sleep(0.005)
            got: list[float] = []
            assert wait_until(lambda: got.extend(s.f for s in at_b.take(0)) or (got and got[-1] == values[-1]))
            assert len(got) < len(values) / 3
    finally:
        done_a = stop(a)
        stop(b)
    assert done_a["capped"] > 0


def _long_command_lifespan(tmp_path):
    """The packaged QoS with a 30 s command lifespan: the outage above must fit in it."""
    from gridbus.resources import qos_dir

    text = (qos_dir() / "gridbus_qos.xml").read_text()
    marker = "<lifespan><duration><sec>2</sec>"
    assert marker in text
    path = tmp_path / "qos.xml"
    path.write_text(text.replace(marker, "<lifespan><duration><sec>30</sec>"))
    return path


# ----------------------------------------------------------------- bad input
def test_bridge_refuses_plain_tcp_and_missing_certificates(pki, env):
    tls = pki.sites["A"]
    certs = ["--cert", str(tls.cert), "--key", str(tls.key), "--ca", str(pki.ca.cert)]
    r = gridbus("bridge", "--site", "A", "--listen", "tcp/127.0.0.1:7447", *certs, env=env)
    assert r.returncode == 2 and "mutual TLS only" in r.stderr and "Traceback" not in r.stderr
    r = gridbus("bridge", "--site", "A", "--listen", "tls/127.0.0.1:7447", env=env)
    assert r.returncode == 2 and "--cert, --key and --ca" in r.stderr
    r = gridbus("bridge", "--site", "A/B", "--listen", "tls/127.0.0.1:7447", *certs, env=env)
    assert r.returncode == 2 and "site name" in r.stderr
    r = gridbus("bridge", "--site", "A", "--listen", "tls/127.0.0.1:7447", *certs,
                "--max-frequency", "Breaker_Command=1", env=env)  # fmt: skip
    assert r.returncode == 2 and "never dropped" in r.stderr


def test_bridge_file_errors_name_file_and_line(tmp_path, pki):
    path = tmp_path / "site.toml"
    path.write_text('[bridge]\nsite = "A"\nlisten = ["tls/127.0.0.1:7447"]\n\n[in]\nallow = ["*"]\nblock = ["x"]\n')
    with pytest.raises(ConfigError, match=r"site.toml:7: unknown key 'block' in \[in\]"):
        load_file(path, BridgeConfig())
    path.write_text('[bridge]\nsite = "A"\n\n[rate]\n"*_Measurement" = -1\n')
    with pytest.raises(ConfigError, match=r"site.toml:5: .*finite number > 0"):
        load_file(path, BridgeConfig())
    path.write_text(
        f'[bridge]\nsite = "A"\nlisten = ["tls/127.0.0.1:7447"]\ncert = "{pki.sites["A"].cert}"\n'
        f'key = "{pki.sites["A"].key}"\nca = "{pki.ca.cert}"\n[in]\nallow = ["*", "Breaker_Command"]\n'
        '[rate]\n"*_Measurement" = 10\n'
    )
    config = load_file(path, BridgeConfig())
    config.check()
    assert config.policy.into.admits("Breaker_Command", "CB_1")
    assert not config.policy.into.admits("Generator_Command", "G_1")
    assert math.isclose(config.policy.rates.interval("Generator_Measurement"), 0.1)
    assert json.dumps(config.listen) == '["tls/127.0.0.1:7447"]' and os.path.isfile(config.tls.ca)


def test_bridge_certs_makes_a_ca_and_site_certificates(tmp_path, env):
    out = tmp_path / "pki"
    r = gridbus("bridge", "certs", "A", "B", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    for name in ("ca/ca.pem", "ca/ca.key", "A.pem", "A.key", "B.pem", "B.key"):
        assert (out / name).read_bytes().startswith(b"-----BEGIN"), name
    assert (out / "A.key").stat().st_mode & 0o077 == 0  # private keys are the owner's only
    config = BridgeConfig(site="A", listen=["tls/127.0.0.1:7447"])
    config.tls = TlsFiles(out / "A.pem", out / "A.key", out / "ca" / "ca.pem")
    config.check()
    again = gridbus("bridge", "certs", "C", "--out", str(out), env=env)  # the same CA signs C
    assert again.returncode == 0 and (out / "C.pem").is_file()


def test_a_command_older_than_its_lifespan_is_dropped_not_delivered_late(pki, sites):
    """The WAN is down longer than the command's lifespan (2 s): it never reaches A, and B says it expired."""
    a_dom, b_dom = sites
    wan = WanLink(port_for(a_dom, 2), port_for(a_dom))
    a = b = None
    try:
        a, b = _bridges(
            pki, sites, a_args=("--allow-in", "Breaker_Command"), b_args=("--allow-out", "Breaker_Command"),
            via=port_for(a_dom, 2),
        )  # fmt: skip
        with Bus(a_dom) as site_a, Bus(b_dom) as site_b:
            cmds = site_a.reader("CB", "Command")
            site_b.writer("CB_1", "State").write(status="OPEN")  # something to show the link works
            state_a = site_a.reader("CB_1", "State")
            assert wait_until(lambda: state_a.take(0) != [])
            wan.cut()
            site_b.command("CB_1", status="CLOSED")
            time.sleep(3.0)  # longer than the command's 2 s lifespan
            wan.restore()
            site_b.command("CB_2", status="CLOSED")  # a fresh one after the outage
            got = cmds.take_one(timeout=15)
            assert got is not None and got.id == "CB_2"
            time.sleep(1.0)
            assert [s.id for s in cmds.take(0)] == []  # the stale CB_1 command never arrives
    finally:
        done_b = stop(b) if b else {}
        stop(a) if a else None
        wan.close()
    assert done_b["commands_expired"] == 1 and done_b["commands_delivered"] == 1


def test_bridge_bench_reports_direct_and_bridged_figures(env, sites):
    a_dom, _ = sites
    r = gridbus(
        "bridge", "bench", "--domain", str(a_dom), "--count", "50", "--rate", "100", "--seconds", "0.5",
        "--port", str(port_for(a_dom, 5)), "--json", env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(row["path"].split()[0], row["measure"].split()[0]) for row in rows] == [
        ("direct", "one-way"), ("bridged", "one-way"), ("direct", "throughput"), ("bridged", "throughput"),
    ]  # fmt: skip
    assert rows[1]["count"] == 50 and rows[1]["lost"] < 50 and rows[1]["p50_us"] > 0
    assert rows[3]["delivered_per_s"] > 0 and "added_p50_us" in rows[1]
