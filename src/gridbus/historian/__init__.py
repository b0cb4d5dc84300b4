"""The historian: record what flows on the bus, analyse its delays, replay it.

* :mod:`.sinks` — SQLite (default), PostgreSQL (psycopg 3, COPY) and CSV storage;
* :mod:`.recorder` — ``gridbus record``: journaled, reconnecting, every loss counted;
* :mod:`.journal`, :mod:`.tap` — its crash-safe journal and its DDS readers;
* :mod:`.analysis` — ``gridbus delays`` and :func:`series` (numpy arrays);
* :mod:`.replay` — ``gridbus replay``: stored series back onto the bus.
"""

from .analysis import delays, series
from .recorder import Recorder
from .sinks import open_sink, read_rows

__all__ = ["Recorder", "delays", "open_sink", "read_rows", "series"]
