"""Lookup, search, and who am I."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from connector.lookup import service
from connector.records.models import RecordType
from connector.schemas import cards as schemas
from connector.web.api.base import Blueprint
from connector.web.auth import current_user, login_required
from connector.web.handlers import service_ctx

blp = Blueprint("lookup", __name__, description="Find senders and records")


@blp.route("/lookup")
class Lookup(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.LookupArgs, location="query")
    @blp.response(200, schemas.LookupOut)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Who are these addresses in the records?

        Each address gets its contact (exact, case-insensitive, on any of the
        contact's addresses), else the company of its domain (never for free-mail
        domains), with open leads, tickets and tasks and the last 10 activities.
        """
        return {"results": service.lookup(service_ctx(), args["email"])}


@blp.route("/search")
class Search(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.SearchArgs, location="query")
    @blp.response(200, schemas.SearchOut)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search contacts, companies, leads and tickets by name, email, domain or title."""
        return service.search(
            service_ctx(),
            args["q"],
            [RecordType(t) for t in args["type"]],
            args["page"],
            args["per_page"],
        )


@blp.route("/me")
class Me(MethodView):
    decorators = [login_required]

    @blp.response(200, schemas.MeOut)
    def get(self) -> Any:
        """The user the API key belongs to, and their organization."""
        return current_user()
