"""Small XML files read with the standard library: each element knows its line, entities are refused.

gridbus reads a few small XML files (QoS profiles, topic maps, Cyclone
configurations) on every Bus start and reports any problem in them as
``file:line``.  lxml gave elements a ``sourceline``, but loading libxml2 and
libxslt cost a DAQ agent about 4 MB of its 50 MB budget.  expat, in the
standard library, tells a handler the line of each start tag, and that is all
gridbus needs: :func:`parse` builds an ``xml.etree.ElementTree`` tree whose
elements carry ``sourceline`` like lxml's did.

Entity declarations are refused, as defusedxml does by default: an external
entity would read a local file into a profile, nested internal ones blow up
memory ("billion laughs"), and Cyclone's own parser refuses a DTD internal
subset anyway.  So is a DOCTYPE naming an external DTD: it is never read, and
with it expat would drop an undefined entity in an attribute without a word.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import cast
from xml.parsers import expat

__all__ = ["Located", "XmlError", "line_of", "local_name", "parse"]


class Located(ET.Element):
    """An element that knows the line of its start tag (1-based)."""

    sourceline: int = 0


class XmlError(Exception):
    """Not well-formed, or not allowed here: ``line`` and ``reason`` for the caller's own error."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def parse(data: bytes) -> Located:
    """The root element of the XML document ``data``; XmlError naming the line if it is not one."""
    builder = ET.TreeBuilder(element_factory=Located)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = cast(Located, builder.start(_clark(tag), {_clark(k): v for k, v in attrs.items()}))
        element.sourceline = parser.CurrentLineNumber

    def entity_declared(name: str, is_parameter: bool, *_rest: object) -> None:
        kind = "parameter entity" if is_parameter else "entity"
        raise XmlError(parser.CurrentLineNumber, f"the DTD declares the {kind} {name!r}; entities are not allowed")

    def doctype(name: str, system_id: str | None, public_id: str | None, _internal_subset: bool) -> None:
        if system_id or public_id:  # unread, it would make expat drop undefined entities silently
            raise XmlError(
                parser.CurrentLineNumber,
                f"the DOCTYPE names an external DTD ({system_id or public_id}), which is not read",
            )

    def entity_skipped(name: str, is_parameter: bool) -> None:
        raise XmlError(parser.CurrentLineNumber, f"undefined entity &{name};")

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(_clark(tag))
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity_declared
    parser.SkippedEntityHandler = entity_skipped
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlError(exc.lineno, f"{expat.ErrorString(exc.code)} (column {exc.offset + 1})") from None
    return cast(Located, builder.close())


def _clark(name: str) -> str:
    """expat's ``uri}local`` as ElementTree's ``{uri}local``."""
    return "{" + name if "}" in name else name


def local_name(element: ET.Element) -> str:
    """The tag without its namespace: ``{http://www.omg.org/spec/DDS-XML}dds`` → ``dds``."""
    return str(element.tag).rpartition("}")[2]


def line_of(element: ET.Element) -> int:
    """The line of ``element``'s start tag (0 for an element not read by :func:`parse`)."""
    return element.sourceline if isinstance(element, Located) else 0
