"""What the Outlook task pane asks the service for before it signs in."""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue


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
