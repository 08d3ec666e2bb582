"""Write who saw or changed what into the audit log."""

from __future__ import annotations

from sqlalchemy.orm import Session

from contactcenter.accounts.models import AuditLog


def audit(
    session: Session,
    actor_user_id: int | None,
    action: str,
    object_type: str,
    object_id: int | str,
    detail: str = "",
    channel: str = "",
) -> AuditLog:
    """Append one audit record in the caller's transaction."""
    row = AuditLog(
        actor_user_id=actor_user_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail[:2000],
        channel=channel,
    )
    session.add(row)
    return row
