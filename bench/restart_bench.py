"""Benchmark: throughput before and after a PostgreSQL restart under load, as ratios.

Starts a PostgreSQL server and a redis-server of its own (tests/own_services.py), loads
demo data, serves the connector with gunicorn (`connector serve`, several workers), and
drives it from a separate load process (bench/load.py):
  1. floor:   GET /healthz (no database), then the database-bound load: uncached
              lookups of distinct senders, measured before anything happens;
  2. restart: PostgreSQL is restarted while the load runs (requests in that window
              answer 503 and count as errors there, never 500);
  3. after:   the same database-bound load, once /readyz says ready again.
The figure that matters is `after / before`: 1.0 means the service came back whole.
Prints a table, then, as its last line, one JSON object with the figures.

  python bench/restart_bench.py [--seconds 8] [--concurrency 8] [--workers 3]
                                [--outage restart|hang] [--hang-seconds 6]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lookup_bench import connector, known_senders, load, wait_until_up  # noqa: E402

from tests.own_services import (  # noqa: E402
    OwnPostgres,
    copy_cluster,
    free_port,
    own_postgres_folder,
    start_redis,
)

BIN = Path(sys.executable).parent


def wait_until_ready(base: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=10) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise RuntimeError("the service did not become ready again")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--contacts", type=int, default=12_000)
    parser.add_argument(
        "--outage",
        choices=["restart", "hang"],
        default="restart",
        help="restart: a fast restart; hang: the server stops answering (SIGSTOP) for "
        "--hang-seconds, then is restarted as after a crash",
    )
    parser.add_argument("--hang-seconds", type=float, default=6)
    args = parser.parse_args()

    template = own_postgres_folder()
    OwnPostgres.initdb(template)
    postgres = copy_cluster(template)
    postgres.start()
    redis_folder = Path(tempfile.mkdtemp(prefix="connector-bench-redis-"))
    redis_process, redis_url = start_redis(redis_folder)
    instance = tempfile.mkdtemp(prefix="connector-bench-")
    server = None
    try:
        env = {
            **os.environ,
            "CONNECTOR_INSTANCE_PATH": instance,
            "CONNECTOR_SECRET_KEY": "bench-secret-" + "x" * 32,
            "CONNECTOR_DATABASE_URL": postgres.url,
            "CONNECTOR_REDIS_URL": redis_url,
        }
        connector(env, "init-db")
        demo = connector(env, "demo", "--contacts", str(args.contacts), "--companies", "500")
        match = re.search(r"Demo API key: (\S+)", demo)
        assert match, demo
        key = match.group(1)
        senders = known_senders(env, 9000)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env["CONNECTOR_PUBLIC_URL"] = base
        server = subprocess.Popen(
            [str(BIN / "connector"), "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(base)
        auth = [f"Authorization: Bearer {key}"]
        lookups = [f"/api/v1/lookup?email={quote(s)}" for s in senders]
        # Senders of their own for each phase: the lookup cache (Redis, which keeps its
        # entries across the database's restart) must not serve any of them.
        third = len(lookups) // 3
        phases = [lookups[:third], lookups[third : 2 * third], lookups[2 * third :]]
        seconds, concurrency = args.seconds, args.concurrency
        load(base, ["/healthz", "/readyz"], auth, 2, concurrency)  # warm up
        floor = load(base, ["/healthz"], [], seconds, concurrency)
        before = load(base, phases[0], auth, seconds, concurrency)

        during: dict[str, Any] = {}

        def restart_midway() -> None:
            time.sleep(seconds / 4)
            started = time.monotonic()
            if args.outage == "hang":
                with postgres.hung():
                    time.sleep(args.hang_seconds)
            postgres.restart()
            during["restart_seconds"] = round(time.monotonic() - started, 2)

        restarter = threading.Thread(target=restart_midway)
        restarter.start()
        during.update(load(base, phases[1], auth, seconds, concurrency))
        restarter.join()
        ready_after = wait_until_ready(base)
        after = load(base, phases[2], auth, seconds, concurrency)
        floor_after = load(base, ["/healthz"], [], seconds, concurrency)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        redis_process.kill()
        postgres.stop()
        for folder in (postgres.folder, template, redis_folder, Path(instance)):
            shutil.rmtree(folder, ignore_errors=True)

    rows = [
        ("floor (GET /healthz)", floor),
        ("lookups before the restart", before),
        ("lookups across the restart", during),
        ("lookups after the restart", after),
        ("floor after", floor_after),
    ]
    print(f"{'':30} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, figures in rows:
        print(
            f"{name:30} {figures['throughput_rps']:>8} {figures['errors']:>7} "
            f"{figures['p50_ms']:>8} {figures['p99_ms']:>8} {figures['max_ms']:>8}"
        )
    ratio = after["throughput_rps"] / before["throughput_rps"]
    print(f"after / before: {ratio:.2f} (1.00: the restart left nothing behind)")
    print(
        json.dumps(
            {
                "outage": args.outage,
                "workers": args.workers,
                "concurrency": concurrency,
                "contacts": args.contacts,
                "floor_rps": floor["throughput_rps"],
                "before_rps": before["throughput_rps"],
                "after_rps": after["throughput_rps"],
                "after_over_before": round(ratio, 2),
                "before_over_floor": round(before["throughput_rps"] / floor["throughput_rps"], 3),
                "after_over_floor": round(
                    after["throughput_rps"] / floor_after["throughput_rps"], 3
                ),
                "errors_across_restart": during["errors"],
                "statuses_across_restart": during["statuses"],
                "slowest_answer_across_restart_ms": during["max_ms"],
                "restart_seconds": during.get("restart_seconds"),
                "ready_again_seconds": round(ready_after, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
