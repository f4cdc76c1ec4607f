"""Schemathesis against the live app: generated requests for every operation of /api/openapi.json
must never get a 5xx or an answer that breaks the document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine

from deployer.settings import Settings
from deployer.store import tokens
from tests.support.live import LiveServer
from tests.support.rows import make_deployment_row


def test_the_api_keeps_its_documented_contract(
    make_live_server: Callable[..., LiveServer], settings: Settings, engine: Engine
) -> None:
    server = make_live_server(settings, kick=lambda _name: None, images=lambda: [])
    make_deployment_row(engine, status="running")
    headers = {"Authorization": f"Bearer {tokens.create_token(engine, 'schemathesis')[1]}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        if operation.path.endswith("/logs/stream"):
            continue  # an endless event stream: covered by tests/integration/test_streams.py
        # A schema cannot say "a valid zip": generated uploads are rightly refused with a 400.
        upload = operation.method.upper() == "POST" and operation.path == "/api/deployments"
        fuzz(operation, headers, [positive_data_acceptance] if upload else [])


def fuzz(operation: Any, headers: dict[str, str], excluded: list[Any]) -> None:
    @given(case=operation.as_strategy())
    @hyp_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, timeout=30, excluded_checks=excluded)

    check()
