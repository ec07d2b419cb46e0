"""Production through the real entry points: refusals, forwarded headers, bodies over the limit.

The commands run as an admin runs them (`.venv/bin/connector`, gunicorn on wsgi.py), in
subprocesses with only the environment each test gives them.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import request, url_for

from connector.app import create_app
from connector.web.request_body import DRAIN_CAP_BYTES, DRAIN_SECONDS

from .conftest import base_config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "p" * 40
PRODUCTION = {
    "CONNECTOR_ENV": "production",
    "CONNECTOR_SECRET_KEY": SECRET,
    "CONNECTOR_PUBLIC_URL": "https://connector.example.com",
}
REDIS = os.environ.get("CONNECTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def environment(instance: Path, **variables: str) -> dict[str, str]:
    """The test's own environment without any CONNECTOR_* setting, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return {**env, "CONNECTOR_INSTANCE_PATH": str(instance), **variables}


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0], result.stderr


REFUSALS = [
    ({"CONNECTOR_SECRET_KEY": ""}, "CONNECTOR_SECRET_KEY is required"),
    ({"CONNECTOR_SECRET_KEY": "too-short-a-secret"}, "at least 32 characters"),
    ({"CONNECTOR_PUBLIC_URL": "http://connector.example.com"}, "must be an https URL"),
    ({"CONNECTOR_ENV": "staging"}, "CONNECTOR_ENV must be development or production"),
    ({"CONNECTOR_ENV": "PRODUCTION", "CONNECTOR_SECRET_KEY": "short"}, "at least 32 characters"),
]


@pytest.mark.parametrize(("changes", "message"), REFUSALS)
@pytest.mark.parametrize("command", [["init-db"], ["serve", "--port", "0"], ["demo"]])
def test_connector_commands_refuse(
    tmp_path: Path, changes: dict[str, str], message: str, command: list[str]
) -> None:
    result = run(
        [str(BIN / "connector"), *command], environment(tmp_path, **{**PRODUCTION, **changes})
    )
    assert_refused(result, message)
    assert not (tmp_path / "connector.sqlite3").exists()


@pytest.mark.parametrize(("changes", "message"), REFUSALS)
def test_gunicorn_refuses(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    command = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{free_port()}", "wsgi:app"]
    result = run(command, environment(tmp_path, **{**PRODUCTION, **changes}))
    assert_refused(result, message)


def test_gunicorn_without_our_settings_file_still_refuses(tmp_path: Path) -> None:
    """wsgi.py checks on its own too (another settings file, or another WSGI server)."""
    settings = tmp_path / "other.conf.py"
    settings.write_text("workers = 1\n")
    command = [str(BIN / "gunicorn"), "-c", str(settings), "-b", f"127.0.0.1:{free_port()}"]
    env = environment(tmp_path, **{**PRODUCTION, "CONNECTOR_SECRET_KEY": "short"})
    result = run([*command, "wsgi:app"], env)
    assert_refused(result, "at least 32 characters")


def test_sqlite_with_several_workers_is_refused(tmp_path: Path) -> None:
    # Redis lets `serve` run several workers; SQLite still cannot take their writes.
    env = environment(tmp_path, **PRODUCTION, CONNECTOR_REDIS_URL=REDIS)
    serve = run([str(BIN / "connector"), "serve", "--workers", "3", "--port", "0"], env)
    assert_refused(serve, "SQLite cannot serve 3 worker processes")
    default = run([str(BIN / "connector"), "serve", "--port", "0"], env)
    assert_refused(default, "SQLite cannot serve")
    gunicorn = [str(BIN / "gunicorn"), "-w", "3", "-b", f"127.0.0.1:{free_port()}", "wsgi:app"]
    assert_refused(run(gunicorn, env), "SQLite cannot serve 3 worker processes")


def test_gunicorn_checks_the_configuration_without_making_the_app(tmp_path: Path) -> None:
    """gunicorn.conf.py's master hook reads the configuration only (no engine, no store,
    no routes), and its settings are `connector serve`'s."""
    code = (
        "import json, runpy, sys, types\n"
        "conf = runpy.run_path('gunicorn.conf.py')\n"
        "conf['on_starting'](types.SimpleNamespace(cfg=types.SimpleNamespace(workers=1)))\n"
        "from connector.gunicorn_options import GUNICORN_OPTIONS\n"
        "same = all(conf[name] == value for name, value in GUNICORN_OPTIONS.items())\n"
        "print(json.dumps(['connector.web.api.base' in sys.modules, same]))"
    )
    result = run([sys.executable, "-c", code], environment(tmp_path, **PRODUCTION))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, True]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    key: str

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server stopped"
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise AssertionError("the server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


LIMIT = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`connector serve` (gunicorn) in production, with a 1,000-byte body limit and a user."""
    instance = tmp_path_factory.mktemp("instance")
    env = environment(instance, **PRODUCTION, CONNECTOR_MAX_REQUEST_BYTES=str(LIMIT))
    connector = str(BIN / "connector")
    for command in (
        ["init-db"],
        ["users", "create", "--org", "Acme", "--email", "ann@acme.test", "--name", "Ann"],
    ):
        assert run([connector, *command], env).returncode == 0
    issued = run([connector, "keys", "issue", "--email", "ann@acme.test"], env)
    assert issued.returncode == 0, issued.stderr
    port = free_port()
    process = start([connector, "serve", "--port", str(port)], env, port)
    yield Server(process, port, issued.stdout.strip().splitlines()[-1])
    stop(process)


def test_a_sound_production_configuration_serves(server: Server) -> None:
    connection = server.connection()
    connection.request("GET", "/api/v1/me", headers={"Authorization": f"Bearer {server.key}"})
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["email"] == "ann@acme.test"


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read off a raw socket (Content-Length bodies only)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before the response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), headers, body


def send_big_body(server: Server, framing: str, size: int) -> socket.socket:
    """POST a raw email of `size` bytes, sent whole before reading anything back."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    head = (
        "POST /api/v1/emails?record=contact:1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.key}\r\nContent-Type: message/rfc822\r\n"
    )
    piece = b"Subject: big\r\n\r\n" + b"x" * 65_520 + b"\r\n"
    pieces = [piece] * (size // len(piece))
    if framing == "length":
        sock.sendall(f"{head}Content-Length: {len(piece) * len(pieces)}\r\n\r\n".encode())
        for part in pieces:
            sock.sendall(part)
    else:
        sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        for part in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
    return sock


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_over_the_limit_gets_its_413(server: Server, framing: str) -> None:
    # Megabytes, far more than the socket buffers hold: unread, they would reset the
    # connection under the client before it could read the answer.
    with send_big_body(server, framing, 8 * 1024 * 1024) as sock:
        status, headers, body = read_response(sock)
        assert status == 413
        assert headers["content-type"] == "application/json"
        error = json.loads(body)
        assert error["code"] == 413 and "1000 bytes" in error["message"]
        # The body was drained, so the connection serves the next request.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock)[0] == 200


def test_a_declared_length_past_the_drain_cap_is_answered_without_reading(
    server: Server,
) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(
            b"POST /api/v1/emails HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: message/rfc822\r\n"
            b"Content-Length: %d\r\n\r\n" % (DRAIN_CAP_BYTES * 100)
        )
        status, _, body = read_response(sock)
    assert status == 413 and json.loads(body)["code"] == 413
    assert time.monotonic() - started < 5


def test_a_slow_sender_does_not_hold_the_worker_past_the_drain_deadline(tmp_path: Path) -> None:
    """After the answer, the unread body is drained for DRAIN_SECONDS at most: a client
    trickling it byte by byte does not keep the only worker thread from others."""
    env = environment(tmp_path, **PRODUCTION, CONNECTOR_MAX_REQUEST_BYTES=str(LIMIT))
    connector = str(BIN / "connector")
    assert run([connector, "init-db"], env).returncode == 0
    port = free_port()
    process = start([connector, "serve", "--port", str(port), "--threads", "1"], env, port)
    done = threading.Event()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as slow:
            slow.sendall(
                b"POST /api/v1/emails HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: message/rfc822\r\nContent-Length: 1000000\r\n\r\n"
            )
            assert read_response(slow)[0] == 413
            answered = time.monotonic()

            def trickle() -> None:
                while not done.is_set():
                    try:
                        slow.sendall(b"x")
                    except OSError:
                        return  # the server closed the connection
                    done.wait(0.1)

            sender = threading.Thread(target=trickle)
            sender.start()
            try:
                other = http.client.HTTPConnection("127.0.0.1", port, timeout=DRAIN_SECONDS + 10)
                other.request("GET", "/healthz")
                assert other.getresponse().status == 200
                waited = time.monotonic() - answered
            finally:
                done.set()
                sender.join()
        assert waited < DRAIN_SECONDS + 4
    finally:
        stop(process)


def probe_app(tmp_path: Path, **config: object) -> object:
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path / 'c.sqlite3'}", **config))

    @app.get("/probe")
    def probe() -> dict[str, str]:
        return {
            "client": request.remote_addr or "",
            "scheme": request.scheme,
            "host": request.host,
            "link": url_for("healthz", _external=True),
        }

    return app


FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "connector.example.com",
    "X-Forwarded-Port": "443",
}


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "seen"),
    [
        # None trusted (the default): the headers are anyone's to write, so none counts.
        (0, "198.51.100.66, 203.0.113.9", ("10.0.0.2", "http", "localhost")),
        # One proxy: its own entry, the last, is the client; what the client made up is not.
        (1, "198.51.100.66, 203.0.113.9", ("203.0.113.9", "https", "connector.example.com")),
        # Two proxies: two hops back; the second proxy (10.0.0.1) saw plain http from the
        # first, which each header records too.
        (
            2,
            "198.51.100.66, 203.0.113.9, 10.0.0.1",
            ("203.0.113.9", "https", "connector.example.com"),
        ),
    ],
)
def test_trusted_proxies_say_who_the_client_is(
    tmp_path: Path, hops: int, forwarded_for: str, seen: tuple[str, str, str]
) -> None:
    client = probe_app(tmp_path, TRUSTED_PROXIES=hops).test_client()  # type: ignore[attr-defined]
    headers = {**FORWARDED, "X-Forwarded-For": forwarded_for}
    if hops == 2:
        headers.update(
            {
                "X-Forwarded-Proto": "https, http",
                "X-Forwarded-Host": "connector.example.com, internal:8080",
                "X-Forwarded-Port": "443, 8080",
            }
        )
    answer = client.get("/probe", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"}).json
    client_address, scheme, host = seen
    assert answer == {
        "client": client_address,
        "scheme": scheme,
        "host": host,
        "link": f"{scheme}://{host}/healthz",
    }


def test_a_chunked_body_within_the_limit_reaches_the_view_whole(server: Server) -> None:
    body = json.dumps({"name": "Chunked Charlie", "emails": ["charlie@chunked.test"]}).encode()
    connection = server.connection()
    connection.putrequest("POST", "/api/v1/contacts")
    for name, value in (
        ("Authorization", f"Bearer {server.key}"),
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
    ):
        connection.putheader(name, value)
    connection.endheaders()
    for start in range(0, len(body), 10):
        part = body[start : start + 10]
        connection.send(b"%x\r\n%s\r\n" % (len(part), part))
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    assert response.status == 201, response.read()
    assert json.loads(response.read())["contact"]["name"] == "Chunked Charlie"
