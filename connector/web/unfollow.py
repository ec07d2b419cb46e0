"""The page behind the unfollow link of relayed mail: /unfollow/<token>.

GET says what the link unfollows and shows a button; it never changes anything, since
mail scanners and link previews fetch every link in a message. POST (the button, or a
mail client's one-click unsubscribe of RFC 8058, whose body is
`List-Unsubscribe=One-Click`) unfollows and says so.

No sign-in and no CSRF token: the signed token in the URL is the capability, made for
one follower row (connector.mail.unfollow_links), and a one-click POST comes from the
mail client's servers, with no session or form of ours to carry a token. The worst a
forged cross-site POST can do is what the link's holder can do anyway: stop that one
follower following that one record. Nothing else here checks CSRF either (the pages
that do call connector.web.signin.check_csrf themselves), so nothing needs exempting.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template
from flask.typing import ResponseReturnValue

from connector.db import get_session
from connector.mail.following import LinkFollower, link_follower, unfollow_by_link
from connector.web.security import error_page

bp = Blueprint("unfollow", __name__)

NOT_FOUND = (
    "This unfollow link is not valid, or what it was for no longer exists. Nothing was changed."
)


def _found(token: str) -> LinkFollower | None:
    return link_follower(get_session(), current_app.config["SECRET_KEY"], token)


def _page(token: str, found: LinkFollower) -> ResponseReturnValue:
    following = found.follower.active
    page = render_template(
        "unfollow.html",
        title="Stop following" if following else "Unfollowed",
        label=found.label,
        following=following,
        token=token,
    )
    # The page names a customer record, behind a bearer link: kept out of caches.
    return page, 200, {"Cache-Control": "no-store"}


def _not_found() -> ResponseReturnValue:
    return error_page(404, "Not Found", NOT_FOUND)


@bp.get("/unfollow/<token>")
def confirm(token: str) -> ResponseReturnValue:
    found = _found(token)
    return _not_found() if found is None else _page(token, found)


@bp.post("/unfollow/<token>")
def unfollow(token: str) -> ResponseReturnValue:
    # Whatever the body (the page's button sends RFC 8058's List-Unsubscribe=One-Click
    # too): the token alone says who stops following what.
    found = _found(token)
    if found is None:
        return _not_found()
    unfollow_by_link(get_session(), found)
    get_session().commit()
    return _page(token, found)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
