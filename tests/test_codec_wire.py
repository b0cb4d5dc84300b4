"""The fast path on the wire: gridbus on its generated codec against plain
cyclonedds-python processes (the binding's own serializer) both ways, and
``gridbus types`` saying which path each type takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import gridbus

from gridbus import Bus
from gridbus.codec import codec_for
from gridbus.config import LOOPBACK_CONFIG

# A plain cyclonedds-python node: nothing of gridbus but the generated type and, for the
# writer, the QoS a gridbus reader expects (a reader's deadline needs a writer's offer).
FOREIGN_WRITER = """
import sys, time, math
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter, Publisher
from cyclonedds.topic import Topic
from gridbus.qos import TopicMap
from gridbus.types.grid.Generator import Measurement

domain, partition = int(sys.argv[1]), sys.argv[2]
participant = DomainParticipant(domain)
publisher = Publisher(participant, qos=Qos(Policy.Partition(partitions=[partition])))
writer = DataWriter(
    publisher, Topic(participant, "Generator_Measurement", Measurement),
    qos=TopicMap().writer_qos("Generator_Measurement"),
)
print("ready", flush=True)
for i in range(200):  # until the reader has what it needs (it kills us), at most 10 s
    writer.write(Measurement(id="G_7", Ia=float(i), Ib=-0.0, Ic=math.inf, Va=-math.inf, Vb=math.nan,
                             Vc=1e-310, f=50.0, P=1e300, Q=-1.5, speed=0.0, angle=3.25))
    time.sleep(0.05)
"""

FOREIGN_READER = """
import sys, time
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.sub import DataReader, Subscriber
from cyclonedds.topic import Topic
from gridbus.types.grid.Bench import Ping
from gridbus.types.grid.Generator import State

domain, partition = int(sys.argv[1]), sys.argv[2]
participant = DomainParticipant(domain)
subscriber = Subscriber(participant, qos=Qos(Policy.Partition(partitions=[partition])))
qos = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(10))
states = DataReader(subscriber, Topic(participant, "Generator_State", State), qos=qos)
pings = DataReader(subscriber, Topic(participant, "Bench_Ping", Ping), qos=qos)
print("ready", flush=True)
end = time.monotonic() + 10
state = ping = None
while time.monotonic() < end and (state is None or ping is None):
    for s in states.take(N=10):
        state = s
    for p in pings.take(N=10):
        ping = p
    time.sleep(0.02)
if state is not None and ping is not None:
    print(state.id, state.status.name, state.mode.name, state.sync, ping.seq, len(ping.payload),
          sum(ping.payload) % 251, flush=True)
"""


def foreign(script: str, domain: int, partition: str) -> subprocess.Popen:
    env = {"CYCLONEDDS_URI": f"file://{LOOPBACK_CONFIG}", "PATH": "/usr/bin:/bin"}
    env |= {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(domain), partition],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise AssertionError(f"foreign node did not start: {line} {proc.stderr.read() if proc.stderr else ''}")
    return proc


@pytest.mark.integration
def test_a_gridbus_reader_on_the_fast_path_reads_a_plain_cyclonedds_writer(domain, partition):
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("G_7")
        codec = codec_for(reader._sources[0].topic.cls)
        assert codec.path == "fast" and reader._sources[0].deserialize is codec.decode
        proc = foreign(FOREIGN_WRITER, domain, partition)
        try:
            got = None
            end = time.monotonic() + 10
            while got is None and time.monotonic() < end:
                got = reader.take_one(timeout=0.5)
        finally:
            proc.kill()
            proc.wait(timeout=5)
    assert got is not None, "nothing arrived from the plain cyclonedds writer"
    assert got.id == "G_7" and got.source_time_ns > 0
    assert str(got.Ib) == "-0.0" and got.Ic == float("inf") and got.Va == float("-inf") and got.Vb != got.Vb
    assert (got.Vc, got.f, got.P, got.Q, got.angle) == (1e-310, 50.0, 1e300, -1.5, 3.25)


@pytest.mark.integration
def test_a_plain_cyclonedds_reader_reads_a_gridbus_writer_on_the_fast_path(domain, partition):
    proc = foreign(FOREIGN_READER, domain, partition)
    try:
        with Bus(domain, partition=partition) as bus:
            state, ping = bus.writer("G_3", "State"), bus.writer("BENCH_1", "Ping")
            assert state.codec_path == "fast" and ping.codec_path == "fast"
            payload = bytes(range(256)) * 64  # 16 KiB, a DAQ board's raw cycle
            end = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < end:
                state.write(status="RUNNING", mode="POWER", sync=True)
                ping.write(seq=42, payload=payload)
                time.sleep(0.05)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert out.split() == ["G_3", "RUNNING", "POWER", "True", "42", str(len(payload)), str(sum(payload) % 251)], err


def test_types_says_which_path_each_type_takes(env):
    out = gridbus("types", "--json", env=env, check=True).stdout.splitlines()
    topics = [t for line in out for t in json.loads(line)["topics"]]
    assert topics and all(t["codec"] == "fast" and t["codec_reason"] == "" for t in topics)
    forced = gridbus("types", "G", "--json", env=env | {"GRIDBUS_CODEC": "binding"}, check=True).stdout
    assert {t["codec"] for t in json.loads(forced)["topics"]} == {"binding"}
    assert "GRIDBUS_CODEC=binding" in forced
    assert "codec: fast" in gridbus("types", "G", env=env, check=True).stdout
    assert "codec: fast" in gridbus("types", "G", env=env | {"GRIDBUS_CODEC": "fast"}, check=True).stdout


@pytest.mark.parametrize("value", ["bindng", "slow"])
def test_a_mistyped_codec_choice_is_an_error(env, value):
    """A typo in GRIDBUS_CODEC must not silently keep the fast path."""
    done = gridbus("types", "G", env=env | {"GRIDBUS_CODEC": value})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"gridbus: error: GRIDBUS_CODEC='{value}': give one of fast, binding" in done.stderr


@pytest.mark.integration
def test_a_reader_drops_a_malformed_sample_and_goes_on(domain, partition, caplog):
    """Cyclone refuses most malformed bytes itself (a bad enum, a bad length); text that is not
    UTF-8 gets through it, and the reader drops that sample, says so and goes on."""
    import struct

    from gridbus import CodecError, _cyclone

    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("EV_x")
        writer = bus.writer("EV_x", "Log")
        writer.wait_for_readers(1)
        good = writer.build(kind="TEST", detail="abc").serialize()
        bad_enum = bytearray(good)
        assert struct.unpack_from("<I", bad_enum, 16)[0] == 0  # severity, after "EV_x\0" and padding
        bad_enum[16:20] = struct.pack("<I", 99)
        with pytest.raises(Exception, match="BAD_PARAMETER"):
            _cyclone.write_serialized(writer._dds, bytes(bad_enum), time.time_ns())
        not_utf8 = good.replace(b"abc\x00", b"a\xffc\x00")
        with pytest.raises(CodecError, match="detail is not valid UTF-8"):
            codec_for(writer.topic.cls).decode(not_utf8)
        _cyclone.write_serialized(writer._dds, not_utf8, time.time_ns())
        writer.write(kind="TEST", detail="fine")
        got = []
        end = time.monotonic() + 5
        while not got and time.monotonic() < end:
            got = reader.take(timeout=0.5)
    assert [s.detail for s in got] == ["fine"]
    assert reader.malformed == 1
    assert "dropped a malformed sample" in caplog.text and "not valid UTF-8" in caplog.text


@pytest.mark.integration
def test_the_escape_hatch_keeps_the_bus_working_on_the_binding(domain, partition, monkeypatch):
    monkeypatch.setenv("GRIDBUS_CODEC", "binding")
    with Bus(domain, partition=partition) as bus:
        reader = bus.reader("SM_2")
        writer = bus.writer("SM_2")
        assert writer.codec_path == "binding"
        assert reader._sources[0].deserialize is codec_for(writer.topic.cls).decode
        writer.wait_for_readers(1)
        got = None
        end = time.monotonic() + 5
        while got is None and time.monotonic() < end:
            writer.write(V_rms=231.5)
            got = reader.take_one(timeout=0.2)
    assert got is not None and got.V_rms == 231.5 and got.id == "SM_2"
