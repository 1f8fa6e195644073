"""The fault campaign starts real processes and servers: only the faults leg of .ci/run
collects it (``PUSH_FAULT_TESTS=1``, with PostgreSQL and redis-server available)."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("PUSH_FAULT_TESTS") == "1" else ["test_*.py"]
