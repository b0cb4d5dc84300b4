"""On the wire: loopback-only by default, IDL scoped type names, XCDR1, and a
plain cyclonedds node (as a C/C++ node would) reading gridbus data."""

from __future__ import annotations

import time

import pytest

from gridbus import Bus, ConfigError, Registry
from gridbus.config import LOOPBACK_CONFIG, cyclone_config


def test_default_configuration_is_loopback_only(monkeypatch):
    monkeypatch.delenv("CYCLONEDDS_URI", raising=False)
    text = cyclone_config(None)
    assert '<NetworkInterface name="lo"/>' in text
    assert "<AllowMulticast>false</AllowMulticast>" in text and '<Peer address="127.0.0.1"/>' in text
    monkeypatch.setenv("CYCLONEDDS_URI", f"file://{LOOPBACK_CONFIG}")
    assert cyclone_config(None) is None, "a user's CYCLONEDDS_URI is respected"
    monkeypatch.setenv("CYCLONEDDS_URI", "file:///somewhere.xml")
    with pytest.raises(ConfigError, match="somewhere.xml.*CYCLONEDDS_URI.*does not exist"):
        cyclone_config(None)
    assert cyclone_config(LOOPBACK_CONFIG) == LOOPBACK_CONFIG.read_text()
    with pytest.raises(ConfigError, match="does not exist"):
        cyclone_config("/no/such/cyclone.xml")


def test_type_names_are_idl_scoped_and_final():
    for topic in Registry.default().topics():
        assert topic.type_name.count("::") == 2, topic.type_name
        assert topic.cls.__idl_annotations__.get("extensibility") == "final"
        sample = topic.build(f"{topic.object_type.prefix}_1")
        assert sample.serialize()[:2] == b"\x00\x01", "XCDR1 little endian (CDR_LE)"


@pytest.mark.integration
def test_a_plain_cyclonedds_reader_gets_gridbus_data(domain, partition):
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.sub import DataReader, Subscriber
    from cyclonedds.topic import Topic

    from gridbus.types.grid.Generator import Measurement

    with Bus(domain, partition=partition) as bus:
        # a foreign node: same domain, topic name and IDL type; nothing from gridbus but the type
        participant = DomainParticipant(domain)
        subscriber = Subscriber(participant, qos=Qos(Policy.Partition(partitions=[partition])))
        foreign = DataReader(
            subscriber,
            Topic(participant, "Generator_Measurement", Measurement),
            qos=Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(10)),
        )
        writer = bus.writer("G_5")
        got = []
        end = time.monotonic() + 5
        while not got and time.monotonic() < end:
            writer.write(f=60.0, Va=118.0)
            time.sleep(0.05)
            got = foreign.take(N=10)
    assert got and got[0].id == "G_5" and got[0].Va == 118.0
