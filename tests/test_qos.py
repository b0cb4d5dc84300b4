"""QoS XML: checked with file and line, base_name resolved, the topic map validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbus import Bus, QosError
from gridbus.qos import DEFAULT_QOS_FILE, QosLibrary, TopicMap, describe

PROFILE = """<?xml version="1.0"?>
<dds xmlns="http://www.omg.org/spec/DDS-XML">
  <qos_library name="lab">
{body}
  </qos_library>
</dds>
"""


def write(tmp_path: Path, body: str, name: str = "qos.xml") -> Path:
    path = tmp_path / name
    path.write_text(PROFILE.format(body=body))
    return path


def test_default_profiles_have_the_papers_policies():
    qos = TopicMap()
    measurement = describe(qos.writer_qos("Generator_Measurement"))
    assert measurement["reliability"] == "best_effort" and measurement["durability"] == "volatile"
    assert measurement["destination_order"] == "by_source_timestamp" and measurement["deadline"] == 1.0
    state = describe(qos.reader_qos("Breaker_State"))
    assert state["reliability"] == "reliable" and state["durability"] == "transient_local"
    assert state["history"] == {"kind": "keep_last", "depth": 1}
    command = describe(qos.writer_qos("Generator_Command"))
    assert command["lifespan"] == 2.0 and command["latency_budget"] == 0.0
    protection = describe(qos.writer_qos("Breaker_Protection"))
    assert protection["transport_priority"] == 100 and protection["reliability"] == "reliable"
    history = describe(qos.writer_qos("SmartMeter_Measurement"))
    assert history["history"]["depth"] == 1440 and history["durability"] == "transient_local"
    environment = describe(qos.writer_qos("PVEmulator_Measurement"))
    assert environment["latency_budget"] == 0.1


def test_base_name_inheritance_is_resolved(tmp_path):
    path = write(
        tmp_path,
        """
    <qos_profile name="base">
      <datawriter_qos>
        <reliability><kind>RELIABLE_RELIABILITY_QOS</kind></reliability>
        <history><kind>KEEP_LAST_HISTORY_QOS</kind><depth>5</depth></history>
      </datawriter_qos>
    </qos_profile>
    <qos_profile name="child" base_name="lab::base">
      <datawriter_qos>
        <history><kind>KEEP_LAST_HISTORY_QOS</kind><depth>9</depth></history>
      </datawriter_qos>
    </qos_profile>
    <qos_profile name="grandchild" base_name="lab::child">
      <datareader_qos><deadline><period><sec>2</sec><nanosec>0</nanosec></period></deadline></datareader_qos>
    </qos_profile>""",
    )
    library = QosLibrary(path)
    child = describe(library.writer_qos("lab::child"))
    assert child["reliability"] == "reliable", "inherited from base"
    assert child["history"]["depth"] == 9, "overridden by child"
    grandchild = library
    assert describe(grandchild.writer_qos("lab::grandchild"))["history"]["depth"] == 9
    assert describe(grandchild.reader_qos("lab::grandchild"))["deadline"] == 2.0


@pytest.mark.parametrize(
    "body, message",
    [
        (
            '<qos_profile name="a"><datawriter_qos><reliability><kind>SOMETIMES</kind>'
            "</reliability></datawriter_qos></qos_profile>",
            "kind 'SOMETIMES' is not one of",
        ),
        ('<qos_profile name="a"><datawriter_qos><speed/></datawriter_qos></qos_profile>', "unknown QoS policy <speed>"),
        (
            '<qos_profile name="a"><datawriter_qos><deadline><period><sec>soon</sec></period>'
            "</deadline></datawriter_qos></qos_profile>",
            "<sec> must be a non-negative integer",
        ),
        ('<qos_profile name="a" base_name="lab::missing"/>', "base_name 'lab::missing' is not a profile"),
        ('<qos_profile name="a" base_name="lab::b"/><qos_profile name="b" base_name="lab::a"/>', "base_name cycle"),
        ("<qos_profile><datawriter_qos/></qos_profile>", "needs a name attribute"),
        ('<qos_profile name="a"><writer_qos/></qos_profile>', "unknown element <writer_qos>"),
    ],
)
def test_bad_profiles_name_file_and_line(tmp_path, body, message):
    path = write(tmp_path, "    " + body)
    with pytest.raises(QosError) as err:
        QosLibrary(path)
    assert message in str(err.value)
    assert f"{path}:4" in str(err.value), str(err.value)


def test_malformed_xml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text('<?xml version="1.0"?>\n<dds>\n  <qos_library name="x">\n  </qos_libary>\n</dds>\n')
    with pytest.raises(QosError, match=r"broken\.xml:4: malformed XML"):
        QosLibrary(path)
    with pytest.raises(QosError, match=r"no-such\.xml: cannot read"):
        QosLibrary(tmp_path / "no-such.xml")


def test_topic_map_rejects_a_missing_profile(tmp_path):
    topics = tmp_path / "topics.xml"
    topics.write_text(
        f'<topics qos_file="{DEFAULT_QOS_FILE}">\n'
        '  <topic name="*_Measurement" profile="gridbus::measurement"/>\n'
        '  <topic name="*_State" profile="gridbus::nope"/>\n</topics>\n'
    )
    with pytest.raises(QosError) as err:
        TopicMap(topics)
    assert f"{topics}:3" in str(err.value) and "unknown QoS profile 'gridbus::nope'" in str(err.value)


@pytest.mark.integration
def test_unmapped_topic_is_a_clear_error(tmp_path, domain):
    topics = tmp_path / "topics.xml"
    topics.write_text(
        f'<topics qos_file="{DEFAULT_QOS_FILE}">\n  <topic name="*_State" profile="gridbus::state"/>\n</topics>\n'
    )
    with Bus(domain, topic_map=topics) as bus:
        bus.writer("CB_1", "State")
        with pytest.raises(QosError, match="no QoS profile for topic 'Generator_Measurement'"):
            bus.writer("G_1")


def test_exact_topic_names_win_over_patterns():
    qos = TopicMap()
    assert qos.profile_for("SmartMeter_Measurement") == "gridbus::history"
    assert qos.profile_for("Load_Measurement") == "gridbus::measurement"
