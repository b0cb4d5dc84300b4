"""QoS profiles from XML, and which topic uses which.

Profiles are data: ``qos/gridbus_qos.xml`` (OMG DDS-XML) holds them and
``qos/topics.xml`` maps topic names to profiles.  Cyclone's ``QosProvider``
(11.0.1) turns a profile into policies, but it ignores ``base_name`` and its
errors carry neither file nor line.  So this module checks the XML itself
(``gridbus.xmltree``: the standard library's expat, reporting ``file:line``),
resolves inheritance by merging policy elements, and hands the resolved
document to ``QosProvider``.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclonedds.core import DDSException
from cyclonedds.qos import Policy, Qos
from cyclonedds.qos_provider import QosProvider

from .errors import QosError
from .files import read_bytes
from .resources import qos_dir
from .xmltree import Located, XmlError, line_of, parse
from .xmltree import local_name as _local

DATA_DIR = qos_dir()  # the shipped QoS files (gridbus.resources)
DEFAULT_QOS_FILE = DATA_DIR / "gridbus_qos.xml"
DEFAULT_TOPIC_MAP = DATA_DIR / "topics.xml"

ENTITY_QOS = (
    "datawriter_qos",
    "datareader_qos",
    "topic_qos",
    "publisher_qos",
    "subscriber_qos",
    "domainparticipant_qos",
)
_KINDS = {
    "reliability": {"BEST_EFFORT_RELIABILITY_QOS", "RELIABLE_RELIABILITY_QOS"},
    "durability": {
        "VOLATILE_DURABILITY_QOS",
        "TRANSIENT_LOCAL_DURABILITY_QOS",
        "TRANSIENT_DURABILITY_QOS",
        "PERSISTENT_DURABILITY_QOS",
    },
    "history": {"KEEP_LAST_HISTORY_QOS", "KEEP_ALL_HISTORY_QOS"},
    "destination_order": {"BY_RECEPTION_TIMESTAMP_DESTINATIONORDER_QOS", "BY_SOURCE_TIMESTAMP_DESTINATIONORDER_QOS"},
    "ownership": {"SHARED_OWNERSHIP_QOS", "EXCLUSIVE_OWNERSHIP_QOS"},
    "liveliness": {
        "AUTOMATIC_LIVELINESS_QOS",
        "MANUAL_BY_PARTICIPANT_LIVELINESS_QOS",
        "MANUAL_BY_TOPIC_LIVELINESS_QOS",
    },
}
_POLICIES = set(_KINDS) | {
    "deadline",
    "lifespan",
    "latency_budget",
    "transport_priority",
    "ownership_strength",
    "resource_limits",
    "partition",
    "time_based_filter",
    "writer_data_lifecycle",
    "reader_data_lifecycle",
    "durability_service",
    "user_data",
    "topic_data",
    "group_data",
    "presentation",
    "entity_factory",
}
_DURATION_TAGS = {"sec", "nanosec"}
_INFINITE = {"DURATION_INFINITE_SEC", "DURATION_INFINITE_NSEC", "DURATION_INFINITY"}

DDS_XML_NS = "http://www.omg.org/spec/DDS-XML"


def _where(path: Path, element: ET.Element) -> str:
    return f"{path}:{line_of(element)}"


def _parse(path: Path) -> Located:
    """The root of an XML file; a FIFO, directory or unreadable file is refused before it is opened."""
    data = read_bytes(path, QosError, "QoS XML file")
    try:
        return parse(data)
    except XmlError as exc:
        raise QosError(f"{path}:{exc.line}: malformed XML: {exc.reason}") from None


@dataclass
class Profile:
    """One resolved profile: ``library::name`` and its per-entity policy elements."""

    name: str
    element: ET.Element  # resolved, without base_name
    source: str  # file:line where it is declared


class QosLibrary:
    """The profiles of one DDS-XML file, checked and with inheritance resolved."""

    def __init__(self, path: str | Path = DEFAULT_QOS_FILE) -> None:
        self.path = Path(path)
        root = _parse(self.path)
        if _local(root) != "dds":
            raise QosError(f"{_where(self.path, root)}: root element must be <dds>, not <{_local(root)}>")
        raw: dict[str, ET.Element] = {}
        for library in root:
            if _local(library) != "qos_library":
                raise QosError(f"{_where(self.path, library)}: unexpected <{_local(library)}>; expected <qos_library>")
            lib_name = self._name(library)
            for profile in library:
                if _local(profile) != "qos_profile":
                    raise QosError(
                        f"{_where(self.path, profile)}: unexpected <{_local(profile)}> "
                        "in <qos_library>; expected <qos_profile>"
                    )
                full = f"{lib_name}::{self._name(profile)}"
                if full in raw:
                    raise QosError(f"{_where(self.path, profile)}: profile {full} is declared twice")
                self._check_profile(profile)
                raw[full] = profile
        self.profiles: dict[str, Profile] = {}
        for name in raw:
            self._resolve(name, raw, [])
        self._provider = self._make_provider()

    # -- checking --------------------------------------------------------------------
    def _name(self, element: ET.Element) -> str:
        name = element.get("name")
        if not name:
            raise QosError(f"{_where(self.path, element)}: <{_local(element)}> needs a name attribute")
        return str(name)

    def _check_profile(self, profile: ET.Element) -> None:
        for entity in profile:
            if _local(entity) not in ENTITY_QOS:
                raise QosError(
                    f"{_where(self.path, entity)}: unknown element <{_local(entity)}> in "
                    f"profile; expected one of {', '.join(ENTITY_QOS)}"
                )
            for policy in entity:
                self._check_policy(policy)

    def _check_policy(self, policy: ET.Element) -> None:
        tag = _local(policy)
        if tag not in _POLICIES:
            raise QosError(f"{_where(self.path, policy)}: unknown QoS policy <{tag}>")
        for child in policy.iter():
            text = (child.text or "").strip()
            name = _local(child)
            if name == "kind" and tag in _KINDS and text not in _KINDS[tag]:
                raise QosError(
                    f"{_where(self.path, child)}: <{tag}> kind {text!r} is not one of {', '.join(sorted(_KINDS[tag]))}"
                )
            problem = _number_problem(tag, name, text)
            if problem:
                raise QosError(f"{_where(self.path, child)}: <{name}> {problem} (in <{tag}>), got {text!r}")

    # -- inheritance -------------------------------------------------------------------
    def _resolve(self, name: str, raw: dict[str, ET.Element], chain: list[str]) -> Profile:
        if name in self.profiles:
            return self.profiles[name]
        element = raw[name]
        if name in chain:
            raise QosError(f"{_where(self.path, element)}: base_name cycle: {' -> '.join(chain + [name])}")
        resolved = copy.deepcopy(element)
        base_name = resolved.attrib.pop("base_name", None)
        if base_name:
            if base_name not in raw:
                raise QosError(
                    f"{_where(self.path, element)}: base_name {base_name!r} is not a "
                    f"profile in this file; profiles: {', '.join(raw)}"
                )
            base = self._resolve(base_name, raw, chain + [name]).element
            resolved = _merge(base, resolved)
        profile = Profile(name, resolved, _where(self.path, element))
        self.profiles[name] = profile
        return profile

    def _make_provider(self) -> QosProvider:
        """One DDS-XML document of the resolved profiles, every element in the DDS-XML namespace."""
        root = ET.Element("dds", xmlns=DDS_XML_NS)  # local names below: the file may use no namespace
        libraries: dict[str, ET.Element] = {}
        for full, profile in self.profiles.items():
            lib, name = full.split("::", 1)
            if lib not in libraries:
                libraries[lib] = ET.SubElement(root, "qos_library", name=lib)
            element = _local_copy(profile.element)
            element.set("name", name)
            libraries[lib].append(element)
        text = ET.tostring(root, encoding="unicode")
        try:
            return QosProvider(text)
        except DDSException as exc:
            raise QosError(f"{self.path}: Cyclone's QosProvider rejected the profiles: {exc}") from None

    # -- use -----------------------------------------------------------------------
    def profile(self, name: str, where: str = "") -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            prefix = f"{where}: " if where else ""
            raise QosError(
                f"{prefix}unknown QoS profile {name!r} in {self.path}; profiles: {', '.join(self.profiles)}"
            ) from None

    def writer_qos(self, name: str) -> Qos:
        self.profile(name)
        return self._provider.get_datawriter_qos(name)

    def reader_qos(self, name: str) -> Qos:
        self.profile(name)
        return self._provider.get_datareader_qos(name)


INT32_MAX = 2**31 - 1
_UNLIMITED = {"LENGTH_UNLIMITED", "-1"}
_COUNTS = {"max_samples", "max_instances", "max_samples_per_instance"}


def _number_problem(policy: str, tag: str, text: str) -> str | None:
    """Why ``text`` is no valid value for the numeric element ``tag`` of ``policy`` (None if it is).

    Cyclone's QosProvider refuses these too, but with neither file nor line
    ("Non specific error"), so they are checked here first.
    """
    if tag in _DURATION_TAGS:
        if text in _INFINITE:
            return None
        limit = 999_999_999 if tag == "nanosec" else INT32_MAX
        if not text.isdigit() or int(text) > limit:
            return f"must be a non-negative integer up to {limit} or DURATION_INFINITE_*"
    elif tag in ("depth", "history_depth"):
        if not _is_int(text) or not 1 <= int(text) <= INT32_MAX:
            return f"must be an integer 1..{INT32_MAX} (a history keeps at least one sample)"
    elif tag in _COUNTS:
        if text not in _UNLIMITED and (not _is_int(text) or not 1 <= int(text) <= INT32_MAX):
            return f"must be an integer 1..{INT32_MAX} or LENGTH_UNLIMITED"
    elif tag == "value" and policy in ("transport_priority", "ownership_strength"):
        if not _is_int(text) or not -INT32_MAX - 1 <= int(text) <= INT32_MAX:
            return "must be a 32-bit integer"
    return None


def _is_int(text: str) -> bool:
    return text.removeprefix("-").isdigit()


def _merge(base: ET.Element, derived: ET.Element) -> ET.Element:
    """Copy of ``base`` with ``derived``'s policy elements replacing same-named ones."""
    merged = copy.deepcopy(base)
    merged.attrib.clear()
    merged.attrib.update(derived.attrib)
    for entity in derived:
        target = next((e for e in merged if _local(e) == _local(entity)), None)
        if target is None:
            merged.append(copy.deepcopy(entity))
            continue
        for policy in entity:
            old = next((p for p in target if _local(p) == _local(policy)), None)
            if old is not None:
                target.remove(old)
            target.append(copy.deepcopy(policy))
    return merged


def _local_copy(element: ET.Element) -> ET.Element:
    """A deep copy of ``element`` with the namespace taken off every tag (the document declares it)."""
    copied = ET.Element(_local(element), element.attrib)
    copied.text, copied.tail = element.text, element.tail
    copied.extend(_local_copy(child) for child in element)
    return copied


TRANSPORTS = ("unicast", "multicast")
DEFAULT_MULTICAST_ADDRESS = "239.255.0.2"  # Cyclone's discovery group is 239.255.0.1


@dataclass
class TopicRule:
    pattern: str
    profile: str
    source: str
    transport: str = "unicast"  # on a LAN: how a writer sends to this topic's readers


class TopicMap:
    """``topics.xml``: topic name (exact or shell pattern) → profile name."""

    def __init__(self, path: str | Path = DEFAULT_TOPIC_MAP, qos_file: str | Path | None = None) -> None:
        self.path = Path(path)
        root = _parse(self.path)
        if _local(root) != "topics":
            raise QosError(f"{_where(self.path, root)}: root element must be <topics>, not <{_local(root)}>")
        if qos_file is not None:
            self.library = QosLibrary(qos_file)
        else:
            qos_file = self.path.parent / root.get("qos_file", "gridbus_qos.xml")
            try:
                self.library = QosLibrary(qos_file)
            except QosError as exc:  # say which map named the profile file
                raise QosError(f"{exc} (the qos_file of {_where(self.path, root)})") from None
        self.multicast_address = _multicast_address(self.path, root)
        self.rules: list[TopicRule] = []
        for element in root:
            if _local(element) != "topic":
                raise QosError(f"{_where(self.path, element)}: unexpected <{_local(element)}>; expected <topic>")
            name, profile = element.get("name"), element.get("profile")
            if not name or not profile:
                raise QosError(f"{_where(self.path, element)}: <topic> needs name and profile attributes")
            self.library.profile(profile, where=_where(self.path, element))
            transport = element.get("transport", "unicast")
            if transport not in TRANSPORTS:
                raise QosError(
                    f"{_where(self.path, element)}: transport {transport!r} is not one of {', '.join(TRANSPORTS)}"
                )
            self.rules.append(TopicRule(name, profile, _where(self.path, element), transport))

    def rule_for(self, topic_name: str) -> TopicRule:
        """The rule that decides a topic: an exact name first, else the first matching pattern."""
        for rule in self.rules:
            if rule.pattern == topic_name:
                return rule
        for rule in self.rules:
            if fnmatch.fnmatchcase(topic_name, rule.pattern):
                return rule
        raise QosError(
            f'{self.path}: no QoS profile for topic {topic_name!r}; add <topic name="{topic_name}" profile="..."/>'
        )

    def profile_for(self, topic_name: str) -> str:
        return self.rule_for(topic_name).profile

    def transport_for(self, topic_name: str) -> str:
        """``unicast`` or ``multicast``: what a LAN configuration maps the topic to (loopback ignores it)."""
        return self.rule_for(topic_name).transport

    def writer_qos(self, topic_name: str) -> Qos:
        return self.library.writer_qos(self.profile_for(topic_name))

    def reader_qos(self, topic_name: str) -> Qos:
        return self.library.reader_qos(self.profile_for(topic_name))


def _multicast_address(path: Path, root: ET.Element) -> str:
    """The ``multicast_address`` of ``<topics>``: the group multicast topics are sent to."""
    text = str(root.get("multicast_address", DEFAULT_MULTICAST_ADDRESS))
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 for p in parts) or not 224 <= int(parts[0]) <= 239:
        raise QosError(f"{_where(path, root)}: multicast_address {text!r} is not an IPv4 multicast address")
    return text


# ----------------------------------------------------------------- description
def _seconds(ns: int) -> float | None:
    return None if ns >= 2**63 - 1 or ns < 0 else ns / 1e9


def describe(qos: Qos) -> dict[str, Any]:
    """The policies users care about, as plain values (durations in s, None = infinite)."""

    def get(policy: Any) -> Any:
        return qos[policy] if policy in qos else None

    reliability = get(Policy.Reliability)
    durability = get(Policy.Durability)
    history = get(Policy.History)
    deadline = get(Policy.Deadline)
    lifespan = get(Policy.Lifespan)
    budget = get(Policy.LatencyBudget)
    order = get(Policy.DestinationOrder)
    priority = get(Policy.TransportPriority)
    ownership = get(Policy.Ownership)
    return {
        "reliability": "reliable" if isinstance(reliability, Policy.Reliability.Reliable) else "best_effort",
        "durability": {
            "Volatile": "volatile",
            "TransientLocal": "transient_local",
            "Transient": "transient",
            "Persistent": "persistent",
        }[_variant(durability) or "Volatile"],
        "history": {"kind": "keep_last", "depth": history.depth}
        if isinstance(history, Policy.History.KeepLast)
        else ({"kind": "keep_all", "depth": None} if history is not None else {"kind": "keep_last", "depth": 1}),
        "deadline": _seconds(deadline.deadline) if deadline else None,
        "lifespan": _seconds(lifespan.lifespan) if lifespan else None,
        "latency_budget": (_seconds(budget.budget) if budget else 0.0),
        "destination_order": "by_source_timestamp"
        if _variant(order) == "BySourceTimestamp"
        else "by_reception_timestamp",
        "transport_priority": priority.priority if priority else 0,
        "ownership": "exclusive" if _variant(ownership) == "Exclusive" else "shared",
    }


def _variant(policy: Any) -> str | None:
    """Name of a singleton policy variant (``Policy.Durability.TransientLocal`` → ``TransientLocal``)."""
    if policy is None:
        return None
    text = str(policy)
    return text.rsplit(".", 1)[-1].split("(")[0]


def seconds_to_ns(seconds: float | None) -> int:
    if seconds is None or math.isinf(seconds):
        return 2**63 - 1
    return int(seconds * 1e9)
