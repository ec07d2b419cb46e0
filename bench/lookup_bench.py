"""Benchmark: /api/v1/lookup against the floor, under gunicorn, with 20,000 contacts.

Starts `connector serve` (gunicorn) on 127.0.0.1 with a fresh demo database of
20,000 demo-like contacts, then drives it from a separate load process
(bench/load.py) and measures, in the same run:
  - floor:          GET /healthz, a bare JSON endpoint of the same app and server
  - lookup:         GET /api/v1/lookup for one known sender (served from the lookup cache)
  - lookup_uncached: GET /api/v1/lookup cycling through distinct senders (cache misses)
  - gmail_message:  POST /gmail/message for a known sender, as Google sends it: both ID
                    tokens verified, the message's metadata read from a fake Gmail API on
                    127.0.0.1 (run by this script), the person card built
Prints a table, then, as its last line, one JSON object with the figures.

  python bench/lookup_bench.py [--seconds 10] [--concurrency 8] [--workers 2]
                               [--postgres-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.google import CLIENT_ID, SERVICE_ACCOUNT, FakeGmail, FakeGoogle  # noqa: E402
from tests.fakes.servers import serve  # noqa: E402

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connector(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "connector"), *args], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def known_senders(env: dict[str, str], count: int) -> list[str]:
    """Addresses of contacts that have a company, read straight from the database."""
    script = (
        "import os, sqlalchemy as sa\n"
        "from connector.app import create_app\n"
        "from connector.db import session_scope\n"
        "from connector.models import Contact, ContactEmail\n"
        "app = create_app()\n"
        "with session_scope(app) as s:\n"
        "    rows = s.scalars(sa.select(ContactEmail.email).join(Contact)"
        ".where(Contact.company_id.is_not(None)).order_by(ContactEmail.id)"
        f".limit({count})).all()\n"
        "print('\\n'.join(rows))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    return output.split()


@contextlib.contextmanager
def scratch_database(server_url: str | None) -> Iterator[str | None]:
    """A new PostgreSQL database for this run, dropped at the end (None: use SQLite)."""
    if server_url is None:
        yield None
        return
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"connector_bench_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def fake_google() -> Iterator[tuple[Any, Any, str, str]]:
    """Google's certificates and a Gmail API on 127.0.0.1 (the tests' fakes)."""
    with contextlib.ExitStack() as stack:
        google, gmail = FakeGoogle(), FakeGmail()
        certs = stack.enter_context(serve(google.certs_app()))
        api = stack.enter_context(serve(gmail.app()))
        yield google, gmail, certs + "/oauth2/v1/certs", api + "/"


def gmail_event(google: Any, gmail: Any, sender: str, base: str, path: Path) -> list[str]:
    """An opened-message event from `sender` to the demo user, and its signed headers."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Dana Demo <demo@connector.example>"
    message["Subject"] = "Benchmark"
    message["Message-ID"] = "<bench@connector.example>"
    message.set_content("Hello")
    gmail.add("bench-1", message.as_bytes())
    event = {
        "commonEventObject": {"hostApp": "GMAIL", "platform": "WEB"},
        "authorizationEventObject": {
            "userOAuthToken": "bench-oauth-token",
            "userIdToken": google.user_token("demo@connector.example", lifetime=7200),
        },
        "gmail": {"messageId": "bench-1", "threadId": "t-1", "accessToken": "bench-access"},
    }
    path.write_text(json.dumps(event))
    token = google.system_token(base + "/gmail/message", lifetime=7200)
    return [f"Authorization: Bearer {token}", "Content-Type: application/json"]


def wait_until_up(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not come up")


def load(
    base: str,
    paths: list[str],
    headers: list[str],
    seconds: float,
    concurrency: int,
    body_file: str | None = None,
) -> dict[str, float]:
    command = [
        sys.executable,
        str(ROOT / "bench" / "load.py"),
        "--base",
        base,
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
    ]
    if body_file:
        command += ["--method", "POST", "--body-file", body_file]
    for path in paths:
        command += ["--path", path]
    for header in headers:
        command += ["--header", header]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, help="Default: 2 with Redis, 1 without (the in-process store)"
    )
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument(
        "--postgres-url",
        help="A PostgreSQL server (URL of any database on it): the benchmark creates a "
        "database of its own there and drops it afterwards. Default: a fresh SQLite file",
    )
    parser.add_argument("--redis-url", help="Default: the in-process store")
    args = parser.parse_args()
    args.workers = args.workers or (2 if args.redis_url else 1)

    with (
        tempfile.TemporaryDirectory(prefix="connector-bench-") as instance,
        scratch_database(args.postgres_url) as database_url,
        contextlib.ExitStack() as stack,
    ):
        env = {
            **os.environ,
            "CONNECTOR_INSTANCE_PATH": instance,
            "CONNECTOR_SECRET_KEY": "bench-secret-" + "x" * 40,  # production wants 32 or more
        }
        env.pop("CONNECTOR_DATABASE_URL", None)
        env.pop("CONNECTOR_REDIS_URL", None)
        if database_url:
            env["CONNECTOR_DATABASE_URL"] = database_url
        if args.redis_url:
            env["CONNECTOR_REDIS_URL"] = args.redis_url
        started = time.perf_counter()
        connector(env, "init-db")
        demo = connector(
            env, "demo", "--contacts", str(args.contacts), "--companies", str(args.companies)
        )
        key = re.search(r"Demo API key: (\S+)", demo).group(1)
        load_seconds = time.perf_counter() - started
        senders = known_senders(env, 5000)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        google, gmail, certs_url, gmail_url = stack.enter_context(fake_google())
        env.update(
            CONNECTOR_PUBLIC_URL=base,
            CONNECTOR_GOOGLE_CERTS_URL=certs_url,
            CONNECTOR_GOOGLE_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
            CONNECTOR_GOOGLE_CLIENT_ID=CLIENT_ID,
            CONNECTOR_GMAIL_API_URL=gmail_url,
        )
        event_file = Path(instance) / "gmail-event.json"
        gmail_headers = gmail_event(google, gmail, senders[0], base, event_file)
        server = subprocess.Popen(
            [str(BIN / "connector"), "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(base)
            auth = [f"Authorization: Bearer {key}"]
            one = [f"/api/v1/lookup?email={quote(senders[0])}"]
            varied = [f"/api/v1/lookup?email={quote(s)}" for s in senders[1:]]
            load(base, ["/healthz"] + one, auth, 2, args.concurrency)  # warm up
            floor = load(base, ["/healthz"], [], args.seconds, args.concurrency)
            lookup = load(base, one, auth, args.seconds, args.concurrency)
            uncached = load(base, varied, auth, args.seconds, args.concurrency)
            gmail_message = load(
                base,
                ["/gmail/message"],
                gmail_headers,
                args.seconds,
                args.concurrency,
                body_file=str(event_file),
            )
        finally:
            server.terminate()
            server.wait(timeout=30)

    figures = {
        "contacts": args.contacts,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "database": "postgresql" if args.postgres_url else "sqlite",
        "store": "redis" if args.redis_url else "memory",
        "demo_load_seconds": round(load_seconds, 1),
        "floor": floor,
        "lookup": lookup,
        "lookup_uncached": uncached,
        "lookup_to_floor_throughput": round(lookup["throughput_rps"] / floor["throughput_rps"], 3),
        "uncached_to_floor_throughput": round(
            uncached["throughput_rps"] / floor["throughput_rps"], 3
        ),
        "gmail_message": gmail_message,
        "gmail_message_to_floor_throughput": round(
            gmail_message["throughput_rps"] / floor["throughput_rps"], 3
        ),
    }
    print(f"{'endpoint':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name in ("floor", "lookup", "lookup_uncached", "gmail_message"):
        row = figures[name]
        print(
            f"{name:<18}{row['throughput_rps']:>10}{row['p50_ms']:>10}{row['p99_ms']:>10}"
            f"{row['errors']:>8}"
        )
    print(
        f"lookup/floor throughput: {figures['lookup_to_floor_throughput']}, "
        f"uncached/floor: {figures['uncached_to_floor_throughput']}"
    )
    print(f"gmail_message/floor: {figures['gmail_message_to_floor_throughput']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
