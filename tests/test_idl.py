"""The data model: generated types are current, idlc runs, IDL errors are clear,
and a user's own IDL object type works through the same API and CLI."""

from __future__ import annotations

import filecmp
import json
import struct
from pathlib import Path

import pytest
from helpers import ROOT, gridbus, peer

from gridbus import Bus, IdlError, Registry
from gridbus.idl import generate, make_loadable, read_metadata

TABLE_1 = {  # object type prefix -> fields the paper's Table 1 (and DESIGN.md) require
    "G": {"Ia", "Ib", "Ic", "Va", "Vb", "Vc", "f", "P", "Q", "sync", "status"},
    "CB": {"status"},
    "L": {"P", "Q"},
    "Bus": {"Va", "Vb", "Vc"},
    "TL": {"Ia", "Ib", "Ic"},
    "MG": {"Ia", "Ib", "Ic", "Va", "Vb", "Vc", "f", "P", "Q", "Vdc", "Idc", "mode"},
    "SM": {"Ia", "Ib", "Ic", "Va", "Vb", "Vc", "PA", "QA", "PA_minute", "PA_hour", "V_rms", "I_rms"},
    "PV_EM": {"Ir", "Temp", "P", "V", "I"},
    "W_EM": {"Ws", "Ia", "Ib", "Ic", "Va", "Vb", "Vc", "f", "P", "Q"},
    "ES": {"V", "I", "SoC", "Temp"},
}

USER_IDL = """
module lab {
  module HeatPump {
    const string PREFIX = "HP";
    const string TITLE = "Heat pump";
    @final @topic
    struct Measurement {
      @key string<32> id;
      @unit("W") @min(0) double P;
      @unit("degC") double T_out;   // outlet water temperature
    };
    @final @topic
    struct Command {
      @key string<32> id;
      @unit("degC") double T_ref;
    };
  };
};
"""


@pytest.mark.integration
def test_committed_types_are_current(tmp_path):
    """Regenerating from idl/ must give exactly what is committed under gridbus/types."""
    generate(sorted((ROOT / "idl").glob("*.idl")), tmp_path)
    committed = ROOT / "src" / "gridbus" / "types"
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "generation produced nothing"
    stale = [
        str(rel)
        for rel in fresh
        if not (committed / rel).exists() or not filecmp.cmp(tmp_path / rel, committed / rel, shallow=False)
    ]
    ours = {p.relative_to(committed) for p in committed.rglob("*.py") if "__pycache__" not in p.parts}
    extra = [str(p) for p in ours - set(fresh) if p != Path("__init__.py")]
    assert not stale and not extra, f"run `gridbus idl generate`: stale {stale}, extra {extra}"


def test_every_table1_object_has_its_fields():
    registry = Registry.default()
    for prefix, wanted in TABLE_1.items():
        obj = registry.by_prefix(prefix)
        have = {f for t in obj.topics.values() for f in t.fields}
        assert wanted <= have, f"{prefix} misses {wanted - have}"
    assert "Command" in registry.by_prefix("ES").topics and "I_ref" in registry.by_prefix("ES").topic("Command").fields


def test_units_come_from_the_idl():
    g = Registry.default().by_prefix("G").topic("Measurement")
    assert g.fields["f"].unit == "Hz" and g.fields["f"].min == 0
    assert g.fields["P"].unit == "W" and g.fields["Va"].unit == "V"


def test_make_loadable_marks_the_dynamic_segment_writable():
    # A minimal ELF64 header with two program headers: DYNAMIC at 0x3fffd0 (0x220 long)
    # and a read-only LOAD covering 0x400000..0x401000, as in the wheel's idlc.
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, 2)
    dyn = struct.pack("<IIQQQQQQ", 2, 6, 0xFD0, 0x3FFFD0, 0x3FFFD0, 0x220, 0x220, 8)
    load = struct.pack("<IIQQQQQQ", 1, 4, 0x1EE6, 0x400EE6, 0x400EE6, 0x952, 0x952, 0x1000)
    fixed = make_loadable(bytes(header) + dyn + load)
    flags = struct.unpack_from("<I", fixed, 64 + 56 + 4)[0]
    assert flags == 4 | 2
    with pytest.raises(IdlError):
        make_loadable(b"not an elf at all" + bytes(64))


def test_metadata_reader_reads_units_ranges_and_comments():
    meta = read_metadata(USER_IDL)
    fields = meta["lab::HeatPump::Measurement"]
    assert fields["P"] == {"unit": "W", "min": 0.0}
    assert fields["T_out"]["doc"] == "outlet water temperature"


@pytest.mark.integration
def test_malformed_idl_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.idl"
    bad.write_text("module lab {\n  struct Broken {\n    double x\n  };\n};\n")
    with pytest.raises(IdlError) as err:
        Registry.default().load_idl(bad)
    assert "bad.idl:4" in str(err.value) or "bad.idl:3" in str(err.value)


def test_idl_without_key_is_rejected(tmp_path):
    bad = tmp_path / "nokey.idl"
    bad.write_text(
        'module nokey { module Thing { const string PREFIX = "TH";\n@final struct Measurement { double x; }; }; };\n'
    )
    with pytest.raises(IdlError, match="must start with `@key string<N> id;`"):
        Registry.default().load_idl(bad)


@pytest.mark.integration
def test_user_idl_through_api_and_cli(tmp_path, domain, partition, env):
    """The paper's expandability: a new object type without editing gridbus."""
    idl = tmp_path / "heatpump.idl"
    idl.write_text(USER_IDL)
    types = gridbus("types", "HP", "--json", "--idl", str(idl), env=env, check=True)
    described = json.loads(types.stdout)
    assert described["prefix"] == "HP"
    assert described["topics"][0]["type"] in ("lab::HeatPump::Measurement", "lab::HeatPump::Command")

    with Bus(domain, partition=partition, idl=[idl]) as bus:
        reader = bus.reader("HP_1")
        other = peer(
            "measure",
            "--domain",
            str(domain),
            "--partition",
            partition,
            "--id",
            "HP_1",
            "--idl",
            str(idl),
            "--count",
            "5",
            "P=1500",
            "T_out=45.5",
            "--linger",
            "0.5",
        )
        got = reader.take(timeout=5.0)
        other.wait(timeout=20)
    assert got and got[0].id == "HP_1" and got[0].T_out == 45.5 and got[0].P == 1500.0

    bad = gridbus("publish", "HP_1", "P=-3", "--idl", str(idl), env=env)
    assert bad.returncode == 2 and "HP_1.P" in bad.stderr and "minimum" in bad.stderr
