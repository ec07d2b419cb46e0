"""PostgreSQL and Redis servers of a test's own, on free loopback ports, to break on purpose
(stop, hang, restart, make read-only) without touching the shared ones.

PostgreSQL comes from the Debian packages (`initdb` and `pg_ctl` in
/usr/lib/postgresql/<version>/bin, installed by .ci/run when missing); it refuses to run
as root, so under root its processes run as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, else the newest of Debian's versions."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _as_server_user() -> dict[str, Any]:
    """Popen's arguments to run as `postgres` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


class OwnPostgres:
    """A PostgreSQL cluster in a folder of its own; `url` names its `postgres` database."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        self._pg_ctl = postgres_bin("pg_ctl") or "pg_ctl"

    @classmethod
    def initdb(cls, folder: Path) -> None:
        """Make a data folder (once per test session; each server copies it)."""
        initdb = postgres_bin("initdb")
        if initdb is None:
            raise FileNotFoundError("initdb (Debian package postgresql) is not installed")
        subprocess.run(
            [initdb, "-D", str(folder / "data"), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, **_as_server_user(),
        )  # fmt: skip

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [self._pg_ctl, "-D", str(self.data), *args],
            check=check, capture_output=True, timeout=60, **_as_server_user(),
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._ctl("-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop", check=False)

    def restart(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")
        self.start()

    def _pids(self) -> list[int]:
        # The postmaster and every backend: a stopped machine stops them all.
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *_children(postmaster)]

    @contextmanager
    def hung(self) -> Iterator[None]:
        """The server stops answering (SIGSTOP), as a frozen machine would, then goes on."""
        pids = self._pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def execute(self, sql: str) -> None:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
            autocommit=True, connect_timeout=5,
        ) as connection:  # fmt: skip
            connection.execute(sql)  # type: ignore[arg-type]

    def set_read_only(self, read_only: bool) -> None:
        """Every new transaction read-only, as on a standby after a failover."""
        self.execute(
            f"ALTER SYSTEM SET default_transaction_read_only = {'on' if read_only else 'off'}"
        )
        self.execute("SELECT pg_reload_conf()")


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": the command may hold spaces, so split after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def own_postgres_folder() -> Path:
    # Not under pytest's tmp_path: its parents are root's alone, and the server runs
    # as `postgres`, which must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="connector-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


def copy_cluster(template: Path) -> OwnPostgres:
    folder = own_postgres_folder()
    # cp -a keeps the owner (`postgres`) and the modes the server insists on.
    subprocess.run(["cp", "-a", str(template / "data"), str(folder / "data")], check=True)
    return OwnPostgres(folder, free_port())


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        raise FileNotFoundError("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
            return process, url
        except redis.RedisError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the test's redis-server did not start") from None
            time.sleep(0.05)
