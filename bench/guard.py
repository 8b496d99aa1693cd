"""Measure on a quiet machine: wait while other engineers' test runs (robot, pytest) are busy.

Layer: bench/. The reference machine has 2 cores shared with other people's suites; a run measured
next to them reports their load, not ours. Before each measured run the bench polls until no
``robot`` or ``pytest`` process is left (at most ``MAX_WAIT``, then it measures anyway and says so)
and records the 1-minute load average, printed with the results.
"""

from __future__ import annotations

import os
import subprocess
import time

BUSY_PATTERNS = ("robot", "pytest")
MAX_WAIT = 600.0  # seconds
POLL = 5.0
enabled = True  # ``--no-wait`` (smoke tests of the bench itself) turns the wait off


def busy() -> list[str]:
    """Patterns that match a running process (``pgrep -f``), ours excluded by pgrep itself."""
    found = []
    for pattern in BUSY_PATTERNS:
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
        if out.stdout.strip():
            found.append(pattern)
    return found


def wait_quiet(what: str) -> float:
    """Block until no test run is busy (or MAX_WAIT passed); returns the 1-minute load."""
    deadline = time.monotonic() + MAX_WAIT
    announced = False
    while enabled and (found := busy()):
        if time.monotonic() >= deadline:
            print(
                f"  WARNING: {', '.join(found)} still running after {MAX_WAIT:.0f} s; "
                f"measuring {what} anyway"
            )
            break
        if not announced:
            print(f"  waiting for {', '.join(found)} to finish before measuring {what}...")
            announced = True
        time.sleep(POLL)
    return load1()


def load1() -> float:
    return os.getloadavg()[0]
