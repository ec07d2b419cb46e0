"""Email templates: listing, creating, rendering for a record, and the sandbox."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import requests

from connector.db import session_scope
from connector.email_templates import budget
from connector.email_templates.models import EmailTemplate
from connector.orgs.models import Role
from tests.helpers import create_company, create_contact, create_lead


def make_template(caller, name="Hello", subject="Hi {{ contact.first_name }}", body=None):
    body = body or (
        "<p>Dear {{ contact.name }} of {{ company.name }},</p>"
        "<p>about {{ lead.title }}.</p><p>{{ user.name }}</p>"
    )
    return caller.post(
        "/api/v1/templates", json={"name": name, "subject": subject, "body_html": body}
    )


def test_create_list_and_render_for_a_lead(caller) -> None:
    create_company(caller, "Globex & Sons", ["globex.test"])
    contact = create_contact(caller, "Hank <b>Scorpio</b>", ["hank@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title="50 seats")
    created = make_template(caller)
    assert created.status_code == 201
    listed = caller.get("/api/v1/templates").json
    assert [t["name"] for t in listed] == ["Hello"]
    response = caller.post(
        f"/api/v1/templates/{created.json['id']}/render",
        json={"record": {"type": "lead", "id": lead["id"]}},
    )
    assert response.status_code == 200, response.json
    rendered = response.json
    assert rendered["subject"] == "Hi Hank"
    # Values are escaped in the HTML body: a name cannot inject markup.
    assert "Hank &lt;b&gt;Scorpio&lt;/b&gt;" in rendered["body_html"]
    assert "Globex &amp; Sons" in rendered["body_html"]
    assert "about 50 seats." in rendered["body_html"]
    assert "ann" in rendered["body_html"]
    assert "Dear Hank <b>Scorpio</b> of Globex & Sons" in rendered["body_text"]


def test_render_for_a_contact_without_company_leaves_blanks(caller) -> None:
    contact = create_contact(caller, "Joe", ["joe@gmail.com"])
    template = make_template(caller).json
    rendered = caller.post(
        f"/api/v1/templates/{template['id']}/render",
        json={"record": {"type": "contact", "id": contact["id"]}},
    ).json
    assert "Dear Joe of ," in rendered["body_html"]


def test_the_sandbox_reaches_nothing(caller) -> None:
    contact = create_contact(caller)
    attempts = [
        "{{ contact.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ contact.update({'name': 'x'}) }}",
        "{{ config }}{{ request }}{{ self }}",
    ]
    for n, body in enumerate(attempts):
        created = make_template(caller, name=f"evil {n}", body=body)
        if created.status_code != 201:
            assert created.status_code == 400
            continue
        response = caller.post(
            f"/api/v1/templates/{created.json['id']}/render",
            json={"record": {"type": "contact", "id": contact["id"]}},
        )
        assert response.status_code in (200, 400), body
        text = response.get_data(as_text=True)
        for leak in ("test-secret", "subclasses", "<class", "os.", "SECRET"):
            assert leak not in text, (body, text)


def test_template_errors(caller, make_caller) -> None:
    assert make_template(caller, body="{{ unclosed").status_code == 400
    # Nested deeper than Python compiles, or Jinja parses: a 400, not a 500.
    for body in (
        "{% if 1 %}" * 150 + "x" + "{% endif %}" * 150,
        "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    ):
        deep = make_template(caller, name="Deep", body=body)
        assert deep.status_code == 400, deep.json
        assert "is not a valid template" in deep.json["message"]
    assert make_template(caller, subject="{% if %}").status_code == 400
    assert make_template(caller).status_code == 201
    assert make_template(caller).status_code == 409
    member = make_caller("Acme", "max@acme.test", Role.MEMBER)
    assert make_template(member, name="Mine").status_code == 403
    assert caller.post("/api/v1/templates/999/render", json={}).status_code == 404
    template = caller.get("/api/v1/templates").json[0]
    response = caller.post(
        f"/api/v1/templates/{template['id']}/render", json={"record": {"type": "lead", "id": 999}}
    )
    assert response.status_code == 404
    other = make_caller("Other org", "olga@other.test")
    assert other.get("/api/v1/templates").json == []
    assert other.post(f"/api/v1/templates/{template['id']}/render", json={}).status_code == 404


# Templates that would hold a worker (or its memory) for as long as they like, each with
# what the 400 that stops it says. Whether it is refused when saved or when rendered, both
# answer within 5 s.
ATTACKS = {
    "string repetition": ("{{ 'x' * 1000000000 }}", "1,000,000"),
    "repetition by a computed count": ("{% set n = 100000 * 10000 %}{{ 'x' * n }}", "1,000,000"),
    "list repetition": ("{{ ['x'] * 1000000000 }}", "the limit is 100,000"),
    "nested range loops": (
        "{% for i in range(10000) %}{% for j in range(10000) %}.{% endfor %}{% endfor %}",
        "more than 100,000 times",
    ),
    "a huge range": ("{% for i in range(1000000000) %}.{% endfor %}", "100,000"),
    "a recursive macro": ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "deep"),
    "a macro that calls itself twice": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
        "longer than 2 s",
    ),
    "printf padding": ("{{ '%1000000000s' % 'x' }}", "width or precision"),
    "format filter padding": ("{{ '%.1000000000f'|format(1) }}", "width or precision"),
    "format padding from an argument": ("{{ '%*s'|format(1000000000, 'x') }}", "'*'"),
    "center": ("{{ 'x'|center(1000000000) }}", "centred string"),
    "a power": ("{{ 'x'|center(10**9) }}", "Powers (**)"),
    "powers of powers": ("{{ 9 ** 9 ** 9 }}", "Powers (**)"),
    "wordwrap": ("{{ ('x' * 9000)|wordwrap(10, wrapstring='y' * 1000) }}", "wrapped string"),
    # Python's textwrap slices the text once per line: time grows with length x lines.
    "wordwrap into many lines": ("{{ ('a' * 999999)|wordwrap(1, true, '') }}", "20,000 lines"),
    "wordwrap just past the line bound": ("{{ ('a' * 499999)|wordwrap(1) }}", "20,000 lines"),
    "indent": ("{{ ('x\n' * 400000)|indent(10000) }}", "indented string"),
    "join of a huge range": ("{{ range(100000)|join('x' * 100000) }}", "joined string"),
    "replace": ("{{ ('x' * 100000)|replace('', 'y' * 100) }}", "replaced string"),
    "join of a generator": ("{{ range(1000)|map('string')|join('x' * 100000) }}", "joined string"),
    "join of an attribute": (
        "{{ ([dict(a='xx')] * 1000)|join('y' * 10000, attribute='a') }}",
        "joined string of 9,990,000 characters",
    ),
    "a mapping holding long strings": (
        "{{ ([dict(a='x' * 1000000)] * 100000)|join(attribute='a') }}",
        "holds more than 1,000,000 characters",
    ),
    # Short lists that hold one long string many times over: sort lowers every item.
    "a list repeating a long string": (
        "{% set a = 'x' * 100000 %}{{ ([a] * 100000)|sort|length }}",
        "repeated value of 10,000,100,000 characters",
    ),
    "a literal list of long strings": (
        "{% set a = 'x' * 500000 %}{{ [a, a, a, a]|sort|length }}",
        "holds more than 1,000,000 characters",
    ),
    "sum of lists": ("{{ ([range(100)|list] * 100)|sum(start=[]) }}", "numbers only"),
    "doubling in a namespace": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "joined string",
    ),
    "str.format padding": ("{{ '{:>1000000000}'.format('x') }}", "unsafe"),
    "a padding method": ("{{ contact.name.ljust(1000000000) }}", "unsafe"),
    "output of a macro": (
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}{% endmacro %}"
        "{{ m()|length }}",
        "writes more than 1,000,000 characters",
    ),
    "text in a set block": (
        "{% set s %}{% for i in range(100000) %}" + "y" * 1000 + "{% endfor %}{% endset %}",
        "writes more than 1,000,000 characters",
    ),
    "a map of filters": (
        "{{ range(99999)|map('string')|map('center', 1000)|join }}",
        "10,000,000",
    ),
    "a huge number": ("{{ 99999999999999999999 * 2 }}", "too large"),
    "numbers that grow": ("{% set n = 99999999 %}{{ n * n * n }}", "beyond"),
    # Compiling 200,000 characters of expressions took seconds before anything ran.
    "a body of 11,000 placeholders": ("{{ contact.name }}" * 11000, "more than 10,000 tokens"),
    "huge output": ("{% for i in range(2000) %}" + "z" * 1000 + "{% endfor %}", "1,000,000"),
    # Jinja evaluates this one while it compiles, unless the operator is intercepted.
    "an operator folded while compiling": (
        "{% autoescape ('x' * 100000) * 3000 %}{% endautoescape %}",
        "repeated value",
    ),
    # Filters whose text is far longer than the value they are given, measured before they
    # build it: indentation times depth, escapes, quoting.
    "tojson with a huge indent": ("{{ ([[[[[1]]]]] * 20)|tojson(1000000) }}", "JSON string"),
    "tojson of a list, indented": ("{{ ([1] * 10000)|tojson(1000000) }}", "JSON string"),
    "tojson of escaped characters": ("{{ ('\\x01' * 900000)|tojson }}", "JSON string"),
    "pprint of deep lists": (
        "{{ ([[[[[[[[[[1]]]]]]]]]] * 10000)|pprint }}",
        "pretty-printed string",
    ),
    "pprint indenting past a long key": (
        "{% set k = 'k' * 100000 %}{{ {k: ['a b c d e f g h'] * 1000}|pprint }}",
        "pretty-printed string",
    ),
    "string of nested lists": ("{{ ([[[[1]]]] * 100000)|string }}", "a string of"),
    "urlencode of nested lists": ("{{ ([[[[1]]]] * 100000)|urlencode }}", "URL-encoded"),
    "urlencode of a long string": ("{{ ('é' * 500000)|urlencode }}", "URL-encoded"),
    "xmlattr of nested lists": ("{{ dict(a=[[[[1]]]] * 100000)|xmlattr }}", "a string of"),
    "format of a mapping": (
        "{{ '%(a)s'|format(a=[[[[1]]]] * 100000) }}",
        "a value as text of 1,000,002",
    ),
    "writing nested lists": ("{{ [[[[1]]]] * 100000 }}", "a value as text of 1,000,002"),
    "a namespace of long strings": (
        "{% set s = 'x' * 900000 %}{% set ns = namespace(a=s, b=s, c=s, d=s) %}"
        "{{ ns|string|length }}",
        "holds more than 1,000,000 characters",
    ),
    # Written escaped ('<' makes '&lt;'), and counted as written.
    "escaping a long string": (
        "{{ '%c'|format(60) * 900000 }}",
        "writes more than 1,000,000 characters",
    ),
}

# Of those, the ones that built their result before measuring it: their memory is measured too.
MEMORY_ATTACKS = [
    "an operator folded while compiling",
    "tojson with a huge indent",
    "tojson of a list, indented",
    "pprint of deep lists",
    "pprint indenting past a long key",
    "urlencode of nested lists",
    "format of a mapping",
    "a namespace of long strings",
]


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_templates_that_would_hold_the_server_are_refused_within_5_seconds(caller, attack):
    source, reason = ATTACKS[attack]
    contact = create_contact(caller)
    started = time.monotonic()
    created = make_template(caller, body=source)
    if created.status_code == 201:
        answer = caller.post(
            f"/api/v1/templates/{created.json['id']}/render",
            json={"record": {"type": "contact", "id": contact["id"]}},
        )
    else:
        answer = created
    elapsed = time.monotonic() - started
    assert answer.status_code == 400, answer.json
    assert answer.json["code"] == 400
    assert reason in answer.json["message"], answer.json
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("attack", MEMORY_ATTACKS)
def test_templates_that_would_fill_the_memory_are_refused_before_they_do(
    caller, attack, monkeypatch
):
    source, reason = ATTACKS[attack]
    # The memory bound must be what refuses these, not the 2 s deadline (tested above):
    # tracing every allocation makes a render several times slower, and on a busy machine
    # (the suite runs a worker per CPU) the deadline could come first.
    monkeypatch.setattr(budget, "LIMITS", dataclasses.replace(budget.LIMITS, seconds=60.0))
    tracemalloc.start()
    try:
        created = make_template(caller, body=source)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert created.status_code == 400, created.json
    assert reason in created.json["message"]
    assert peak < 200_000_000, peak


# Templates whose own code fails, with what the message says: a template is the admin's code,
# so its errors are a 400 that quotes them, never a 500.
FAULTY = {
    "{{ 1|dictsort }}": "'int' object has no attribute 'items'",
    "{{ [1]|xmlattr }}": "'list' object has no attribute 'items'",
    "{{ {'a': 1}|dictsort(by='x') }}": "You can only sort by",
    "{{ 1 / 0 }}": "division by zero",
    "{{ 1 // 0 }}": "integer division or modulo by zero",
    "{{ contact.name.nope() }}": "has no attribute 'nope'",
    "{{ ['a', 'b']|sum }}": "unsupported operand",
    "{{ [1, 'a']|sort }}": "'<' not supported",
    "{{ {'a': 1}|tojson(indent=1.5) }}": "can't multiply sequence",
    "{{ 'x'|format(1, 2) }}": "not all arguments converted",
}


def test_a_faulty_template_is_a_400_that_says_why(caller) -> None:
    contact = create_contact(caller)
    for n, (body, reason) in enumerate(FAULTY.items()):
        # Saving tries the template on a sample record; an error that may depend on the
        # record is left for the render to report, so saving never fails on one.
        created = make_template(caller, name=f"faulty {n}", body=body)
        assert created.status_code == 201, (body, created.json)
        answer = caller.post(
            f"/api/v1/templates/{created.json['id']}/render",
            json={"record": {"type": "contact", "id": contact["id"]}},
        )
        assert answer.status_code == 400, (body, answer.json)
        assert answer.json["message"].startswith("The body_html could not be rendered: ")
        assert reason in answer.json["message"], (body, answer.json)
        # In the subject too.
        subject = make_template(caller, name=f"faulty subject {n}", subject=body)
        assert subject.status_code == 201, (body, subject.json)
        answer = caller.post(f"/api/v1/templates/{subject.json['id']}/render", json={})
        assert answer.status_code == 400, (body, answer.json)
        assert answer.json["message"].startswith("The subject could not be rendered: ")


def test_a_bound_in_the_subject_is_refused_too(caller) -> None:
    created = make_template(caller, subject="{% for i in range(1000000) %}x{% endfor %}")
    assert created.status_code == 400
    assert "subject" in created.json["message"] and "100,000" in created.json["message"]


def test_a_bound_that_depends_on_the_record_stops_the_render(caller) -> None:
    """Saved (the sample record is harmless), then stopped when it renders for the record."""
    body = (
        "{% if contact.name == 'Mallory' %}{% for i in range(10000) %}{% for j in range(10000) %}"
        "{% endfor %}{% endfor %}{% endif %}Hello {{ contact.name }}"
    )
    created = make_template(caller, body=body)
    assert created.status_code == 201, created.json
    ordinary = create_contact(caller, "Ann", ["ann@globex.test"])
    mallory = create_contact(caller, "Mallory", ["mallory@globex.test"])
    url = f"/api/v1/templates/{created.json['id']}/render"
    fine = caller.post(url, json={"record": {"type": "contact", "id": ordinary["id"]}})
    assert fine.status_code == 200 and fine.json["body_text"] == "Hello Ann"
    started = time.monotonic()
    stopped = caller.post(url, json={"record": {"type": "contact", "id": mallory["id"]}})
    assert time.monotonic() - started < 5
    assert stopped.status_code == 400
    assert stopped.json["message"] == (
        "The body_html could not be rendered: The template's loops run more than 100,000 times."
    )


def test_a_template_stored_before_the_bounds_is_bounded_when_it_renders(app, caller) -> None:
    with session_scope(app) as session:
        template = EmailTemplate(
            organization_id=caller.org_id,
            name="Old",
            subject="Hi",
            body_html="{{ 'x' * 1000000000 }}",
        )
        session.add(template)
        session.flush()
        template_id = template.id
    started = time.monotonic()
    response = caller.post(f"/api/v1/templates/{template_id}/render", json={})
    assert time.monotonic() - started < 5
    assert response.status_code == 400
    assert response.json["message"] == (
        "The body_html is refused: Repeating a value 1,000,000,000 times makes it longer than "
        "1,000,000 characters (line 1)."
    )


def test_the_deadline_holds_in_a_thread_without_signals(app, caller) -> None:
    """Gunicorn's threaded workers render outside the main thread, where no alarm can ring."""
    body = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{% if contact.name == 'Mallory' %}{{ f(40) }}{% endif %}"
    )
    template = make_template(caller, body=body).json
    mallory = create_contact(caller, "Mallory", ["mallory@globex.test"])
    answers: list = []

    def render() -> None:
        answers.append(
            caller.post(
                f"/api/v1/templates/{template['id']}/render",
                json={"record": {"type": "contact", "id": mallory["id"]}},
            )
        )

    started = time.monotonic()
    worker = threading.Thread(target=render)
    worker.start()
    worker.join(timeout=10)
    elapsed = time.monotonic() - started
    assert not worker.is_alive()
    assert 2 <= elapsed < 5, elapsed
    assert answers[0].status_code == 400
    assert "longer than 2 s" in answers[0].json["message"]


def test_ordinary_templates_keep_their_loops_filters_and_formats(caller) -> None:
    create_company(caller, "Globex", ["globex.test"])
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title="50 seats", expected_revenue=1234.5)
    body = (
        "{% macro greet(who) %}Dear {{ who|title }}{% endmacro %}"
        "<p>{{ greet(contact.first_name) }},</p>"
        "<p>{{ '%.2f'|format(lead.expected_revenue) }} for {{ lead.title|upper }}"
        " ({{ (lead.expected_revenue * 12)|round|int }} a year).</p>"
        "<ul>{% for word in contact.name.split() %}<li>{{ loop.index }}. {{ word }}</li>"
        "{% endfor %}</ul>"
        "<p>{{ company.name|default('your company') ~ ' and co' }}"
        "{{ ' ' ~ contact.email|replace('@', ' at ') }}</p>"
        "<p>{{ range(1, 4)|join(', ') }}|{{ contact.name|wordcount }}|</p>"
    )
    created = make_template(caller, body=body)
    assert created.status_code == 201, created.json
    rendered = caller.post(
        f"/api/v1/templates/{created.json['id']}/render",
        json={"record": {"type": "lead", "id": lead["id"]}},
    )
    assert rendered.status_code == 200, rendered.json
    text = rendered.json["body_text"]
    for expected in (
        "Dear Hank,",
        "1234.50 for 50 SEATS (14814 a year).",
        "1. Hank",
        "2. Scorpio",
        "Globex and co hank at globex.test",
        "1, 2, 3|2|",
    ):
        assert expected in text, (expected, text)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped"
        try:
            requests.get(f"{url}/healthz", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def test_the_bounds_hold_in_a_threaded_gunicorn_worker(app, caller, tmp_path) -> None:
    """`connector serve` as in production: gunicorn's gthread worker renders outside the main
    thread, where no alarm signal can reach."""
    port = _free_port()
    env = {
        **os.environ,
        "CONNECTOR_DATABASE_URL": app.config["DATABASE_URL"],
        "CONNECTOR_SECRET_KEY": "a-secret-for-this-test-only-0123456789",
        "CONNECTOR_INSTANCE_PATH": str(tmp_path),
    }
    if app.config["REDIS_URL"]:
        env["CONNECTOR_REDIS_URL"] = app.config["REDIS_URL"]
        env["CONNECTOR_REDIS_PREFIX"] = app.config["REDIS_PREFIX"]
    command = [str(Path(sys.executable).with_name("connector")), "serve", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--workers", "1", "--threads", "4"]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, server)
        headers = {"Authorization": f"Bearer {caller.key}"}
        loops = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
        body = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        for source, reason in ((loops, "100,000 times"), (body + "{{ f(40) }}", "2 s")):
            started = time.monotonic()
            created = requests.post(
                f"{url}/api/v1/templates",
                json={"name": reason, "subject": "Hi", "body_html": source},
                headers=headers,
                timeout=30,
            )
            assert time.monotonic() - started < 5
            assert created.status_code == 400 and reason in created.json()["message"]
        mallory = create_contact(caller, "Mallory", ["mallory@globex.test"])
        template = make_template(
            caller, body=body + "{% if contact.name == 'Mallory' %}{{ f(40) }}{% endif %}"
        ).json
        started = time.monotonic()
        rendered = requests.post(
            f"{url}/api/v1/templates/{template['id']}/render",
            json={"record": {"type": "contact", "id": mallory["id"]}},
            headers=headers,
            timeout=30,
        )
        assert time.monotonic() - started < 5
        assert rendered.status_code == 400
        assert "longer than 2 s" in rendered.json()["message"]
        # The worker is free again.
        assert requests.get(f"{url}/api/v1/me", headers=headers, timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
