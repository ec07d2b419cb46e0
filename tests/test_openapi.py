"""The OpenAPI document covers every endpoint, with one error shape."""

from __future__ import annotations

import re


def test_openapi_covers_every_api_route(app, client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "patch", "put", "delete"}
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method))
    assert routes, "no API routes found"
    missing = {r for r in routes if r not in documented}
    assert not missing, missing
    assert "Error" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary") or operation.get("description"), (path, method)


def test_openapi_documents_the_raw_mime_body(client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    content = spec["paths"]["/api/v1/emails"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "message/rfc822"}
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
