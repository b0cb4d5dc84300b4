"""The generated codec against the binding's serializer, property by property.

For every topic type gridbus knows (the shipped IDL, whatever it holds today,
and a user IDL with nested structs, arrays, sequences of structs and of
doubles, enums), hypothesis draws valid samples: the codec's bytes must be
the binding's, decoding must give the sample back (floats compared by their
bits: NaN, ±inf, -0.0), big-endian data must decode, and malformed bytes must
raise CodecError, never anything else.
"""

import math
import struct
from dataclasses import dataclass
from typing import Any, Optional

import pytest
from cyclonedds.idl import IdlStruct, IdlUnion
from cyclonedds.idl import annotations as annotate
from cyclonedds.idl import types as t
from cyclonedds.idl._support import Endianness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbus import CodecError, GridbusError, Registry
from gridbus.codec import Codec, codec_for
from gridbus.codec.plan import Array, EnumOf, Node, Prim, PrimArray, PrimSeq, Seq, Text, plan_for

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

USER_IDL = """
module codectest {
  module parts {
    enum Mode { IDLE, RUN, TRIP };
    @final struct Point { double x; float y; int16 z; };
    @final struct Channel { string<8> name; Mode mode; sequence<double, 4> gains; octet raw[3]; };
  };
  module Rig {
    const string PREFIX = "RIG";
    const string TITLE = "Every member kind the codec covers";
    @final @topic
    struct Measurement {
      @key string<16> id;
      uint8 flag;
      ::codectest::parts::Point origin;
      double samples[3];
      octet raw[4];
      int32 counts[2];
      sequence<double> wave;
      sequence<::codectest::parts::Channel, 3> channels;
      sequence<::codectest::parts::Point> points;
      ::codectest::parts::Mode mode;
      boolean ok;
      int64 big;
      uint64 ubig;
      int8 tiny;
      uint16 u16;
      float f32;
      string note;
      sequence<string<4>, 2> tags;
      sequence<octet, 8> blob;
      ::codectest::parts::Mode modes[2];
      ::codectest::parts::Point corners[2];
      sequence<int16> shorts;
      sequence<boolean> flags;
    };
    @final @topic
    struct Tail { @key string<8> id; uint8 x; };
  };
};
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    reg = Registry.default()
    idl = tmp_path_factory.mktemp("idl") / "codectest.idl"
    idl.write_text(USER_IDL)
    reg.load_idl(idl)
    return reg


def all_topic_classes() -> list[Any]:
    return [topic.cls for topic in Registry.default().topics()]


# ------------------------------------------------------------------ strategies from the plan
_INTS = {"b": 8, "h": 16, "i": 32, "q": 64}


def _prim(code: str) -> st.SearchStrategy[Any]:
    if code == "?":
        return st.booleans()
    if code == "d":
        return st.one_of(st.floats(), st.sampled_from([math.nan, -0.0, math.inf, -math.inf, 5e-324, 1.8e308]))
    if code == "f":
        return st.one_of(st.floats(width=32), st.sampled_from([math.nan, -0.0, math.inf, -math.inf]))
    if code.lower() in _INTS:
        bits = _INTS[code.lower()]
        low, high = (0, 2**bits - 1) if code.isupper() else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0]))
    if code == "B":
        return st.integers(0, 255)
    raise AssertionError(code)


def _text(bound: int | None) -> st.SearchStrategy[str]:
    limit = bound if bound is not None else 40
    free = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=limit)
    fitted = free.map(lambda s: s.encode()[:limit].decode("utf-8", "ignore"))
    return st.one_of(fitted, st.just("x" * limit), st.just("é" * (limit // 2)))  # at the bound


def strategy(node: Node) -> st.SearchStrategy[Any]:
    """Valid values of ``node``."""
    if isinstance(node, Prim):
        return _prim(node.code)
    if isinstance(node, EnumOf):
        return st.sampled_from(list(node.cls))
    if isinstance(node, Text):
        return _text(node.bound)
    if isinstance(node, PrimSeq):
        most = min(node.bound or 12, 12)
        if node.octets:
            return st.one_of(st.binary(max_size=most), st.lists(st.integers(0, 255), max_size=most))
        return st.lists(_prim(node.code), max_size=most)
    if isinstance(node, PrimArray):
        if node.octets:
            return st.binary(min_size=node.length, max_size=node.length)
        return st.lists(_prim(node.code), min_size=node.length, max_size=node.length)
    if isinstance(node, Seq):
        return st.lists(strategy(node.element), max_size=min(node.bound or 3, 3))
    if isinstance(node, Array):
        return st.lists(strategy(node.element), min_size=node.length, max_size=node.length)
    members = {name: strategy(inner) for name, inner in node.members}
    return st.fixed_dictionaries(members).map(lambda values: node.cls(**values))


def canon(node: Node, value: Any) -> Any:
    """A value with floats as their bits, octets as bytes, enums as ints: what equality should mean."""
    if isinstance(node, Prim):
        return struct.pack("<" + node.code, value) if node.code in "df" else value
    if isinstance(node, EnumOf):
        return value if isinstance(value, int) else value.value
    if isinstance(node, Text):
        return value
    if isinstance(node, (PrimSeq, PrimArray)):
        if node.octets:
            return bytes(value)
        return tuple(canon(Prim(node.code, node.size), v) for v in value)
    if isinstance(node, (Seq, Array)):
        return tuple(canon(node.element, v) for v in value)
    return tuple(canon(inner, getattr(value, name)) for name, inner in node.members)


def zero(node: Node) -> Any:
    """The plainest valid value of ``node`` (gridbus's build leaves nested structs None)."""
    if isinstance(node, Prim):
        return False if node.code == "?" else 0
    if isinstance(node, EnumOf):
        return next(iter(node.cls))
    if isinstance(node, Text):
        return ""
    if isinstance(node, (PrimSeq, Seq)):
        return []
    if isinstance(node, PrimArray):
        return bytes(node.length) if node.octets else [zero(Prim(node.code, node.size))] * node.length
    if isinstance(node, Array):
        return [zero(node.element) for _ in range(node.length)]
    return node.cls(**{name: zero(inner) for name, inner in node.members})


def samples_of(cls: Any) -> st.SearchStrategy[Any]:
    return strategy(plan_for(cls))


# -------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("cls", all_topic_classes(), ids=lambda c: c.__idl_typename__)
def test_every_shipped_topic_type_is_on_the_fast_path(cls):
    codec = codec_for(cls)
    assert isinstance(codec, Codec) and codec.path == "fast" and codec.reason == ""
    assert codec_for(cls) is codec, "cached"


def check_round_trip(cls: Any, sample: Any) -> None:
    plan, codec = plan_for(cls), codec_for(cls)
    ours = codec.encode(sample)
    assert ours == sample.serialize(), "the binding's bytes, exactly"
    padded = codec.encode(sample, True)
    assert padded.startswith(ours) and len(padded) % 4 == 0 and len(padded) - len(ours) < 4
    back = codec.decode(ours)
    assert type(back) is cls
    assert list(vars(back)) == list(vars(cls.deserialize(ours))), "the same attributes, none missing"
    assert canon(plan, back) == canon(plan, sample)
    assert canon(plan, back) == canon(plan, cls.deserialize(ours)), "decodes as the binding does"
    assert canon(plan, codec.decode(memoryview(padded))) == canon(plan, sample)
    big = sample.serialize(endianness=Endianness.Big)
    assert big[:2] == b"\x00\x00"
    assert canon(plan, codec.decode(big)) == canon(plan, sample), "big-endian input"


@pytest.mark.parametrize("cls", all_topic_classes(), ids=lambda c: c.__idl_typename__)
@SETTINGS
@given(data=st.data())
def test_shipped_types_encode_as_the_binding_and_decode_back(cls, data):
    check_round_trip(cls, data.draw(samples_of(cls)))


def user_classes(registry: Registry) -> list[Any]:
    return [topic.cls for topic in registry.topics() if topic.cls.__idl_typename__.startswith("codectest")]


@SETTINGS
@given(data=st.data())
def test_a_user_idl_with_every_member_kind_round_trips(registry, data):
    classes = user_classes(registry)
    assert len(classes) == 2 and all(codec_for(c).path == "fast" for c in classes)
    cls = data.draw(st.sampled_from(classes))
    check_round_trip(cls, data.draw(samples_of(cls)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_truncated_at_every_byte_is_a_codec_error(registry, data):
    cls = data.draw(st.sampled_from(all_topic_classes() + user_classes(registry)))
    whole = data.draw(samples_of(cls)).serialize(endianness=data.draw(st.sampled_from(list(Endianness))))
    codec = codec_for(cls)
    for cut in range(len(whole)):
        with pytest.raises(CodecError, match=str(plan_for(cls).name)):
            codec.decode(whole[:cut])


def _error(decode: Any, data: bytes) -> str:
    with pytest.raises(CodecError) as caught:
        decode(data)
    return str(caught.value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_optimistic_decoder_reports_what_the_checked_one_does(registry, data):
    """``decode`` leaves fixed runs to unpack_from's own bound check and hands failures to the
    checked build: the error must be the checked build's, naming the member, at every cut."""
    from gridbus.codec.generate import checked_decoder

    cls = data.draw(st.sampled_from(all_topic_classes() + user_classes(registry)))
    whole = data.draw(samples_of(cls)).serialize(endianness=data.draw(st.sampled_from(list(Endianness))))
    checked = checked_decoder(plan_for(cls))
    assert canon(plan_for(cls), checked(whole)) == canon(plan_for(cls), codec_for(cls).decode(whole))
    for cut in range(len(whole)):
        assert _error(codec_for(cls).decode, whole[:cut]) == _error(checked, whole[:cut])


@SETTINGS
@given(data=st.data())
def test_garbage_is_a_codec_error_or_a_sample_never_a_crash(registry, data):
    cls = data.draw(st.sampled_from(all_topic_classes() + user_classes(registry)))
    valid = data.draw(samples_of(cls)).serialize()
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), max_size=6))
    mangled = bytearray(valid)
    for at, value in flips:
        mangled[at] = value
    for garbage in (bytes(mangled), data.draw(st.binary(max_size=200))):
        try:
            codec_for(cls).decode(garbage)
        except CodecError:
            pass


# ----------------------------------------------------------------------- malformed by hand
def build(object_id: str, role: str, registry: Registry | None = None, **fields: Any) -> Any:
    """A valid sample (built and checked by gridbus), then ``fields`` set as they are."""
    registry = registry or Registry.default()
    sample = registry.parse_id(object_id).topics[role].build(object_id)
    for name, value in fields.items():
        setattr(sample, name, value)
    return sample


def measurement_bytes() -> bytes:
    return build("G_1", "Measurement", f=60.0).serialize()


def test_a_string_length_past_the_end_names_type_and_field():
    from gridbus.types.grid.Generator import Measurement

    data = bytearray(measurement_bytes())
    data[4:8] = struct.pack("<I", 30)  # within string<32>
    with pytest.raises(CodecError, match=r"^grid::Generator::Measurement: id has length 30, past the end"):
        codec_for(Measurement).decode(bytes(data[:20]))


def test_an_over_bound_string_and_a_missing_nul_are_refused():
    from gridbus.types.grid.Generator import Measurement

    codec = codec_for(Measurement)
    long_id = b"G_" + b"9" * 38 + b"\x00"  # 40 bytes: over string<32>
    data = measurement_bytes()
    over = data[:4] + struct.pack("<I", len(long_id)) + long_id + bytes(100)
    with pytest.raises(CodecError, match=r": id has 40 bytes, over its bound of 32"):
        codec.decode(over)
    unterminated = bytearray(data)
    unterminated[4 + 4 + 3] = ord("x")  # "G_1" then the NUL at offset 11
    with pytest.raises(CodecError, match=r": id is not NUL-terminated"):
        codec.decode(bytes(unterminated))
    with pytest.raises(CodecError, match="over its bound of 32"):
        codec.encode(build("G_1", "Measurement", id="G_" + "1" * 31))


def test_a_bad_enum_value_is_refused():
    from gridbus.types.grid.Generator import State

    sample = build("G_1", "State")
    data = bytearray(sample.serialize())
    status_at = 4 + 4 + len(b"G_1\x00")  # already 4-aligned
    assert struct.unpack_from("<I", data, status_at)[0] == sample.status.value
    data[status_at : status_at + 4] = struct.pack("<I", 99)
    with pytest.raises(CodecError, match=r"Generator::State: status = 99 is not a value of Status"):
        codec_for(State).decode(bytes(data))


def test_a_sequence_count_past_the_end_is_refused_without_allocating_it():
    from gridbus.types.grid.Bench import Ping

    data = bytearray(Ping(id="BENCH_1", seq=1, payload=b"abc").serialize())
    count_at = len(data) - 3 - 4
    data[count_at : count_at + 4] = struct.pack("<I", 2**32 - 1)
    with pytest.raises(CodecError, match=r"Bench::Ping: .*payload"):
        codec_for(Ping).decode(bytes(data))


def test_a_user_sequence_over_its_bound_and_struct_count_past_the_end(registry):
    cls = next(c for c in user_classes(registry) if c.__name__ == "Measurement")
    sample = zero(plan_for(cls))
    sample.id, sample.tags = "RIG_1", ["a", "b", "c"]
    with pytest.raises(CodecError, match=r": tags has 3 items or bytes, over its bound of 2"):
        codec_for(cls).encode(sample)
    sample.tags, sample.big = [], "not a number"
    with pytest.raises(CodecError, match="Rig::Measurement.*big"):
        codec_for(cls).encode(sample)
    sample.big = 0
    none = codec_for(cls).encode(sample)
    sample.points = [zero(dict(plan_for(cls).members)["points"].element)]  # type: ignore[union-attr]
    one = bytearray(codec_for(cls).encode(sample))
    count_at = next(i for i, (a, b) in enumerate(zip(none, one, strict=False)) if a != b)  # 0 -> 1 points
    one[count_at : count_at + 4] = struct.pack("<I", 10**6)  # a million points announced, one there
    with pytest.raises(CodecError, match=r"Rig::Measurement: truncated at points"):
        codec_for(cls).decode(bytes(one))


def test_numpy_arrays_encode_as_lists_do(registry):
    import numpy as np

    cls = next(c for c in user_classes(registry) if c.__name__ == "Measurement")
    sample = zero(plan_for(cls))
    sample.id = "RIG_1"
    sample.wave, sample.shorts, sample.blob = [0.5 * i for i in range(300)], [-3, 7], b"\x01\x02"
    expected = sample.serialize()
    sample.wave, sample.shorts = np.array(sample.wave), np.array(sample.shorts, dtype=np.int64)
    sample.blob = np.array([1, 2], dtype=np.uint8)
    assert codec_for(cls).encode(sample) == expected
    back = codec_for(cls).decode(expected)  # 300 doubles: decoded through numpy
    assert back.wave == [0.5 * i for i in range(300)] and type(back.wave[0]) is float


# ------------------------------------------------------ classes that intercept attribute stores
@dataclass
@annotate.final
class Guarded(IdlStruct, typename="codectest.Guarded"):
    """A struct whose class checks its stores: decoding must go through them, not around."""

    id: t.bounded_str[8]
    x: t.float64

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        object.__setattr__(self, "stores", getattr(self, "stores", 0) + 1)


def test_a_class_with_its_own_setattr_is_built_through_init():
    from gridbus.types.grid.Generator import Measurement

    assert plan_for(Measurement).plain_init, "a plain idlc dataclass is filled without __init__"
    assert not plan_for(Guarded).plain_init
    data = Guarded(id="GD_1", x=-2.5).serialize()
    back = codec_for(Guarded).decode(data)
    assert (back.id, back.x, back.stores) == ("GD_1", -2.5, 2)
    assert codec_for(Guarded).encode(back) == data


# -------------------------------------------------------------------- the binding's path
@dataclass
@annotate.appendable
class Appendable(IdlStruct, typename="codectest.Appendable"):
    id: t.bounded_str[16]
    x: t.int32


@dataclass
@annotate.final
class WithOptional(IdlStruct, typename="codectest.WithOptional"):
    id: t.bounded_str[16]
    x: Optional[t.int32]  # noqa: UP045 - the binding reads typing.Optional


@annotate.final
class Choice(IdlUnion, discriminator=t.int32, typename="codectest.Choice"):
    a: t.case[1, t.int32]
    b: t.case[2, t.float64]


@dataclass
@annotate.final
class WithUnion(IdlStruct, typename="codectest.WithUnion"):
    id: t.bounded_str[16]
    choice: Choice


@pytest.mark.parametrize(
    ("cls", "sample", "why"),
    [
        (Appendable, Appendable(id="A_1", x=3), "XCDR2"),
        (WithOptional, WithOptional(id="O_1", x=None), "XCDR2"),
        (WithUnion, WithUnion(id="U_1", choice=Choice(a=5)), "choice"),
    ],
    ids=["appendable", "optional", "union"],
)
def test_types_the_codec_does_not_cover_use_the_binding(cls, sample, why):
    codec = codec_for(cls)
    assert codec.path == "binding" and why in codec.reason
    data = codec.encode(sample)
    assert data == sample.serialize() and len(codec.encode(sample, True)) % 4 == 0
    assert codec.decode(data) == sample
    with pytest.raises(CodecError, match=cls.__idl_typename__.replace(".", "::")):
        codec.decode(data[:5])


def test_the_escape_hatch_puts_every_type_on_the_binding(monkeypatch):
    from gridbus.types.grid.Generator import Measurement

    monkeypatch.setenv("GRIDBUS_CODEC", "binding")
    codec = codec_for(Measurement)
    assert codec.path == "binding" and "GRIDBUS_CODEC=binding" in codec.reason
    sample = build("G_1", "Measurement", f=50.0)
    assert codec.decode(codec.encode(sample)) == sample
    monkeypatch.delenv("GRIDBUS_CODEC")
    assert codec_for(Measurement).path == "fast"


def test_codec_error_is_a_gridbus_error():
    assert issubclass(CodecError, GridbusError) and issubclass(CodecError, ValueError)


# -------------------------------------------------------------- the historian's rows
def _nulls(value):
    """NaN and inf as null, in sequences and nested structs too (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    return value


@SETTINGS
@given(data=st.data())
def test_the_historian_row_json_is_what_json_dumps_writes(registry, data):
    """The recorder formats rows with generated code (rowjson); the text must stay json.dumps's,
    with NaN and inf as null (checked against this test's own cleaner, not the library's)."""
    import json

    from gridbus.historian.tap import Decoder
    from gridbus.model import _plain

    topic = data.draw(st.sampled_from(registry.topics()))
    sample = data.draw(samples_of(topic.cls))
    raw = sample.serialize()
    object_id, name, source, reception, text = Decoder(registry)((topic.name, 1.5, 2.5, raw))
    values = {k: _plain(v) for k, v in vars(codec_for(topic.cls).decode(raw)).items() if k != "id"}
    clean = {k: _nulls(v) for k, v in values.items()}
    assert (object_id, name, source, reception) == (sample.id, topic.name, 1.5, 2.5)
    assert text == json.dumps(clean, separators=(",", ":"))
