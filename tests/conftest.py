"""Fixtures: the app on each backend (SQLite with the in-process store, PostgreSQL with Redis),
a fresh database per test, and users with API keys.

PostgreSQL and Redis are used for real. When they cannot be reached the tests that
need them are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from connector.app import create_app
from connector.db import session_scope, upgrade_schema
from connector.models import Base
from connector.orgs import service as orgs
from connector.orgs.models import Role
from connector.providers.google.tokens import GoogleTokenVerifier, google_certificates
from tests.fakes.google import FakeGoogle, FakeGoogleIdP
from tests.fakes.servers import serve
from tests.own_services import OwnPostgres, copy_cluster, own_postgres_folder, start_redis

POSTGRES_URL = os.environ.get(
    "CONNECTOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CONNECTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]


def unavailable(what: str, error: Exception) -> None:
    message = f"{what} unreachable: {error}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services must be there, nothing is skipped)")
    pytest.skip(message)


def base_config(**overrides: Any) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret", **overrides}


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test run, migrated once, dropped at the end."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"connector_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        unavailable("PostgreSQL", error)
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(False)
    app = create_app(base_config(DATABASE_URL=url))
    upgrade_schema(app)
    app.extensions["connector.engine"].dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_emptying(postgres_database: str) -> str:
    """SQL that empties every table and starts every id sequence again at 1, as
    `TRUNCATE ... RESTART IDENTITY` does: DELETE, children before parents, takes a few
    milliseconds on the handful of rows a test leaves, where TRUNCATE takes a tenth of a
    second or more (it makes new files for every table)."""
    engine = sa.create_engine(postgres_database)
    with engine.connect() as connection:
        sequences = connection.execute(
            sa.text("SELECT schemaname, sequencename, start_value FROM pg_sequences ORDER BY 1, 2")
        ).all()
    engine.dispose()
    statements = [f'DELETE FROM "{t.name}"' for t in reversed(Base.metadata.sorted_tables)]
    statements += [
        f"SELECT setval('{schema}.{name}', {start}, false)" for schema, name, start in sequences
    ]
    return ";\n".join(statements)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies: migrating once keeps the suite quick."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{path}"))
    upgrade_schema(app)
    app.extensions["connector.engine"].dispose()
    return path


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable("Redis", error)
    return REDIS_URL


def _clear_redis(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    if backend == "sqlite":
        path = tmp_path / "connector.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        app = create_app(base_config(DATABASE_URL=f"sqlite:///{path}"))
        yield app
        app.extensions["connector.engine"].dispose()
        return
    url = request.getfixturevalue("postgres_database")
    emptying = request.getfixturevalue("postgres_emptying")
    store_url = request.getfixturevalue("redis_url")
    prefix = f"connector-test:{uuid.uuid4().hex}:"
    app = create_app(base_config(DATABASE_URL=url, REDIS_URL=store_url, REDIS_PREFIX=prefix))
    engine = app.extensions["connector.engine"]
    with engine.begin() as connection:
        connection.exec_driver_sql(emptying)
    yield app
    engine.dispose()
    _clear_redis(store_url, prefix)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@dataclass
class Caller:
    """A user with an API key, and a client that sends it."""

    client: FlaskClient
    user_id: int
    org_id: int
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def _send(self, method: str, url: str, headers: dict[str, str] | None, **kwargs: Any) -> Any:
        return self.client.open(
            url, method=method, headers={**self.headers, **(headers or {})}, **kwargs
        )

    def get(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self._send("GET", url, headers, **kwargs)

    def post(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self._send("POST", url, headers, **kwargs)

    def patch(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self._send("PATCH", url, headers, **kwargs)

    def delete(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self._send("DELETE", url, headers, **kwargs)


@pytest.fixture
def make_caller(app: Flask, client: FlaskClient) -> Any:
    def make(org: str = "Acme", email: str = "ann@acme.test", role: Role = Role.ADMIN) -> Caller:
        with session_scope(app) as session:
            organization = orgs.get_or_create_org(session, org)
            user = orgs.create_user(session, organization, email, email.split("@")[0], role)
            key = orgs.issue_key(session, user, "test")
            return Caller(client, user.id, organization.id, user.email, key)

    return make


@pytest.fixture
def caller(make_caller: Any) -> Caller:
    return make_caller()


# The browser ---------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright: launched once, shared by every test that opens
    pages (each test opens a browser context of its own: no cookies or storage shared)."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


# Servers of a test's own, to break on purpose (tests/own_services.py) ----------------------


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[Path]:
    """A fresh PostgreSQL data folder, made once; each own_postgres copies it."""
    folder = own_postgres_folder()
    try:
        OwnPostgres.initdb(folder)
    except (OSError, subprocess.CalledProcessError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        unavailable("PostgreSQL's initdb", error)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_postgres(postgres_template: Path) -> Iterator[OwnPostgres]:
    """A PostgreSQL server of this test's own, started; stopped and removed afterwards."""
    server = copy_cluster(postgres_template)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of this test's own; killed afterwards."""
    try:
        process, url = start_redis(tmp_path)
    except (OSError, RuntimeError) as error:
        unavailable("redis-server", error)
    yield process, url
    process.kill()
    process.wait(timeout=10)


# Background jobs -----------------------------------------------------------------------------


@pytest.fixture
def queue_app(app: Flask, tmp_path: Path) -> Flask:
    """The test's app, with its instance folder (and so the SQLite queue) in tmp_path."""
    instance = tmp_path / "instance"
    instance.mkdir()
    app.instance_path = str(instance)
    return app


@pytest.fixture
def worker(queue_app: Flask) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `connector worker` on the same database and queue as the test's app."""
    started: list[subprocess.Popen[bytes]] = []
    log = Path(queue_app.instance_path) / "worker.log"

    def environment() -> dict[str, str]:
        """Read when the worker starts: a test may set its app's mail settings first."""
        config = queue_app.config
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        env.update(
            CONNECTOR_INSTANCE_PATH=queue_app.instance_path,
            CONNECTOR_DATABASE_URL=config["DATABASE_URL"],
            CONNECTOR_SECRET_KEY=config["SECRET_KEY"],
        )
        if config["REDIS_URL"]:
            env.update(
                CONNECTOR_REDIS_URL=config["REDIS_URL"],
                CONNECTOR_REDIS_PREFIX=config["REDIS_PREFIX"],
            )
        # The mail settings a test gave its app (where acknowledgments go, the DKIM key).
        for key in ("SMTP_URL", "SMTP_CA_FILE", "DKIM_SELECTOR", "DKIM_KEY_FILE"):
            if config.get(key):
                env[f"CONNECTOR_{key}"] = str(config[key])
        return env

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "connector"), "worker", "--workers", "1"],
                env=environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        process.send_signal(signal.SIGINT)  # graceful: the running job ends first
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Google sign-in --------------------------------------------------------------------------------


@pytest.fixture
def idp(app, caller, monkeypatch) -> Iterator[tuple[FakeGoogleIdP, str]]:
    """Google's sign-in played on loopback (certificates, the identity provider) and the
    app served, configured to use them: the caller signs in as themselves."""
    google = FakeGoogle()
    fake = FakeGoogleIdP(google, user_email=caller.email)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fakes speak http on loopback
    with serve(google.certs_app()) as certs, serve(fake.app()) as idp_url, serve(app) as base:
        app.config.update(
            PUBLIC_URL=base,
            GOOGLE_OAUTH_CLIENT_ID=fake.client_id,
            GOOGLE_OAUTH_CLIENT_SECRET=fake.client_secret,
            GOOGLE_AUTH_URL=idp_url + "/o/oauth2/v2/auth",
            GOOGLE_TOKEN_URL=idp_url + "/token",
            GOOGLE_REVOKE_URL=idp_url + "/revoke",
        )
        app.extensions["connector.google_verifier"] = GoogleTokenVerifier(
            google_certificates(certs + "/oauth2/v1/certs")
        )
        yield fake, base
