"""Benchmark: the inbound mail path, `connector mail-gateway` and `connector worker`, against
the floor of a bare SMTP server.

Sets up a fresh instance folder in a temporary directory (a SQLite file, or a scratch
PostgreSQL database with --postgres-url, created on that server and dropped at the end):
`connector init-db`, a user, `connector orgs mail-domain`, and an alias that creates leads.
Starts `connector mail-gateway --port 0` and `connector worker --workers 2`, then sends N
messages (each from a distinct sender, so that the sender cap holds none back) with
smtplib, over a few connections each reused for its share of the messages. It measures, in
the same run:
  - floor:       the same client sending the same messages the same way to a trivial
                 aiosmtpd server (in a process of its own) that accepts and discards them
                 (the best of three rounds)
  - accept:      the gateway, from the first send to the last 250 (each 250 comes after the
                 message is committed to inbound_messages)
  - end to end:  from the first send until every row is routed (`done`), the last
                 processed_at; the latency of each message is its received_at (stored, just
                 before its 250) to its processed_at
and prints them as ratios to the floor, with the peak RSS of the gateway and the worker.
Prints a table, then, as its last line, one JSON object with the figures.

  python bench/mail_bench.py [--messages 500] [--connections 4] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

BIN = Path(sys.executable).parent
DOMAIN = "bench-mail.example"
ALIAS = f"sales@{DOMAIN}"
SECRET = "bench-secret-" + "x" * 40  # production wants 32 or more
WARMUP = 5
LISTENING = re.compile(r"on smtp://([^:\s]+):(\d+)")


def connector(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "connector"), *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"connector {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@contextlib.contextmanager
def scratch_database(server_url: str | None) -> Iterator[str | None]:
    """A new PostgreSQL database for this run, dropped at the end (None: use SQLite)."""
    if server_url is None:
        yield None
        return
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"connector_mail_bench_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_messages(count: int, prefix: str) -> list[tuple[str, bytes]]:
    """(envelope sender, message bytes): a quote request, each from a sender of its own."""
    messages = []
    for n in range(count):
        sender = f"{prefix}{n}@firm{n % 50}.example"
        message = EmailMessage()
        message["From"] = f"Buyer {n} <{sender}>"
        message["To"] = ALIAS
        message["Subject"] = f"Quote for {n % 90 + 10} seats"
        message["Date"] = "Mon, 30 Nov 2026 10:00:00 +0000"
        message["Message-ID"] = make_msgid(f"{prefix}{n}", domain=f"firm{n % 50}.example")
        message.set_content(
            f"Hello,\n\nwe would like a quote for {n % 90 + 10} seats, billed yearly.\n"
            "Could you also tell us about the onboarding and the support hours?\n\n"
            f"Best regards,\nBuyer {n}\nFirm {n % 50} Ltd\n"
        )
        messages.append((sender, message.as_bytes()))
    return messages


def send_all(
    host: str, port: int, messages: list[tuple[str, bytes]], connections: int
) -> dict[str, float | int]:
    """Send every message with smtplib over `connections` connections at once, each reused
    for its share; the time from the first send to the last 250, and each message's
    MAIL-RCPT-DATA time."""
    shares = [messages[i::connections] for i in range(connections)]
    latencies: list[float] = []
    errors: list[str] = []
    finished: list[float] = []
    lock = threading.Lock()

    def client(share: list[tuple[str, bytes]]) -> None:
        mine, failed = [], []
        with smtplib.SMTP(host, port, timeout=60) as smtp:
            smtp.ehlo("bench.example")
            go.wait()
            for sender, raw in share:
                started = time.perf_counter()
                try:
                    smtp.sendmail(sender, [ALIAS], raw)
                except smtplib.SMTPException as exc:
                    failed.append(repr(exc))
                    smtp.rset()
                mine.append(time.perf_counter() - started)
            last_reply = time.perf_counter()  # before QUIT
        with lock:
            finished.append(last_reply)
            latencies.extend(mine)
            errors.extend(failed)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares if share]
    go = threading.Barrier(len(threads) + 1)
    for thread in threads:
        thread.start()
    go.wait()
    started_wall = time.time()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = max(finished) - started
    if errors:
        print(f"{len(errors)} message(s) refused, e.g. {errors[0]}", file=sys.stderr)
    return {
        "messages": len(messages),
        "errors": len(errors),
        "seconds": round(elapsed, 3),
        "messages_per_s": round((len(messages) - len(errors)) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "started_wall": started_wall,
    }


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def floor_server() -> None:
    """The floor: aiosmtpd as the gateway runs it, accepting every recipient and
    discarding every message (run as `mail_bench.py --floor-server`, a process of its own
    like the gateway)."""
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server, session, envelope) -> str:
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Discard()
        server = await loop.create_server(
            lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="floor", loop=loop),
            host="127.0.0.1",
            port=0,
        )
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(f"Floor on smtp://127.0.0.1:{port}", file=sys.stderr, flush=True)
        await stop.wait()
        server.close()

    asyncio.run(main())


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for_port(process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    """The port a server prints that it listens on ("... on smtp://host:PORT")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(2))
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise SystemExit(f"{process.args} did not start listening:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PeakRss:
    """A process's peak RSS: the kernel's high-water mark (VmHWM) where /proc has it, else
    the highest RSS that psutil saw, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not Path(f"/proc/{pid}/status").exists():
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        process = psutil.Process(self.pid)
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                self.sampled = max(self.sampled, process.memory_info().rss)

    def megabytes(self) -> tuple[float | None, str]:
        """Read while the process still runs."""
        self._stop.set()
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{self.pid}/status").read_text()
            found = re.search(r"VmHWM:\s+(\d+) kB", status)
            if found:
                return round(int(found.group(1)) / 1024, 1), "VmHWM"
        if self.sampled:
            return round(self.sampled / 2**20, 1), "psutil"
        return None, "unknown"


def wait_routed(
    database_url: str, after_id: int, count: int, timeout: float
) -> tuple[dict[str, int], list[tuple[int, dt.datetime, dt.datetime | None]]]:
    """Wait until the `count` messages stored after `after_id` have left `received`; their
    count by status, and each one's (id, received_at, processed_at)."""
    import sqlalchemy as sa

    from connector.mail.models import InboundMessage

    engine = sa.create_engine(database_url)
    table = InboundMessage.__table__
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                counts = dict(
                    connection.execute(
                        sa.select(table.c.status, sa.func.count())
                        .where(table.c.id > after_id)
                        .group_by(table.c.status)
                    ).all()
                )
                waiting = counts.get("received", 0)
                if sum(counts.values()) >= count and not waiting:
                    rows = connection.execute(
                        sa.select(table.c.id, table.c.received_at, table.c.processed_at)
                        .where(table.c.id > after_id)
                        .order_by(table.c.id)
                    ).all()
                    return counts, [tuple(row) for row in rows]  # type: ignore[misc]
            if time.monotonic() > deadline:
                raise SystemExit(f"Not routed within {timeout:.0f} s: {counts}")
            time.sleep(0.1)
    finally:
        engine.dispose()


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives the stored UTC times back naive."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def max_inbound_id(database_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT max(id) FROM inbound_messages")) or 0)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument(
        "--connections", type=int, default=4, help="SMTP connections at once, each reused"
    )
    parser.add_argument("--workers", type=int, default=2, help="`connector worker --workers`")
    parser.add_argument(
        "--postgres-url",
        help="A PostgreSQL server (URL of any database on it): the benchmark creates a "
        "database of its own there and drops it afterwards. Default: a fresh SQLite file",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="Seconds to wait for the routing"
    )
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server()
        return

    messages = make_messages(args.messages, "buyer")
    warmup = make_messages(WARMUP, "warmup")
    with (
        tempfile.TemporaryDirectory(prefix="connector-mail-bench-") as folder,
        scratch_database(args.postgres_url) as postgres,
        contextlib.ExitStack() as stack,
    ):
        instance = Path(folder)
        database_url = postgres or f"sqlite:///{instance / 'connector.sqlite3'}"
        env = {
            **os.environ,
            "CONNECTOR_INSTANCE_PATH": str(instance),
            "CONNECTOR_SECRET_KEY": SECRET,
            "CONNECTOR_DATABASE_URL": database_url,
        }
        env.pop("CONNECTOR_REDIS_URL", None)
        env.pop("CONNECTOR_SMTP_URL", None)
        connector(env, "init-db")
        connector(env, "users", "create", "--org", "Bench", "--email", "ann@bench.example",
                  "--name", "Ann Admin", "--admin")  # fmt: skip
        connector(env, "orgs", "mail-domain", "--org", "Bench", "--domain", DOMAIN)
        connector(env, "aliases", "create", "--org", "Bench", "--address", ALIAS,
                  "--creates", "lead", "--owner", "ann@bench.example")  # fmt: skip

        # The floor: a bare aiosmtpd that discards.
        floor_log = instance / "floor.log"
        floor_process = start(
            [sys.executable, __file__, "--floor-server"], dict(os.environ), floor_log
        )
        stack.callback(stop, floor_process)
        floor_port = wait_for_port(floor_process, floor_log)
        send_all("127.0.0.1", floor_port, warmup, 1)
        # The best of three rounds: the floor is short, and this machine busy.
        floor = max(
            (send_all("127.0.0.1", floor_port, messages, args.connections) for _ in range(3)),
            key=lambda figures: figures["messages_per_s"],
        )
        stop(floor_process)

        # The gateway and the worker.
        gateway_log, worker_log = instance / "gateway.log", instance / "worker.log"
        gateway = start([str(BIN / "connector"), "mail-gateway", "--port", "0"], env, gateway_log)
        stack.callback(stop, gateway)
        worker = start(
            [str(BIN / "connector"), "worker", "--workers", str(args.workers)], env, worker_log
        )
        stack.callback(stop, worker)
        gateway_rss, worker_rss = PeakRss(gateway.pid), PeakRss(worker.pid)
        port = wait_for_port(gateway, gateway_log)
        send_all("127.0.0.1", port, warmup, 1)  # connections, imports, the worker's start
        wait_routed(database_url, 0, WARMUP, args.timeout)
        after_id = max_inbound_id(database_url)

        accept = send_all("127.0.0.1", port, messages, args.connections)
        counts, rows = wait_routed(database_url, after_id, args.messages, args.timeout)
        gateway_mb, rss_source = gateway_rss.megabytes()
        worker_mb, _ = worker_rss.megabytes()
        stop(gateway)
        stop(worker)

    processed = [aware(p) for _, _, p in rows if p is not None]
    first_send = dt.datetime.fromtimestamp(float(accept["started_wall"]), dt.UTC)
    e2e_seconds = (max(processed) - first_send).total_seconds()
    latencies = [(aware(p) - aware(r)).total_seconds() for _, r, p in rows if p is not None]
    routed = counts.get("done", 0)
    end_to_end = {
        "messages": len(rows),
        "statuses": counts,
        "seconds": round(e2e_seconds, 3),
        "messages_per_s": round(routed / e2e_seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }
    for figures in (floor, accept):
        figures.pop("started_wall")
    figures = {
        "messages": args.messages,
        "connections": args.connections,
        "worker_threads": args.workers,
        "database": "postgresql" if args.postgres_url else "sqlite",
        "floor": floor,
        "accept": accept,
        "end_to_end": end_to_end,
        "accept_to_floor": round(accept["messages_per_s"] / floor["messages_per_s"], 3),
        "end_to_end_to_floor": round(end_to_end["messages_per_s"] / floor["messages_per_s"], 3),
        "gateway_peak_rss_mb": gateway_mb,
        "worker_peak_rss_mb": worker_mb,
        "rss_source": rss_source,
    }

    print(
        f"{args.messages} messages from distinct senders, {args.connections} SMTP connections, "
        f"{figures['database']}, worker with {args.workers} threads"
    )
    print(f"{'measure':<34}{'msgs/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'ratio':>8}")
    rows_out = [
        ("floor (aiosmtpd, discards)", floor, 1.0),
        ("gateway accept (250 = stored)", accept, figures["accept_to_floor"]),
        ("end to end (routed, `done`)", end_to_end, figures["end_to_end_to_floor"]),
    ]
    for name, row, ratio in rows_out:
        print(f"{name:<34}{row['messages_per_s']:>9}{row['p50_ms']:>9}{row['p95_ms']:>9}{ratio:>8}")
    print(
        "floor and accept: p50/p95 of each MAIL-RCPT-DATA at the client; end to end: "
        "received_at to processed_at of each row"
    )
    print(f"end to end: {counts} in {end_to_end['seconds']} s from the first send")
    print(f"peak RSS ({rss_source}): gateway {gateway_mb} MB, worker {worker_mb} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
