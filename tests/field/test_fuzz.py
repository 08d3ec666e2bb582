"""Schemathesis over the field endpoints with a dispatcher's and a technician's token.

Generated (valid and invalid) requests must never crash the server (no 5xx).
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from contactcenter.field.service import assign_visit, create_visit
from tests.factories import make_token
from tests.field.conftest import Field
from tests.fuzz_support import fuzz_operations

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
    fuzz_operations(app, operations, tokens, _no_server_error, EXAMPLES)


def _no_server_error(case: Any, response: Any) -> None:
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: "
        f"{response.get_data(as_text=True)[:300]}")
