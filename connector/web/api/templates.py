"""List, create and render email templates."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort

from connector.email_templates import service
from connector.email_templates.models import EmailTemplate
from connector.orgs.models import Role
from connector.records.refs import RecordRef
from connector.records.service import get_record
from connector.schemas import templates as schemas
from connector.web.api.base import Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

blp = Blueprint("templates", __name__, description="Email templates to reply with")


@blp.route("/templates")
class Templates(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.TemplateListArgs, location="query")
    @blp.response(200, schemas.TemplateListOut(many=True))
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The organization's templates, by name, each subject as it reads for the record."""
        ctx = service_ctx()
        ref = RecordRef.parse(args["record"]) if "record" in args else None
        if ref is not None:
            get_record(ctx.session, ctx.org_id, ref)  # 404 for none, or another's
        templates = service.list_templates(ctx)
        previews = service.subject_previews(ctx, templates, ref)
        return [
            {
                "id": t.id,
                "name": t.name,
                "subject": t.subject,
                "body_html": t.body_html,
                "subject_preview": previews[t.id],
            }
            for t in templates
        ]

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
