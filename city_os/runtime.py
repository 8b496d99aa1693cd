"""Process tuning for a latency-bound event loop: when CPython's cyclic garbage collector runs.

Layer: app wiring (no NGSI-LD). A collection stops every thread, the event loop's included, for
as long as it takes to scan the objects it covers. Measured against
``tests/integration/robustness/test_health_under_load.py``:

- the start-up heap (modules, bundled contexts and schemas: ~200,000 objects) is frozen into
  the permanent generation, so no collection scans it again (a full collection of it cost
  ~150 ms);
- full collections are rare (every 10,000 collections of generation 1, ~70 million
  allocations): one that falls in the middle of a large request scans that request's live
  data (a 1,000-entity batch: ~500,000 objects, 50-130 ms here). Young garbage is still
  collected as usual; reference cycles that outlive two collections (rare: most garbage goes
  with its last reference) wait longer, which costs memory, not latency. An idle-time full
  collection was tried: the garbage it finds takes as long to scan, and idle is when
  monitoring polls /health;
- threads get the GIL back every millisecond, so the loop is not held by pure-Python work
  of large requests in worker threads (``core.cpu``, @context processing);
- the collector is paused only around single C calls that build a document
  (``ngsild.limits.parse_json``), never around long work: a paused stretch fills the youngest
  generation, and the first collection after it scans all of it (see ``core.cpu``).
"""

from __future__ import annotations

import gc
import sys

# Young-generation size, and how many collections of each generation trigger the next one
# (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (700, 10, 10_000)
SWITCH_INTERVAL = 0.001  # seconds (CPython's default: 0.005)


def tune_collector() -> None:
    """Freeze the start-up heap, make full collections rare, shorten the switch interval."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)
