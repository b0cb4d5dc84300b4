"""``python -m gridbus.bench echo|sink``: a benchmark's peer process (see :mod:`gridbus.bench.peers`)."""

import sys

from .peers import child_main

sys.exit(child_main())
