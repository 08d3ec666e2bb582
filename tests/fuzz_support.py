"""Run schemathesis-generated requests for API operations through Flask's test client."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings


def fuzz_operations(app: Any, operations: Iterable[Any], tokens: list[str],
                    check: Callable[[Any, Any], None], examples: int) -> None:
    """Send ``examples`` generated cases of every operation with each bearer token;
    ``check(case, response)`` asserts what must hold for each answer."""
    client = app.test_client()
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            kwargs = case.as_transport_kwargs()
            method = kwargs.pop("method")
            path = kwargs.pop("url", None) or kwargs.pop("path")
            generated = kwargs.pop("headers", None) or {}
            body = {k: v for k, v in kwargs.items() if k in ("query_string", "data", "json")}
            for token in tokens:
                headers = {**generated, "Authorization": f"Bearer {token}"}
                check(case, client.open(path, method=method, headers=headers, **body))

        run()
