from __future__ import annotations

from connector.app import create_app
from tests.conftest import base_config


def test_healthz(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready"}


def test_readyz_says_what_is_unreachable(tmp_path) -> None:
    app = create_app(
        base_config(
            DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
            REDIS_URL="redis://127.0.0.1:1/0",
        )
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert set(response.json["errors"]) == {"database", "store"}
    assert response.json["code"] == 503


def test_unexpected_errors_are_json_without_details(app) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    # Under the API; a browser route answers with an HTML page (test_browser_security).
    @app.get("/api/v1/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json["code"] == 500
    assert "secret internals" not in response.get_data(as_text=True)
