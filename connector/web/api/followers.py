"""Who follows a contact, company, lead or ticket (gets mail about it): list, add, remove.

Any member of the organization may add or remove anyone (as Odoo's chatter lets them),
and none of it is audited: following decides who is told about a record, not what it
holds.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from connector.mail import following
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.schemas import followers as schemas
from connector.schemas.cards import FollowerOut
from connector.web.api.base import RECORD_PLURALS, Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

blp = Blueprint("followers", __name__, description="Who follows a record")

PLURALS = RECORD_PLURALS


def _followers_routes(record_type: RecordType, plural: str) -> None:
    kind = record_type.value

    @blp.route(f"/{plural}/<int:record_id>/followers", endpoint=f"{plural}-followers")
    class Followers(MethodView):
        decorators = [login_required]

        @blp.doc(
            summary=f"Who follows a {kind}",
            description="Oldest first. Its owner follows it without being added, unless "
            "they were removed.",
        )
        @blp.response(200, schemas.FollowerListOut)
        def get(self, record_id: int) -> dict[str, Any]:
            ctx = service_ctx()
            results = following.record_followers(ctx, RecordRef(record_type, record_id))
            # The owner's row, made the first time, so that its id stays what was shown.
            ctx.session.commit()
            return {"results": results}

        @blp.doc(
            summary=f"Make someone follow a {kind}",
            description="A user of the organization (they get each message that comes in "
            "on it) or a contact (they get what the team writes from it): exactly one of "
            "user_id, contact_id, email. 201 when they did not follow it; 200, with the "
            "same follower, when they did.",
        )
        @blp.arguments(schemas.FollowerIn)
        @blp.response(201, FollowerOut)
        @blp.alt_response(200, schema=FollowerOut, description="They followed it already")
        def post(self, data: dict[str, Any], record_id: int) -> Any:
            ctx = service_ctx()
            followed = following.add_follower(ctx, RecordRef(record_type, record_id), **data)
            ctx.session.commit()
            return followed.follower, 200 if followed.already else 201

    @blp.route(
        f"/{plural}/<int:record_id>/followers/<int:follower_id>",
        endpoint=f"{plural}-follower",
    )
    class FollowerItem(MethodView):
        decorators = [login_required]

        @blp.doc(
            summary=f"Stop someone following a {kind}",
            description="Its owner, once removed, stays removed (until added again).",
        )
        @blp.response(204)
        def delete(self, record_id: int, follower_id: int) -> None:
            ctx = service_ctx()
            following.remove_follower(ctx, RecordRef(record_type, record_id), follower_id)
            ctx.session.commit()


for _type, _plural in PLURALS.items():
    _followers_routes(_type, _plural)
