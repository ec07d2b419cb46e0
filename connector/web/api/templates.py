"""List, create and render email templates."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort

from connector.email_templates import service
from connector.email_templates.models import EmailTemplate
from connector.orgs.models import Role
from connector.records.refs import RecordRef
from connector.schemas import templates as schemas
from connector.web.api.base import Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

blp = Blueprint("templates", __name__, description="Email templates to reply with")


@blp.route("/templates")
class Templates(MethodView):
    decorators = [login_required]

    @blp.response(200, schemas.TemplateOut(many=True))
    def get(self) -> list[EmailTemplate]:
        """The organization's templates, by name."""
        return service.list_templates(service_ctx())

    @blp.arguments(schemas.TemplateIn)
    @blp.response(201, schemas.TemplateOut)
    def post(self, data: dict[str, Any]) -> EmailTemplate:
        """Create a template (admins only)."""
        ctx = service_ctx()
        if ctx.user.role != Role.ADMIN:
            abort(403, message="Only an admin can create templates.")
        template = service.create_template(ctx, **data)
        ctx.session.commit()
        return template


@blp.route("/templates/<int:template_id>/render")
class RenderTemplate(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.RenderIn)
    @blp.response(200, schemas.RenderedOut)
    def post(self, data: dict[str, Any], template_id: int) -> dict[str, str]:
        """Render a template for a record: its subject and HTML body with placeholders filled."""
        record = data.get("record")
        ref = RecordRef.from_json(record) if record else None
        return service.render_template(service_ctx(), template_id, ref)
