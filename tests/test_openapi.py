"""The OpenAPI document covers every endpoint, with one error shape."""

from __future__ import annotations

import re
from collections.abc import Iterator

from connector.ids import MAX_ID


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


def _walk(node: object) -> Iterator[dict]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def test_bounds_are_numbers_and_ids_are_bounded(client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    for schema in _walk(spec):
        for bound in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
            if bound in schema:
                assert isinstance(schema[bound], int | float), schema
    revenue = spec["components"]["schemas"]["LeadIn"]["properties"]["expected_revenue"]
    assert (revenue["minimum"], revenue["maximum"]) == (0, 999_999_999_999.99)
    for path, item in spec["paths"].items():
        for parameter in item.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["minimum"] == 1, path
                assert parameter["schema"]["maximum"] == MAX_ID, path


def test_the_error_schema_has_the_fields_clients_act_on(client) -> None:
    error = client.get("/api/v1/openapi.json").json["components"]["schemas"]["Error"]
    assert {"code", "status", "message", "errors", "reason", "sign_in_url"} == set(
        error["properties"]
    )
    assert error["properties"]["reason"]["enum"] == [
        "consent_required",
        "send_unconfirmed",
        "sent_not_logged",
    ]


def test_a_nullable_object_is_null_or_that_object(client) -> None:
    """apispec's anyOf branch for null used to take any object at all."""
    spec = client.get("/api/v1/openapi.json").json
    branches = [b for s in _walk(spec) for b in s.get("anyOf", []) if b.get("nullable")]
    assert branches
    for branch in branches:
        assert branch["enum"] == [None], branch


def test_what_needs_one_of_two_fields_says_so(client) -> None:
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert schemas["LeadIn"]["anyOf"] == [{"required": ["title"]}, {"required": ["email"]}]
    assert schemas["TicketIn"]["anyOf"] == [{"required": ["subject"]}, {"required": ["email"]}]
    assert schemas["EmailIn"]["anyOf"] == [{"required": ["from"]}, {"required": ["raw"]}]


def test_every_json_body_is_required(client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    bodies = [
        (path, method, operation["requestBody"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(bodies) >= 10
    for path, method, body in bodies:
        assert body["required"] is True, (path, method)
