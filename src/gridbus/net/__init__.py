"""Networks in a box: a lab LAN of network namespaces, impaired links, their benchmarks.

``Lan`` builds hosts joined by a bridge (root needed); ``Impairment`` says what
a link does to traffic; ``sweep`` removes what a crashed owner left behind.
See docs/networking.md.
"""

from .impair import Impairment
from .lan import Host, Lan
from .ns import can_build, namespaces, sweep

__all__ = ["Lan", "Host", "Impairment", "sweep", "namespaces", "can_build"]
