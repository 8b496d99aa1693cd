"""Polls ``GET /health`` of a broker until its stdin closes, then prints one JSON line with every
poll: ``[start, seconds, own seconds]``. Run as a separate process so that nothing the test
process does (it sends and reads multi-megabyte bodies) delays the polls.

``own`` is the poll's latency less the time spent waiting for a CPU, which is the machine's
load and not the broker's doing: the poller runs under SCHED_FIFO where allowed (it then gets a
CPU as soon as the response arrives; it sleeps between polls, so it costs the machine nothing),
and the run-queue waits of the poller's thread and of the broker's event-loop thread (its main
thread, ``/proc/<pid>/task/<pid>/schedstat``) during the poll are taken off. Waits for the GIL
and blocking calls of the broker count, even while the thread holding the GIL is preempted.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import sys
import threading
import time


def _queued(path: str) -> float:
    """Seconds the thread of ``path`` (a schedstat file) has waited on the run queue."""
    with open(path, "rb") as f:
        return int(f.read().split()[1]) / 1e9


def main() -> None:
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    with contextlib.suppress(OSError, AttributeError):  # SCHED_FIFO needs CAP_SYS_NICE
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    mine = f"/proc/self/task/{threading.get_native_id()}/schedstat"
    broker = f"/proc/{pid}/task/{pid}/schedstat"
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: list[tuple[float, float, float]] = []
    print("ready", flush=True)
    while not stop.is_set():
        queued = _queued(mine) + _queued(broker)
        started = time.monotonic()
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        seconds = time.monotonic() - started
        waited = _queued(mine) + _queued(broker) - queued
        assert response.status == 200
        samples.append((started, seconds, max(0.0, seconds - waited)))
        time.sleep(0.002)  # pacing between polls, not synchronisation
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()
