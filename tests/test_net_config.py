"""Unicast or multicast per topic, link settings: the parts that need no root."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from helpers import gridbus, gridbus_each

from gridbus.errors import NetError, QosError
from gridbus.net import Impairment
from gridbus.net.cyclone import MULTICAST_PARTITION, UNICAST_PARTITION, lan_config, transports
from gridbus.qos import TopicMap


def test_topic_map_says_multicast_for_measurements_unicast_otherwise():
    topics = TopicMap()
    assert topics.transport_for("Generator_Measurement") == "multicast"
    assert topics.transport_for("Breaker_Command") == "unicast"
    assert topics.transport_for("Breaker_State") == "unicast"
    assert topics.multicast_address == "239.255.0.2"


def test_qos_show_reports_the_transport(env):
    out = gridbus("qos", "show", "G_1", "--json", env=env, check=True)
    rows = {r["topic"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert rows["Generator_Measurement"]["transport"] == "multicast"
    assert rows["Generator_Command"]["transport"] == "unicast"


def test_generated_config_maps_each_topic_to_its_network_partition():
    per_topic = transports(TopicMap(), ["Generator_Measurement", "Breaker_Command"])
    xml = lan_config("eth0", "10.254.0.11", per_topic, "239.255.0.2")
    root = ET.fromstring(xml.encode())
    ns = {"c": "https://cdds.io/config"}
    parts = {p.get("Name"): p.get("Address") for p in root.iterfind(".//c:NetworkPartition", ns)}
    assert parts == {MULTICAST_PARTITION: "239.255.0.2", UNICAST_PARTITION: "10.254.0.11"}
    maps = [
        (m.get("DCPSPartitionTopic"), m.get("NetworkPartition")) for m in root.iterfind(".//c:PartitionMapping", ns)
    ]
    assert ("*.Generator_Measurement", MULTICAST_PARTITION) in maps
    assert ("*.Breaker_Command", UNICAST_PARTITION) in maps
    assert maps[-1] == ("*.*", UNICAST_PARTITION)  # anything else: unicast, never Cyclone's own choice
    forced = transports(TopicMap(), ["Generator_Measurement"], force="unicast")
    assert forced == {"Generator_Measurement": "unicast"}


def test_bad_transport_is_refused_with_file_and_line(tmp_path):
    qos = tmp_path / "topics.xml"
    library = TopicMap().library.path
    rule = '<topic name="*" profile="gridbus::measurement" transport="broadcast"/>'
    qos.write_text(f'<topics qos_file="{library}">\n  {rule}\n</topics>\n')
    with pytest.raises(QosError, match=r"topics.xml:2: transport 'broadcast'"):
        TopicMap(qos)
    qos.write_text(f'<topics qos_file="{TopicMap().library.path}" multicast_address="10.0.0.1"/>\n')
    with pytest.raises(QosError, match="not an IPv4 multicast address"):
        TopicMap(qos)


def test_link_settings_parse_and_refuse_nonsense():
    imp = Impairment.parse("delay=10ms,jitter=5ms,loss=2%,rate=1mbit")
    assert imp == Impairment(10, 5, 2, 1)
    assert imp.label() == "10 ms ± 5 ms, 2 % loss, 1 Mbit/s"
    assert Impairment().clean and not imp.clean
    for bad, match in (
        ("delay=x", "not a number"),
        ("speed=3", "expected one of"),
        ("loss=120", "above 100"),
        ("delay=-1", "negative"),
        ("delay=1,jitter=2", "larger than delay"),
        ("delay=nan", "finite"),
    ):
        with pytest.raises(NetError, match=match):
            Impairment.parse(bad)


def test_net_cli_bad_input_exits_2(env):
    fast, no_host, no_lan = gridbus_each(
        ("net", "up", "--impair", "h1:delay=fast"),
        ("net", "up", "--impair", "delay=1"),
        ("net", "run", "--lan", "gbnet1x1", "h1", "--", "true"),
        env=env,
    )
    assert fast.returncode == 2 and "gridbus: error: link setting" in fast.stderr
    assert no_host.returncode == 2 and "HOST:" in no_host.stderr
    assert no_lan.returncode == 2 and "no LAN 'gbnet1x1'" in no_lan.stderr


def test_net_config_prints_a_hosts_configuration_for_a_real_lan(env, tmp_path):
    out = gridbus("net", "config", "--interface", "enp3s0", "--address", "192.0.2.10", env=env, check=True)
    root = ET.fromstring(out.stdout.encode())
    ns = {"c": "https://cdds.io/config"}
    assert root.find(".//c:NetworkInterface", ns).get("name") == "enp3s0"
    parts = {p.get("Name"): p.get("Address") for p in root.iterfind(".//c:NetworkPartition", ns)}
    assert parts[UNICAST_PARTITION] == "192.0.2.10"
    # a map that sends commands multicast too
    topics = tmp_path / "topics.xml"
    library = TopicMap().library.path
    topics.write_text(
        f'<topics qos_file="{library}" multicast_address="239.255.9.9">\n'
        '  <topic name="*_Command" profile="gridbus::command" transport="multicast"/>\n'
        '  <topic name="*" profile="gridbus::state"/>\n</topics>\n'
    )
    out = gridbus(
        "net", "config", "--interface", "eth0", "--address", "192.0.2.11", "--topic-map", str(topics), env=env
    )
    assert 'DCPSPartitionTopic="*.Breaker_Command" NetworkPartition="gridbus-multicast"' in out.stdout
    assert 'Address="239.255.9.9"' in out.stdout
    for bad, message in (("300.1.2.3", "not an IPv4 address"), ("239.1.1.1", "own unicast address")):
        proc = gridbus("net", "config", "--interface", "eth0", "--address", bad, env=env)
        assert proc.returncode == 2 and message in proc.stderr
    proc = gridbus("net", "config", "--interface", "eth 0", "--address", "192.0.2.1", env=env)
    assert proc.returncode == 2 and "interface name" in proc.stderr


def test_a_stage_that_cannot_ask_to_die_with_its_parent_says_so(monkeypatch, caplog):
    """prctl refused (here: an option the kernel does not know): a warning, not silence."""
    from gridbus.net import stage

    monkeypatch.setattr(stage, "PR_SET_PDEATHSIG", -1)  # the real prctl answers EINVAL
    with caplog.at_level("WARNING", logger=stage.__name__):
        stage._die_with_parent()
    assert "cannot ask to die with the parent" in caplog.text and "Invalid argument" in caplog.text


def test_owner_alive_checks_the_start_time_when_one_is_recorded():
    """A PID reused by another process: alive, but with another start time, so not the owner."""
    import os
    import subprocess

    from gridbus.net import ns

    me = os.getpid()
    started = ns.start_time(me)
    assert started is not None and started > 0
    assert ns.owner_alive(me, started) and ns.owner_alive(me)  # no start time recorded: the PID says
    assert not ns.owner_alive(me, started + 1)
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    assert ns.start_time(gone.pid) is None and not ns.owner_alive(gone.pid)
