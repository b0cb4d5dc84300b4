"""A device's desired settings: what the bus asked for, what is still to be written, what the
device accepted.

The newest value of each command wins and commands keep their order of arrival;
commands of one enum field exclude each other (START drops a pending STOP,
REVERSE a FORWARD); a one-shot (RESET, SYNCHRONIZE) is obeyed once and never
written again after a reconnect or resync.  What the device refused falls
back to what it last accepted, so a reconnect writes that, not the refused
value and not nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .profile import Profile, action_member
from .protocols import is_set

if TYPE_CHECKING:  # a board over Zenoh has no cyclonedds: its topics are BoardTopics, alike
    from ..model import TopicType

_OPPOSITE = {
    "start": "stop",
    "stop": "start",
    "forward": "reverse",
    "reverse": "forward",
    "speed": "power",
    "power": "speed",
}
ONE_SHOT = ("reset", "synchronize")


def unmapped_commands(profile: Profile, topic: TopicType) -> list[str]:
    """The command fields (and enum members) of ``topic`` that ``profile`` does not map."""
    missing = []
    for name, info in topic.fields.items():
        if name == "id":
            continue
        if info.kind == "enum" and info.enum is not None:
            missing += [f"{name}={m.name}" for m in list(info.enum)[1:] if m.name.lower() not in profile.commands]
        elif name not in profile.commands:
            missing.append(name)
    return missing


class DesiredSettings:
    def __init__(self, profile: Profile, topic: TopicType) -> None:
        self.profile, self.topic = profile, topic
        self.desired: OrderedDict[str, float | None] = OrderedDict()  # command name -> value
        self.pending: OrderedDict[str, int] = OrderedDict()  # names to write -> attempts
        self.confirmed: dict[str, float | None] = {}  # what the device last accepted

    def accept(self, fields: dict[str, Any]) -> None:
        """Take one (checked) bus command: its enum members (action=START, direction=REVERSE)
        and its set-points."""
        for name in self.profile.commands:
            member = action_member(self.topic, name)
            if member is not None:
                if fields.get(member[0]) == member[1]:
                    self.want(name, None)
                    opposite = _OPPOSITE.get(name, "")
                    self.desired.pop(opposite, None)
                    self.pending.pop(opposite, None)
            elif name in self.topic.fields and is_set(fields.get(name)):
                self.want(name, float(fields[name]))

    def want(self, name: str, value: float | None) -> None:
        self.desired[name] = value
        self.desired.move_to_end(name)
        self.pending[name] = 0
        self.pending.move_to_end(name)

    def applied(self, name: str, value: float | None) -> None:
        """The device took ``name``."""
        self.pending.pop(name, None)
        if name in ONE_SHOT:
            self.desired.pop(name, None)  # a reset is obeyed once, never re-applied after a reconnect
        else:
            self.confirmed[name] = value
            self.confirmed.pop(_OPPOSITE.get(name, ""), None)

    def refused(self, name: str) -> None:
        """The device (or the translator) refused ``name``: what it last accepted stays desired."""
        self.pending.pop(name, None)
        self.desired.pop(name, None)
        for key in (name, _OPPOSITE.get(name)):
            if key in self.confirmed and key not in self.desired:
                self.desired[key] = self.confirmed[key]

    def requeue(self) -> None:
        """Write every desired setting again (the device may have lost everything)."""
        for name in self.desired:
            self.pending[name] = 0
