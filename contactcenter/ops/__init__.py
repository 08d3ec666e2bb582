"""Operations: health and readiness, structured logs, metrics and the scaled deployment's processes (issue 12)."""
