"""QoS files, topic maps and Cyclone configurations read with the standard library (issue 12, item 4).

lxml cost the DAQ agent about 4 MB of RSS; gridbus.xmltree (expat) keeps
what lxml gave: each element's line for ``file:line`` errors, and no entity
expansion (lxml refused external entities and entity amplification; expat
refuses every entity declaration, as defusedxml does).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from gridbus import ConfigError, QosError
from gridbus.config import cyclone_config
from gridbus.qos import QosLibrary
from gridbus.xmltree import XmlError, line_of, local_name, parse

HISTORY = "<history><kind>KEEP_LAST_HISTORY_QOS</kind><depth>{depth}</depth></history>"


def test_elements_know_their_line_and_namespace():
    root = parse(
        b'<?xml version="1.0"?>\n<dds xmlns="urn:x">\n  <!-- a comment -->\n  <a n="1">\n    <b/>t</a>\n</dds>\n'
    )
    assert (local_name(root), line_of(root), root.tag) == ("dds", 2, "{urn:x}dds")
    (a,) = list(root)  # the comment is dropped
    assert (local_name(a), line_of(a), a.get("n"), line_of(a[0]), a[0].tail) == ("a", 4, "1", 5, "t")
    with pytest.raises(XmlError) as err:
        parse(b"<dds>\n<a>\n</b>\n</dds>")
    assert err.value.line == 3 and "mismatched tag" in err.value.reason


ENTITY_FILES = {
    "internal": '<!DOCTYPE dds [\n<!ENTITY lib "lab">\n]>\n<dds>{body}</dds>',
    "external": '<!DOCTYPE dds [\n<!ENTITY lib SYSTEM "file:///etc/passwd">\n]>\n<dds>{body}</dds>',
    "parameter": '<!DOCTYPE dds [\n<!ENTITY % p "x">\n]>\n<dds>{body}</dds>',
    "laughs": '<!DOCTYPE dds [\n<!ENTITY a "aaaaaaaaaa">\n<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n'
    "<dds>{body}</dds>",
}


@pytest.mark.parametrize("kind", sorted(ENTITY_FILES))
def test_a_qos_file_declaring_entities_is_refused_with_file_and_line(tmp_path, kind):
    body = '<qos_library name="&lib;"><qos_profile name="p"/></qos_library>'
    path = tmp_path / f"{kind}.xml"
    path.write_text(ENTITY_FILES[kind].format(body=body))
    with pytest.raises(QosError, match=rf"^{path}:2: malformed XML: the DTD declares the (parameter )?entity "):
        QosLibrary(path)


def test_an_undefined_entity_is_refused_and_a_plain_qos_file_still_loads(tmp_path):
    bad = tmp_path / "undefined.xml"
    bad.write_text('<dds>\n<qos_library name="&lib;"/>\n</dds>\n')
    with pytest.raises(QosError, match=rf"^{bad}:2: malformed XML: undefined entity"):
        QosLibrary(bad)
    external = tmp_path / "external.xml"  # never read: expat would drop an undefined &lib; in an attribute
    external.write_text(
        '<!DOCTYPE dds SYSTEM "http://127.0.0.1:9/x.dtd">\n<dds>\n<qos_library name="&lib;"/>\n</dds>\n'
    )
    with pytest.raises(QosError, match=rf"^{external}:1: malformed XML: the DOCTYPE names an external DTD"):
        QosLibrary(external)
    plain = tmp_path / "plain.xml"  # no namespace, a bare DOCTYPE: as before
    body = f"<datawriter_qos>{HISTORY.format(depth=3)}</datawriter_qos>"
    plain.write_text(
        f'<!DOCTYPE dds>\n<dds><qos_library name="x"><qos_profile name="p">{body}</qos_profile></qos_library></dds>'
    )
    assert QosLibrary(plain).writer_qos("x::p").asdict()["History"]["depth"] == 3  # type: ignore[index]


def test_a_cyclone_configuration_declaring_entities_is_refused(tmp_path):
    """Cyclone's own parser refuses an internal DTD subset ("Non specific error"); gridbus says where."""
    path = tmp_path / "cyclone.xml"
    path.write_text(ENTITY_FILES["external"].replace("dds", "CycloneDDS").format(body="&lib;"))
    with pytest.raises(ConfigError, match=rf"^{path}:2: not a Cyclone DDS configuration: .*declares the entity 'lib'"):
        cyclone_config(path)
    with pytest.raises(ConfigError, match=r"configuration text:1: .*undefined entity"):
        cyclone_config("<General>&lib;</General>")


@pytest.mark.integration
def test_a_daq_agent_process_never_loads_lxml(env, partition):
    """The agent run as users run it (CLI, QoS, Cyclone configuration, one second of publishing) without
    lxml, importlib.metadata or numpy.random: ~7 MB of RSS together, against a 50 MB budget."""
    config = ROOT / "examples" / "daq-agent.toml"
    argv = ["-X", "importtime", "-m", "gridbus.cli.main", "daq", "--config", str(config), "--partition", partition]
    out = subprocess.run(
        [sys.executable, *argv, "--duration", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")]
    assert "gridbus.qos" in imported and "gridbus.config" in imported and "gridbus.daq.agent" in imported
    assert [m for m in imported if m.split(".")[0] == "lxml" or m in ("importlib.metadata", "numpy.random")] == []


def test_the_version_is_still_there_when_asked_for():
    import gridbus

    assert gridbus.__version__ and gridbus.__version__[0].isdigit()


def test_the_shipped_files_parse_the_same_with_line_numbers():
    """Every element of the shipped QoS file has the line its start tag is on."""
    path = Path(QosLibrary().path)
    lines = path.read_text().splitlines()
    root = parse(path.read_bytes())
    for element in root.iter():
        assert f"<{local_name(element)}" in lines[line_of(element) - 1]
