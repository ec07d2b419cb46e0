"""The unfollow link of relayed mail: its page says what it unfollows and changes nothing
on GET; its button, or a mail client's RFC 8058 one-click POST, unfollows; a bad token is a
404 page; a token unfollows its own follower only."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from connector.mail.unfollow_links import unfollow_path
from connector.orgs.models import Role
from tests.helpers import create_contact, create_lead


def text_of(page: bytes) -> str:
    """The page's words as a reader sees them (tags out, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.decode())).split())


@pytest.fixture
def bob(make_caller: Any) -> Any:
    return make_caller(email="bob@acme.test", role=Role.MEMBER)


@pytest.fixture
def lead(caller: Any) -> dict[str, Any]:
    return create_lead(caller, title="Quote for 50 seats")


def follow(caller: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = caller.post(f"/api/v1/{path}/followers", json=body)
    assert response.status_code in (200, 201), response.json
    return response.json


def follower_ids(caller: Any, path: str) -> list[int]:
    return [f["id"] for f in caller.get(f"/api/v1/{path}/followers").json["results"]]


def link(app: Any, follower_id: int) -> str:
    return unfollow_path(app.config["SECRET_KEY"], follower_id)


def test_get_shows_what_it_unfollows_and_changes_nothing(app, client, caller, bob, lead):
    path = f"leads/{lead['id']}"
    followed = follow(caller, path, {"user_id": bob.user_id})
    for _ in range(2):  # a mail scanner's fetch, then the reader's
        page = client.get(link(app, followed["id"]))
        assert page.status_code == 200
        assert f'You follow L-{lead["id"]} "Quote for 50 seats". Stop following?' in text_of(
            page.data
        )
    assert followed["id"] in follower_ids(caller, path)
    # A page like the others: no script, no framing, kept out of caches.
    assert page.headers["Cache-Control"] == "no-store"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert b"<script" not in page.data


def test_the_button_unfollows(app, client, caller, bob, lead):
    path = f"leads/{lead['id']}"
    followed = follow(caller, path, {"user_id": bob.user_id})
    page = client.get(link(app, followed["id"])).data.decode()
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    assert action == link(app, followed["id"])
    done = client.post(action, data=fields)
    assert done.status_code == 200
    assert f'You no longer follow L-{lead["id"]} "Quote for 50 seats".' in text_of(done.data)
    assert followed["id"] not in follower_ids(caller, path)
    # The link still answers, saying so; posting again changes nothing.
    again = client.get(action)
    assert again.status_code == 200 and "You no longer follow" in text_of(again.data)
    assert b"<form" not in again.data
    assert client.post(action).status_code == 200
    assert followed["id"] not in follower_ids(caller, path)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unfollows(app, client, caller, lead, encoding):
    """RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` to the link, with no
    cookie, no session and no token of ours but the URL's."""
    path = f"leads/{lead['id']}"
    (owner,) = caller.get(f"/api/v1/{path}/followers").json["results"]
    url = link(app, owner["id"])
    if encoding == "urlencoded":
        response = client.post(
            url,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    else:
        response = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    # The owner, once unfollowed, is not made a follower again on the next read.
    assert follower_ids(caller, path) == []
    assert caller.get(f"/api/v1/{path}").json["followers"] == []


def test_a_contacts_link(app, client, caller):
    contact = create_contact(caller)
    followed = follow(caller, f"contacts/{contact['id']}", {"email": "hank@globex.test"})
    page = client.get(link(app, followed["id"]))
    assert 'You follow the contact "Hank Scorpio". Stop following?' in text_of(page.data)


def test_what_the_page_shows_is_escaped(app, client, caller):
    lead = create_lead(caller, title='<b>Big</b> & "bold"')
    (owner,) = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    page = client.get(link(app, owner["id"]))
    assert b"<b>Big</b>" not in page.data
    assert f'You follow L-{lead["id"]} "<b>Big</b> & "bold""' in text_of(page.data)


def test_bad_tokens_are_a_404_page(app, client, caller, lead):
    (owner,) = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    good = link(app, owner["id"])
    forged = unfollow_path("another secret", owner["id"])
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    nobody = link(app, 999999)  # signed, but no such follower
    for url in ("/unfollow/nope", "/unfollow/f1.", forged, tampered, nobody):
        for method in ("GET", "POST"):
            response = client.open(url, method=method, data="List-Unsubscribe=One-Click")
            assert response.status_code == 404, (url, method)
            assert response.mimetype == "text/html"
            assert "not valid" in text_of(response.data)
    assert follower_ids(caller, f"leads/{lead['id']}") == [owner["id"]]


def test_a_token_unfollows_its_own_follower_only(app, client, caller, bob, lead):
    path = f"leads/{lead['id']}"
    (owner,) = caller.get(f"/api/v1/{path}/followers").json["results"]
    followed = follow(caller, path, {"user_id": bob.user_id})
    bobs = link(app, followed["id"])
    # Bob's signature under the owner's id is no token at all.
    token = bobs.rsplit("/", 1)[1]
    signature = token.split(".", 1)[1]
    crossed = f"/unfollow/f{owner['id']}.{signature}"
    assert client.post(crossed, data="List-Unsubscribe=One-Click").status_code == 404
    assert client.post(bobs, data="List-Unsubscribe=One-Click").status_code == 200
    assert follower_ids(caller, path) == [owner["id"]]


def test_a_link_of_a_purged_or_archived_record(app, client, caller, lead):
    (owner,) = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    # Archived, its mail may still be read: its reader can still leave it.
    url = link(app, owner["id"])
    assert "Stop following?" in text_of(client.get(url).data)
    assert client.post(url).status_code == 200
    assert "You no longer follow" in text_of(client.get(url).data)
