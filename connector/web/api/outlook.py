"""What the Outlook task pane asks of the service: its sign-in settings, and sending replies."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from flask.views import MethodView

from connector.errors import Forbidden, InvalidInput, NotFound, UpstreamUnavailable
from connector.mailbox import ConsentRequired, SendUnconfirmed
from connector.orgs.context import Ctx
from connector.providers.microsoft import tokens as microsoft
from connector.providers.microsoft.graph import (
    BadMessageId,
    GraphError,
    GraphMailbox,
    MessageGone,
)
from connector.records.refs import RecordRef
from connector.replies import service
from connector.schemas import outlook as schemas
from connector.web.api.base import Blueprint
from connector.web.auth import login_required
from connector.web.handlers import service_ctx

log = logging.getLogger(__name__)
blp = Blueprint("outlook", __name__, description="Acting from the Outlook add-in")


def _mailbox(ctx: Ctx) -> GraphMailbox:
    """The request's user's mailbox, through Graph with a token from their stored consent."""
    config = current_app.config

    def access_token() -> str:
        token = microsoft.graph_token(
            ctx.session,
            ctx.store,
            current_app.extensions["connector.token_cipher"],
            microsoft.MicrosoftClient.from_config(config),
            ctx.user,
        )
        # Nothing else is written yet; a refresh token Entra just rotated is kept even if
        # Graph fails next, since the old one may stop working.
        ctx.session.commit()
        return token

    return GraphMailbox(config["GRAPH_API_URL"], access_token)


@blp.route("/outlook/replies")
class Replies(MethodView):
    decorators = [login_required]

    @blp.arguments(schemas.ReplyIn)
    @blp.response(201, schemas.ReplyOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Send a template as a reply now, through Microsoft Graph as the user, and log it.

        403 with `sign_in_url` when the user has not allowed sending (or the consent
        was revoked or expired): open it, sign in, then try again. 502 when Microsoft
        failed: nothing was sent, except with `"reason": "send_unconfirmed"`, when the
        send went out and no answer came back (look in Sent Items before sending again).
        """
        ctx = service_ctx()
        record = data.get("record")
        ref = RecordRef.from_json(record) if record else None
        try:
            result = service.send_reply(
                ctx,
                _mailbox(ctx),
                message_id=data["message_id"],
                template_id=data["template_id"],
                record=ref,
            )
        except ConsentRequired as exc:
            log.info("Outlook send needs consent for user %s: %s", ctx.user.id, exc)
            raise Forbidden(
                "Allow the connector to send mail for you: sign in, then send again.",
                extra={
                    "reason": "consent_required",
                    "sign_in_url": current_app.config["PUBLIC_URL"]
                    + "/connect?client=outlook&scope=mail.send",
                },
            ) from exc
        except MessageGone as exc:
            raise NotFound("That email is no longer in your mailbox.") from exc
        except BadMessageId as exc:
            raise InvalidInput("Microsoft does not know that message id.") from exc
        except SendUnconfirmed as exc:
            log.warning("Outlook send unconfirmed for user %s: %s", ctx.user.id, exc)
            raise UpstreamUnavailable(
                "Microsoft did not confirm that the reply went out. Look in Sent Items "
                "before you send it again.",
                extra={"reason": "send_unconfirmed"},
            ) from exc
        except (GraphError, microsoft.MicrosoftUnavailable) as exc:
            log.warning("Outlook send failed: %s", exc)
            raise UpstreamUnavailable(
                "Microsoft could not send the reply just now, so nothing was sent. "
                "Try again in a moment."
            ) from exc
        service.commit_sent(ctx, result)
        return result


def init_app(app: Flask) -> None:
    @app.get("/outlook/config.json")
    def outlook_config() -> ResponseReturnValue:
        """The Entra app the pane asks Outlook for a token for (nested app authentication)."""
        config = current_app.config
        client_id = config["MS_CLIENT_ID"]
        host = config["PUBLIC_URL"].split("://", 1)[1]
        return jsonify(
            msClientId=client_id or None,
            apiScope=f"api://{host}/{client_id}/{config['MS_API_SCOPE']}" if client_id else None,
        )
