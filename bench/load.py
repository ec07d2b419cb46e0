"""A small HTTP load generator: keep-alive connections on threads, fixed duration.

Run as its own process so that the service under test does not share its
interpreter: python bench/load.py --base http://127.0.0.1:PORT --path /healthz ...
Prints one JSON object: requests, errors, answers by status, seconds, throughput,
p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import threading
import time
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def run(
    base: str,
    paths: list[str],
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
    method: str = "GET",
    body: bytes | None = None,
) -> dict[str, float]:
    parts = urlsplit(base)
    cycle = itertools.cycle(paths)
    cycle_lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    statuses: list[dict[int, int]] = [{} for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds

    def worker(n: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.perf_counter() < deadline:
            with cycle_lock:
                path = next(cycle)
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                statuses[n][response.status] = statuses[n].get(response.status, 0) + 1
                if response.status != 200:
                    errors[n] += 1
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                continue
            latencies[n].append(time.perf_counter() - started)
        connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged = sorted(itertools.chain.from_iterable(latencies))
    by_status: dict[str, int] = {}
    for counts in statuses:
        for status, count in counts.items():
            by_status[str(status)] = by_status.get(str(status), 0) + count
    return {
        "requests": len(merged),
        "errors": sum(errors),
        "statuses": by_status,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(merged) / elapsed, 1),
        "p50_ms": round(percentile(merged, 0.50) * 1000, 3),
        "p99_ms": round(percentile(merged, 0.99) * 1000, 3),
        "max_ms": round(merged[-1] * 1000, 3) if merged else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--path", action="append", required=True, help="Cycled in order")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-file", help="Send this file's bytes as every request's body")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    body = None
    if args.body_file:
        with open(args.body_file, "rb") as file:
            body = file.read()
    figures = run(args.base, args.path, headers, args.seconds, args.concurrency, args.method, body)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
