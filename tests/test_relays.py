"""Relays (issue 18, item 3): each new message on a record through the gateway goes on to its
followers who are users, but its author; never a bounce's, a loop's, a robot's, a held or a
refused message; a relay that comes back is our own mail. On the real database of both
backends, with messages stored as the gateway stores them and routed by the job."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import sqlalchemy as sa
from flask import Flask

from connector.db import session_scope
from connector.jobs.inbound import route_inbound
from connector.mail import followers
from connector.mail.models import Follower, InboundMessage, OutboundMail
from connector.mail.unfollow_links import follower_of_token
from connector.orgs import service as orgs
from connector.orgs.models import Organization, Role, User
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from tests.test_mail_routing import message, org, store  # noqa: F401  (org: a fixture)


def route(app: Flask, org_id: int, mail: Any, **kwargs: Any) -> InboundMessage:
    inbound_id = store(app, org_id, mail, **kwargs)
    route_inbound(app, inbound_id=inbound_id)
    with session_scope(app) as session:
        row = session.get(InboundMessage, inbound_id)
        session.expunge(row)
        return row


def relays_of(app: Flask, inbound_id: int) -> list[OutboundMail]:
    with session_scope(app) as session:
        rows = session.scalars(
            sa.select(OutboundMail)
            .where(OutboundMail.kind == "relay", OutboundMail.inbound_id == inbound_id)
            .order_by(OutboundMail.id)
        ).all()
        for row in rows:
            _ = row.raw
            session.expunge(row)
        return list(rows)


def add_user(app: Flask, org_id: int, email: str, name: str) -> int:
    with session_scope(app) as session:
        organization = session.get(Organization, org_id)
        return orgs.create_user(session, organization, email, name, Role.MEMBER).id


def follow(app: Flask, org_id: int, ref: RecordRef, user_id: int) -> None:
    with session_scope(app) as session:
        followers.follow(session, org_id, ref, user_id=user_id)


def test_a_new_lead_is_relayed_to_its_owner_with_an_unfollow_link(app, org) -> None:  # noqa: F811 (fixture)
    created = route(app, org, message("Quote for 40 chairs", body="Could you quote?"))
    assert created.outcome == "created"
    [relay] = relays_of(app, created.id)
    assert relay.to_addresses == ["ann@acme.test"]  # the alias's owner owns the lead
    assert (relay.record_type, relay.record_id) == ("lead", created.record_id)
    mail = message_from_bytes(relay.raw, policy=policy.default)
    assert mail["From"].addresses[0].display_name == "Bea Customer (via Acme)"
    assert mail["From"].addresses[0].addr_spec == "sales@acme.test"
    assert mail["Subject"] == f"Quote for 40 chairs [#L-{created.record_id}]"
    assert mail["In-Reply-To"] == created.message_id
    assert mail["Reply-To"].addresses[0].addr_spec.startswith(f"reply+l{created.record_id}-")
    assert mail["Auto-Submitted"] is None  # a person's mail, forwarded
    link = str(mail["List-Unsubscribe"]).strip("<>")
    token = link.rpartition("/")[2]
    with session_scope(app) as session:
        follower = session.get(Follower, follower_of_token(app.config["SECRET_KEY"], token))
        assert follower is not None and follower.user.email == "ann@acme.test"
    html = mail.get_body(("html",)).get_content()
    assert "Could you quote?" in html and link.replace("&", "&amp;") in html


def test_followers_get_the_follow_up_but_its_author_and_the_inactive_do_not(app, org) -> None:  # noqa: F811 (fixture)
    created = route(app, org, message("Quote for 40 chairs"))
    lead = RecordRef(RecordType.LEAD, created.record_id)
    cleo = add_user(app, org, "cleo@acme.test", "Cleo")
    dan = add_user(app, org, "dan@acme.test", "Dan")
    follow(app, org, lead, cleo)
    follow(app, org, lead, dan)
    with session_scope(app) as session:
        orgs.deactivate_user(session, session.get(User, dan))
    # Cleo answers the customer's mail to the record, from her own client.
    answer = route(
        app,
        org,
        message(
            "Re: Quote for 40 chairs",
            sender="Cleo <cleo@acme.test>",
            In_Reply_To=created.message_id,
        ),
        envelope_from="cleo@acme.test",
    )
    assert (answer.outcome, answer.record_id) == ("appended", created.record_id)
    assert [r.to_addresses for r in relays_of(app, answer.id)] == [["ann@acme.test"]]


def test_a_relay_that_comes_back_is_a_loop_and_is_not_relayed_again(app, org) -> None:  # noqa: F811 (fixture)
    created = route(app, org, message("Quote for 40 chairs"))
    [relay] = relays_of(app, created.id)
    # Ann's mailbox forwards everything to sales@: the relay arrives as it was sent.
    back = route(app, org, relay.raw, recipients=["sales@acme.test"], envelope_from="")
    assert back.outcome == "loop"
    assert relays_of(app, back.id) == []
    # Even from an address the loop check does not know (a forwarder rewriting From).
    rewritten = relay.raw.replace(b"sales@acme.test", b"forwarder@elsewhere.test")
    again = route(app, org, rewritten, recipients=["sales@acme.test"], envelope_from="x@e.test")
    assert again.outcome == "loop" and relays_of(app, again.id) == []


def test_robots_held_and_refused_messages_are_not_relayed(app, org) -> None:  # noqa: F811 (fixture)
    created = route(app, org, message("Quote for 40 chairs"))
    # An out-of-office answer to the thread is appended, but relayed to no one (the
    # followers' own out-of-office would answer it, and so on for ever).
    ooo = route(
        app,
        org,
        message(
            "Automatic reply: Quote",
            Auto_Submitted="auto-replied",
            In_Reply_To=created.message_id,
        ),
    )
    assert ooo.outcome == "appended" and relays_of(app, ooo.id) == []
    notice = route(app, org, message("Your order", sender="shop@robots.test", Precedence="bulk"))
    assert notice.outcome == "created" and relays_of(app, notice.id) == []
    refused = route(app, org, message("Hi", to="vip@acme.test", sender="x@stranger.test"))
    assert refused.outcome == "refused" and relays_of(app, refused.id) == []
    app.config["MAIL_SENDER_CAP"] = 1
    held = route(app, org, message("Another one", sender="Bea Customer <bea@globex.test>"))
    assert held.outcome == "held" and relays_of(app, held.id) == []


def test_an_unfollowed_owner_gets_no_relay(app, org) -> None:  # noqa: F811 (fixture)
    created = route(app, org, message("Quote for 40 chairs"))
    [relay] = relays_of(app, created.id)
    token = str(message_from_bytes(relay.raw)["List-Unsubscribe"]).strip("<>").rpartition("/")[2]
    with session_scope(app) as session:
        follower = session.get(Follower, follower_of_token(app.config["SECRET_KEY"], token))
        followers.unfollow(session, follower)
    follow_up = route(app, org, message("Re: Quote", In_Reply_To=created.message_id))
    assert follow_up.outcome == "appended" and relays_of(app, follow_up.id) == []


def test_a_follower_whose_address_our_mail_cannot_carry_costs_only_their_relay(
    app,
    org,  # noqa: F811 (fixture)
) -> None:
    """Jörg's address has UTF-8 before the @ (RFC 6532): no relay can be made for him, and
    the customer's message still lands on the lead and is relayed to the others."""
    created = route(app, org, message("Quote for 40 chairs"))
    lead = RecordRef(RecordType.LEAD, created.record_id)
    follow(app, org, lead, add_user(app, org, "jörg@acme.test", "Jörg"))
    follow(app, org, lead, add_user(app, org, "bob@acme.test", "Bob"))
    answer = route(
        app,
        org,
        message("Re: Quote for 40 chairs", In_Reply_To=created.message_id),
    )
    assert (answer.outcome, answer.record_id) == ("appended", created.record_id)
    assert sorted(r.to_addresses[0] for r in relays_of(app, answer.id)) == [
        "ann@acme.test",
        "bob@acme.test",
    ]


def test_the_same_message_delivered_again_is_relayed_once(app, org) -> None:  # noqa: F811
    created = route(app, org, message("Quote for 40 chairs"))
    answer_mail = message("Re: Quote for 40 chairs", In_Reply_To=created.message_id)
    first = route(app, org, answer_mail)
    again = route(app, org, answer_mail)  # a server that missed our 250 sends it again
    assert (first.outcome, again.outcome) == ("appended", "appended")
    assert len(relays_of(app, first.id)) == 1 and relays_of(app, again.id) == []


def test_a_relay_asks_for_no_automatic_answers(app, org) -> None:  # noqa: F811
    created = route(app, org, message("Quote for 40 chairs"))
    [relay] = relays_of(app, created.id)
    mail = message_from_bytes(relay.raw, policy=policy.default)
    assert mail["X-Auto-Response-Suppress"] == "All"
