"""Benchmark: `connector import contacts` of a 100k-row Outlook export, on SQLite and PostgreSQL.

Writes an Outlook-style CSV (UTF-8 with a BOM, every field quoted, CRLF; names, two
addresses for a third of the people, company, job title, phone, notes with commas) and
imports it with the `connector` command into a fresh SQLite file and into a fresh
PostgreSQL database (created on the server named by --postgres-url and dropped at the end),
then imports it again (every row unchanged). It measures in the same run a floor: the time
Python's csv module takes merely to read the file (decode and split into rows). Prints a
table, then one JSON line with the figures.

  python bench/import_bench.py [--rows 100000] [--postgres-url URL] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
DEFAULT_POSTGRES = os.environ.get(
    "CONNECTOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SUMMARY = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), rejected (\d+)")
HEADER = [
    "Title",
    "First Name",
    "Middle Name",
    "Last Name",
    "Suffix",
    "Company",
    "Department",
    "Job Title",
    "Business Street",
    "Business City",
    "Business Phone",
    "Mobile Phone",
    "E-mail Address",
    "E-mail Type",
    "E-mail Display Name",
    "E-mail 2 Address",
    "Notes",
]
FIRST = ["Ana", "Bruno", "Carla", "Dan", "Eva", "Farid", "Gil", "Helena", "Ivo", "Jürgen"]
LAST = ["Lima", "Costa", "Dias", "Evans", "Fischer", "Haddad", "Gomes", "Horta", "Ilić", "Müller"]


def write_outlook_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(HEADER)
        for n in range(rows):
            first, last = FIRST[n % 10], LAST[(n // 10) % 10]
            firm = n % 5000
            address = f"{first.lower()}.{n}@firm{firm}.example"
            writer.writerow(
                [
                    "Ms." if n % 2 else "Mr.",
                    first,
                    "",
                    last,
                    "",
                    f"Firm {firm} Ltd",
                    "Purchasing",
                    "Buyer",
                    f"{n} Main Street",
                    "Springfield",
                    f"+1 555 {n:06d}",
                    "",
                    address,
                    "SMTP",
                    f"{first} {last} ({address})",
                    f"{first.lower()}{n}@gmail.com" if n % 3 == 0 else "",
                    "Met at the fair, booth 12; call back" if n % 5 == 0 else "",
                ]
            )


def floor_seconds(path: Path) -> float:
    """Merely reading the file: decode it and split it into rows with Python's csv module."""
    started = time.perf_counter()
    text = path.read_bytes().decode("utf-8-sig")
    count = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    elapsed = time.perf_counter() - started
    assert count > 0
    return elapsed


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"connector_import_bench_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def connector(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "connector"), *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"connector {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def timed_import(env: dict[str, str], path: Path) -> tuple[float, float, str]:
    """The whole command's time, the import's own (as the command reports it), the summary."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "connector"), "import", "contacts", str(path), "--org", "Bench"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the import failed:\n{result.stdout}\n{result.stderr}")
    own = float(re.search(r"rows in ([\d.]+) s", result.stderr).group(1))
    return elapsed, own, SUMMARY.search(result.stdout).group(0)


def startup_seconds(env: dict[str, str]) -> float:
    """What any `connector` command costs before it does anything (Python, the app)."""
    started = time.perf_counter()
    connector(env, "--help")
    return time.perf_counter() - started


def run_backend(name: str, database_url: str, instance: str, path: Path, rows: int) -> dict:
    env = {
        **os.environ,
        "CONNECTOR_INSTANCE_PATH": instance,
        "CONNECTOR_SECRET_KEY": "bench-secret-" + "x" * 40,
        "CONNECTOR_DATABASE_URL": database_url,
    }
    env.pop("CONNECTOR_REDIS_URL", None)
    connector(env, "init-db")
    connector(env, "users", "create", "--org", "Bench", "--email", "admin@bench.example",
              "--name", "Bench Admin", "--admin")  # fmt: skip
    startup = startup_seconds(env)
    first, first_own, first_summary = timed_import(env, path)
    again, again_own, again_summary = timed_import(env, path)
    return {
        "backend": name,
        "rows": rows,
        "startup_s": round(startup, 2),
        "command_s": round(first, 2),
        "command_rows_per_s": round(rows / first),
        "import_s": round(first_own, 2),
        "rows_per_s": round(rows / first_own),
        "summary": first_summary,
        "reimport_command_s": round(again, 2),
        "reimport_s": round(again_own, 2),
        "reimport_rows_per_s": round(rows / again_own),
        "reimport_summary": again_summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="A PostgreSQL server (URL of any database on it): the benchmark creates a "
        f"database of its own there and drops it afterwards [default: {DEFAULT_POSTGRES}]",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="connector-import-bench-") as folder:
        path = Path(folder) / "outlook.csv"
        write_outlook_csv(path, args.rows)
        floor = min(floor_seconds(path) for _ in range(3))
        sqlite_instance = Path(folder) / "sqlite"
        sqlite_instance.mkdir()
        results.append(
            run_backend(
                "sqlite",
                f"sqlite:///{sqlite_instance / 'connector.sqlite3'}",
                str(sqlite_instance),
                path,
                args.rows,
            )
        )
        if not args.no_postgres:
            pg_instance = Path(folder) / "postgres"
            pg_instance.mkdir()
            with scratch_database(args.postgres_url) as url:
                results.append(run_backend("postgresql", url, str(pg_instance), path, args.rows))
        size_mb = path.stat().st_size / 1e6

    floor_rate = args.rows / floor
    print(f"{args.rows:,} Outlook rows, {size_mb:.1f} MB (BOM, all fields quoted)")
    print(f"floor: Python's csv module reads it in {floor:.2f} s = {floor_rate:,.0f} rows/s")
    print(
        f"{'backend':<11} {'import s':>9} {'rows/s':>9} {'import/floor':>13} "
        f"{'command s':>10} {'again s':>8} {'rows/s':>9}  summary (first run)"
    )
    for r in results:
        r["floor_ratio"] = round(r["import_s"] / floor, 1)
        print(
            f"{r['backend']:<11} {r['import_s']:>9.2f} {r['rows_per_s']:>9,} "
            f"{r['floor_ratio']:>12.1f}x {r['command_s']:>10.2f} {r['reimport_s']:>8.2f} "
            f"{r['reimport_rows_per_s']:>9,}  {r['summary']}"
        )
    print(
        "import s: the import as the command times it (file read, matched, written, "
        "committed); command s: the whole `connector import` process, with its start "
        f"(`connector --help` alone takes {results[0]['startup_s']} s here)"
    )
    goal = next((r for r in results if r["backend"] == "postgresql"), None)
    if goal is not None:
        verdict = "meets" if goal["rows_per_s"] >= 10_000 else "MISSES"
        print(f"PostgreSQL {verdict} the goal of 10,000 rows/s ({goal['rows_per_s']:,})")
    print(json.dumps({"rows": args.rows, "floor_s": round(floor, 3), "results": results}))


if __name__ == "__main__":
    main()
