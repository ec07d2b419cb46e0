"""Every command in the README's `sh` examples works as written, or is named here as one that
runs outside the test suite (on a server, against Google, or the suite's own runner).

`curl` commands go to the app through its test client, with the demo data and its API key;
`connector` commands go through its command runner, in an empty folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from connector.app import create_app
from connector.db import session_scope
from connector.models import Contact

from .conftest import base_config, unavailable

README = Path(__file__).resolve().parent.parent / "README.md"
LOCAL = "http://127.0.0.1:8000"

# Programs the README shows that the suite does not run, and why.
ELSEWHERE = {
    "./dev": "the suite itself runs under `./dev test`; `./dev start` serves until stopped",
    "gcloud": "Google's CLI, against a Google Cloud project",
    ".venv/bin/python": "the benchmark, minutes long (bench/)",
    "useradd": "server setup, as root",
    "install": "server setup, as root",
    "git": "server setup: the checkout",
    "cd": "server setup",
    "python3": "server setup: the virtual environment",
    ".venv/bin/pip": "server setup: the install",
    "createuser": "server setup: PostgreSQL",
    "createdb": "server setup: PostgreSQL",
    "dropdb": "restore, on the server",
    "pg_dump": "run by the backup test, on its own database",
    "pg_restore": "run by the backup test, into a scratch database",
    "systemctl": "systemd, on the server",
    "journalctl": "systemd, on the server",
    "nginx": "nginx, on the server",
}


def sh_commands() -> list[str]:
    """Each command of the README's sh blocks: continuations joined, comments dropped."""
    blocks = re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", README.read_text(), re.M | re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def simple_commands(command: str) -> list[list[str]]:
    """`a && b` as [a, b]; `sudo -u user x` as x."""
    parts: list[list[str]] = [[]]
    for word in shlex.split(command):
        if word == "&&":
            parts.append([])
        else:
            parts[-1].append(word)
    for part in parts:
        if part[:1] == ["sudo"]:
            del part[: 3 if part[1:2] == ["-u"] else 1]
    return parts


ASSIGNMENT = re.compile(r"^([A-Z_]+)=(.*)$")


def program(words: list[str]) -> str:
    if ASSIGNMENT.match(words[0]) and len(words) == 1:
        return "="
    return "connector" if words[0].endswith("connector") else words[0]


def demo_key(runner) -> str:
    demo = runner.invoke(args=["demo"])
    assert demo.exit_code == 0, demo.output
    return re.search(r"Demo API key: (\S+)", demo.output).group(1)


def test_the_readme_has_examples_and_each_is_known() -> None:
    commands = sh_commands()
    programs = {program(words) for c in commands for words in simple_commands(c)}
    assert {"curl", "connector"} <= programs
    unknown = programs - set(ELSEWHERE) - {"curl", "connector", "="}
    assert not unknown, f"README commands neither run by this test nor listed: {unknown}"


def curl(client, words: list[str], variables: dict[str, str]):
    """Send what `curl` would, through the test client."""
    headers: dict[str, str] = {}
    data: bytes | None = None
    method = None
    url = None
    args = iter(words[1:])
    for arg in args:
        if arg in ("-H", "--header"):
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "--data-binary":
            source = next(args)
            data = Path(source[1:]).read_bytes() if source.startswith("@") else source.encode()
        elif arg in ("-X", "--request"):
            method = next(args)
        elif arg.startswith("-"):
            raise AssertionError(f"the test does not know curl's {arg}")
        else:
            url = arg
    assert url and url.startswith(LOCAL), url
    for name, value in variables.items():
        headers = {k: v.replace(name, value) for k, v in headers.items()}
        url = url.replace(name, value)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    method = method or ("POST" if data is not None else "GET")
    return client.open(path, method=method, headers=headers, data=data)


MESSAGE = (
    b"From: Hank Scorpio <hank@globex.test>\r\nTo: ann@acme.test\r\n"
    b"Subject: Quote\r\nMessage-ID: <readme@globex.test>\r\n"
    b"Date: Fri, 20 Nov 2026 10:00:00 +0000\r\n\r\nHello, a quote please.\r\n"
)


def test_every_readme_command_works_as_written(
    app, client, runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    key = demo_key(runner)
    with session_scope(app) as session:
        # The README opens contact 1, then looks up one of its addresses.
        address = session.get(Contact, 1).emails[0].email
    (tmp_path / "message.eml").write_bytes(MESSAGE)
    placeholders = {"<the printed key>": key, "<one of its addresses>": address}
    variables: dict[str, str] = {}
    ran = 0
    for command in sh_commands():
        for words in simple_commands(command):
            if program(words) == "=":
                name, value = ASSIGNMENT.match(words[0]).groups()
                variables[f"${name}"] = placeholders.get(value, value)
            elif program(words) == "curl":
                response = curl(client, words, {**variables, **placeholders})
                assert response.status_code < 300, (command, response.get_json())
                ran += 1
            elif program(words) == "connector":
                result = runner.invoke(args=words[1:])
                assert result.exit_code == 0, (command, result.output)
                ran += 1
    assert ran >= 5
    with session_scope(app) as session:
        logged = session.scalar(sa.text("SELECT count(*) FROM activities WHERE subject = 'Quote'"))
    assert logged == 1


def test_the_quick_start_finds_what_it_says(client, runner, tmp_path, monkeypatch) -> None:
    """Contact 1 has addresses, one of them looks up that contact, and `q=co` lists some."""
    monkeypatch.chdir(tmp_path)
    headers = {"Authorization": f"Bearer {demo_key(runner)}"}
    card = client.get("/api/v1/contacts/1", headers=headers).get_json()
    address = card["contact"]["emails"][0]
    found = client.get(f"/api/v1/lookup?email={address}", headers=headers).get_json()
    assert found["results"][0]["contact"]["id"] == 1
    assert client.get("/api/v1/search?q=co", headers=headers).get_json()["total"] > 0


def backup_commands() -> dict[str, list[str]]:
    found = {}
    for command in sh_commands():
        for words in simple_commands(command):
            if program(words) in ("pg_dump", "pg_restore"):
                found[program(words)] = words
    assert set(found) == {"pg_dump", "pg_restore"}
    return found


# PostgreSQL's own tools: on the PostgreSQL backend only.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_backup_and_restore_commands_round_trip(
    app, backend: str, runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's pg_dump and pg_restore, on the test's database and a scratch one."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        unavailable("pg_dump and pg_restore", FileNotFoundError("not on PATH"))
    monkeypatch.chdir(tmp_path)
    demo_key(runner)
    source = sa.engine.make_url(app.config["DATABASE_URL"])
    scratch = f"connector_restore_{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "PGHOST": source.host or "127.0.0.1",
        "PGPORT": str(source.port or 5432),
        "PGUSER": source.username or "postgres",
        **({"PGPASSWORD": source.password} if source.password else {}),
    }
    dump = tmp_path / "connector.dump"
    commands = backup_commands()
    # The README's words, with this test's file and databases in place of the server's.
    pg_dump = [
        f"--file={dump}" if word.startswith("--file=") else word
        for word in commands["pg_dump"][:-1]
    ] + [source.database]
    pg_restore = [
        f"--dbname={scratch}" if word.startswith("--dbname=") else word
        for word in commands["pg_restore"][:-1]
    ] + [str(dump)]
    admin = sa.create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
    try:
        subprocess.run(pg_dump, env=env, check=True, capture_output=True, timeout=120)
        subprocess.run(pg_restore, env=env, check=True, capture_output=True, timeout=120)
        restored = create_app(
            base_config(DATABASE_URL=source.set(database=scratch).render_as_string(False))
        )
        upgraded = restored.test_cli_runner().invoke(args=["init-db"])
        assert upgraded.exit_code == 0 and "up to date" in upgraded.output, upgraded.output
        count = sa.select(sa.func.count()).select_from(Contact)
        with session_scope(app) as session:
            expected = session.scalar(count)
        with session_scope(restored) as session:
            assert session.scalar(count) == expected > 0
        restored.extensions["connector.engine"].dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()
