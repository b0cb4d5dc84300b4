"""Profiles are checked when loaded: every mistake is ``file:line: reason``, never ignored."""

from __future__ import annotations

import pytest

from gridbus.translators.profile import ProfileError, load_profile, profile_dir

F_REF = 'f_ref = { register = 400002, type = "int16", scale = 333.33333, min = 0.0, max = 60.0 }'

# (edits to drive-acs-like.toml, text of the line the error must point at, reason)
BAD = {
    "pdu-address-as-register": ([(F_REF, F_REF.replace("400002", "8193"))], "f_ref =", "8193 is not a register number"),
    "input-register-written": (
        [(F_REF, F_REF.replace("400002", "300002"))],
        "f_ref =",
        "input register, which cannot be written",
    ),
    "32-bit-by-fc6": (
        [
            ("write_function = 16", "write_function = 6"),
            ('type = "int16", scale = 333.33333, min', 'type = "int32", scale = 333.33333, min'),
        ],
        "f_ref =",
        "which write_function = 6 cannot write: use 16",
    ),
    "write-function": ([("write_function = 16", "write_function = 5")], "write_function", "use 6 or 16"),
    "text-key-in-modbus": (
        [('stop = { word = "control", clear = [3] }', 'stop = { send = "STOP" }')],
        "stop =",
        "text-protocol keys",
    ),
    "commands-overlap": ([("register = 400003, type", "register = 400002, type")], "P_ref =", "overlap f_ref"),
    "status-overlap": (
        [("fault_code = { register = 400401 }", "fault_code = { register = 400107 }")],
        "fault_code =",
        "overlap P",
    ),
    "same-bit-twice": (
        [("at_speed = { register = 400051, bit = 8 }", "at_speed = { register = 400051, bit = 3 }")],
        "at_speed =",
        "overlap fault",
    ),
    "heartbeat-without-interval": ([("interval = 0.2\n", "")], "[watchdog]", "a heartbeat needs interval"),
    "heartbeat-slower-than-timeout": (
        [("interval = 0.2", "interval = 2.0")],
        "interval =",
        "not shorter than the drive's timeout",
    ),
    "heartbeat-on-a-command": ([("register = 400010", "register = 400003")], "[watchdog]", "overlap"),
    "unknown-word": (
        [('start = { word = "control"', 'start = { word = "ctrl"')],
        "start =",
        "word 'ctrl' is not in [words]",
    ),
    "bits-set-and-cleared": (
        [('reverse = { word = "control", set = [11] }', 'reverse = { word = "control", set = [11], clear = [11] }')],
        "reverse =",
        "both set and cleared",
    ),
    "held-bit-cleared": (
        [("clear = [3] }", "clear = [3, 10] }")],
        "stop =",
        "clears bit(s) [10] that word control holds set",
    ),
    "pulse-without-set": (
        [
            (
                'reset = { word = "control", set = [7], pulse = 0.1 }',
                'reset = { word = "control", clear = [7], pulse = 0.1 }',
            )
        ],
        "reset =",
        "pulse clears the set bits",
    ),
    "action-without-value": (
        [('stop = { word = "control", clear = [3] }', "stop = { address = 7 }")],
        "stop =",
        "an action carries no number",
    ),
    "enum-without-map": ([(', map = { 0 = "FORWARD", 1 = "REVERSE" }', "")], "direction =", "needs map"),
    "enum-member-unknown": ([('1 = "REVERSE"', '1 = "BACKWARD"')], "direction =", "map names BACKWARD"),
    "bit-of-a-32-bit-value": (
        [('type = "int32", word_order = "little", scale = 10.0 }', 'type = "int32", bit = 1 }')],
        "P =",
        "bit picks a bit of one 16-bit word",
    ),
    "unknown-type": (
        [('P = { register = 400106, type = "int32"', 'P = { register = 400106, type = "int48"')],
        "P =",
        "type 'int48' is not known",
    ),
    "unknown-status": ([("at_speed = {", "at_sped = {")], "at_sped =", "[status] at_sped: not a status value"),
    "word-unused": (
        [("[words]", "[words]\nspare = { address = 300 }")],
        "spare =",
        "no command sets or clears its bits",
    ),
}


@pytest.mark.parametrize("edits, where, reason", list(BAD.values()), ids=list(BAD))
def test_bad_drive_profiles_name_file_line_and_reason(tmp_path, edits, where, reason):
    text = (profile_dir() / "drive-acs-like.toml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and reason in message, message
    line = int(message.split(":")[1])
    assert where in text.splitlines()[line - 1], (message, text.splitlines()[line - 1])


def test_modbus_keys_in_a_text_profile_are_refused(tmp_path):
    text = (profile_dir() / "speed-controller-ascii.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text.replace('start = { send = "RUN" }', 'start = { send = "RUN", address = 5 }'))
    with pytest.raises(ProfileError, match=r"bad.toml:\d+: \[commands\] start: address: modbus-rtu keys"):
        load_profile(path)
    path.write_text(text + "\n[watchdog]\ninterval = 1.0\n")
    with pytest.raises(ProfileError, match=r"\[watchdog\] is for modbus-rtu profiles"):
        load_profile(path)


def test_register_numbers_and_pdu_addresses_are_told_apart():
    from gridbus.translators.registers import decode, encode, register_number

    profile = load_profile("drive-acs-like")
    assert profile.words["control"].address == 0  # register 400001 = holding register 1 = PDU 0
    assert profile.commands["f_ref"].address == 1 and profile.status["fault_code"].address == 400
    assert register_number(40102) == ("holding", 101) and register_number(30001) == ("input", 0)
    assert register_number(465536) == ("holding", 65535)
    for number in (0, 8193, 40000, 50000, 100000):
        with pytest.raises(ValueError, match="write address = "):
            register_number(number)
    assert encode(-2.0, "int32", "big") == [0xFFFF, 0xFFFE] and encode(-2.0, "int32", "little") == [0xFFFE, 0xFFFF]
    assert decode(encode(50.25, "float32", "little"), "float32", "little") == 50.25
    assert decode([0x0001, 0x0000], "uint32", "little") == 1.0
