"""Schemathesis fuzzing of /api/v1 from its own OpenAPI document, with an agent's token.

Every operation gets generated (schema-valid and schema-violating) requests. Two properties:
no 5xx (but a 503 that names what is not configured), and never the subject of a ticket of
another queue in a response to this agent. Needs the ``schemathesis`` test dependency.
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from tests.api.conftest import World, world  # noqa: E402,F401  (the fixture)
from tests.fuzz_support import fuzz_operations  # noqa: E402
from tests.ops.test_security import SECRET  # noqa: E402

EXAMPLES = 6  # per operation: the whole sweep stays under a minute on 2 cores


def _check(case: Any, response: Any) -> None:
    text = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}"
    if status == 503:
        assert "Traceback" not in text, f"{where}: {text[:300]}"
    else:
        assert status < 500, f"{where}: {text[:300]}"
    if "/kb/gaps" not in case.path:  # shown to editors on purpose; the agent token is no editor
        assert SECRET not in text, f"{where}: leaked a ticket of another queue"


def test_api_never_crashes_nor_leaks(app: Any, world: World) -> None:  # noqa: F811
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    token = world.tokens["agent"]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20
    fuzz_operations(app, operations, [token], _check, EXAMPLES)
