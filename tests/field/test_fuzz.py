"""Schemathesis over the field endpoints with a dispatcher's and a technician's token.

Generated (valid and invalid) requests must never crash the server (no 5xx).
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings

from contactcenter.field.service import assign_visit, create_visit
from tests.factories import make_token
from tests.field.conftest import Field

EXAMPLES = 5


def test_field_api_never_crashes(app: Any, session: Any, field: Field) -> None:
    visit = create_visit(session, app.extensions["contactcenter"].settings, field.ticket,
                         field.agent.id, {"address": "1 Main St", "problem": "Router"})
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id)
    session.commit()
    tokens = [make_token(session, field.supervisor), make_token(session, field.tech_a)]
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [r.ok() for r in api.get_all_operations()
                  if "/field/" in r.ok().path or r.ok().path.endswith("/visits")]
    assert len(operations) >= 15
    client = app.test_client()
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            kwargs = case.as_transport_kwargs()
            method = kwargs.pop("method")
            path = kwargs.pop("url", None) or kwargs.pop("path")
            for token in tokens:
                headers = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {token}"}
                response = client.open(path, method=method, headers=headers,
                                       **{k: v for k, v in kwargs.items()
                                          if k in ("query_string", "data", "json")})
                assert response.status_code < 500, (
                    f"{method} {path} -> {response.status_code}: "
                    f"{response.get_data(as_text=True)[:300]}")

        run()
