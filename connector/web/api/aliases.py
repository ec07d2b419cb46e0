"""An organization's aliases (sales@, support@): list, create, read, delete; admins only."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from connector.email_templates import service as templates
from connector.errors import Forbidden, InvalidInput, NotFound
from connector.lookup.view_models import iso_utc
from connector.mail import aliases as mail
from connector.mail.models import Alias
from connector.orgs.context import Ctx
from connector.orgs.models import Organization, Role, User
from connector.schemas import aliases as schemas
from connector.web.api.base import Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

blp = Blueprint("aliases", __name__, description="Team addresses that open records")


def _admin_ctx() -> Ctx:
    """The request's context, for an admin; 403 for anyone else (an alias decides what the
    whole organization's mail opens)."""
    ctx = service_ctx()
    if ctx.user.role != Role.ADMIN:
        raise Forbidden("Only an admin can see or change the organization's aliases.")
    return ctx


def _org(ctx: Ctx) -> Organization:
    org = ctx.session.get(Organization, ctx.org_id)
    assert org is not None  # the signed-in user's own
    return org


def _out(alias: Alias) -> dict[str, Any]:
    return {
        "id": alias.id,
        "address": alias.address,
        "creates": str(alias.creates),
        "owner_id": alias.owner_id,
        "owner_email": alias.owner.email if alias.owner else None,
        "accept": str(alias.accept),
        "auto_reply": alias.auto_reply,
        "auto_reply_template_id": alias.auto_reply_template_id,
        "created_at": iso_utc(alias.created_at),
    }


@blp.route("/aliases")
class Aliases(MethodView):
    decorators = [login_required]

    @blp.response(200, schemas.AliasOut(many=True))
    def get(self) -> list[dict[str, Any]]:
        """The organization's aliases, by address (admins only)."""
        ctx = _admin_ctx()
        return [_out(a) for a in mail.list_aliases(ctx.session, _org(ctx))]

    @blp.arguments(schemas.AliasIn)
    @blp.response(201, schemas.AliasOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an alias at the organization's mail domain (admins only)."""
        ctx = _admin_ctx()
        owner = None
        if data["owner_id"] is not None:
            owner = ctx.session.get(User, data["owner_id"])
            if owner is None or owner.organization_id != ctx.org_id:
                raise InvalidInput("There is no such user.", {"owner_id": ["unknown user"]})
        template = None
        if data["auto_reply_template_id"] is not None:
            try:
                template = templates.get_template(ctx, data["auto_reply_template_id"])
            except NotFound as exc:
                raise InvalidInput(
                    exc.message, {"auto_reply_template_id": ["unknown template"]}
                ) from exc
        alias = mail.create_alias(
            ctx.session,
            _org(ctx),
            address=data["address"],
            creates=data["creates"],
            owner=owner,
            accept=data["accept"],
            auto_reply=data["auto_reply"],
            auto_reply_template=template,
            actor=ctx.user,
        )
        ctx.session.commit()
        return _out(alias)


@blp.route("/aliases/<int:alias_id>")
class AliasById(MethodView):
    decorators = [login_required]

    @blp.response(200, schemas.AliasOut)
    def get(self, alias_id: int) -> dict[str, Any]:
        """One alias of the organization (admins only)."""
        ctx = _admin_ctx()
        return _out(mail.get_alias(ctx.session, _org(ctx), alias_id))

    @blp.response(204)
    def delete(self, alias_id: int) -> None:
        """Delete an alias: mail to it is refused from then on; what came through it stays on
        its records (admins only)."""
        ctx = _admin_ctx()
        alias = mail.get_alias(ctx.session, _org(ctx), alias_id)
        mail.delete_alias(ctx.session, alias, actor=ctx.user)
        ctx.session.commit()
