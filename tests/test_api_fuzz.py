"""Schemathesis over the whole API, in-process on each backend: requests generated from the
OpenAPI document, valid and invalid, never get a 5xx, and every answer fits the document."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Caller

# About a thousand requests per backend in some 20 s; derandomized, so CI sees the same ones.
# CONNECTOR_FUZZ_EXAMPLES=200 digs deeper by hand.
EXAMPLES_PER_OPERATION_AND_MODE = int(os.environ.get("CONNECTOR_FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def _run(operation: Any, mode: GenerationMode, caller: Caller) -> int:
    """Try generated requests on one operation; return how many were sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=caller.headers, checks=CHECKS)

    run()
    return sent


def test_generated_requests_get_no_server_error(app: Any, caller: Caller) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    sent = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                sent += _run(operation, mode, caller)
            except (Exception, BaseExceptionGroup) as error:
                # Every operation is tried; the report lists all that failed.
                failures.append(f"{operation.label} ({mode.value}): {error}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    assert sent >= 300, sent
