"""Polls ``GET /health`` of a broker until its stdin closes, then prints one JSON line with the
latency of every poll: run as a separate process so that nothing the test process does (it
sends and reads multi-megabyte bodies) delays the polls."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def main() -> None:
    port = int(sys.argv[1])
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: list[tuple[float, float]] = []  # (start, seconds)
    print("ready", flush=True)
    while not stop.is_set():
        started = time.monotonic()
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        samples.append((started, time.monotonic() - started))
        time.sleep(0.002)  # pacing between polls, not synchronisation
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()
