"""The one authorisation policy: what each role may do and which objects it may see.

Views, the API, socket handlers, search, exports and jobs that mail content out
all ask here; nothing decides access on its own. Object checks are computed from
the parent object every time, never cached on the client.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.errors import PermissionDeniedError
from contactcenter.accounts.models import Role, User


class Permission(StrEnum):
    """Things a user may be allowed to do."""

    TICKET_VIEW = "ticket.view"
    TICKET_VIEW_ALL = "ticket.view_all"
    TICKET_REPLY = "ticket.reply"
    TICKET_ASSIGN = "ticket.assign"
    CUSTOMER_VIEW = "customer.view"
    CUSTOMER_EDIT = "customer.edit"
    CUSTOMER_MERGE = "customer.merge"
    FINANCIAL_VIEW = "financial.view"
    IMPORT = "data.import"
    RAW_REPLAY = "raw.replay"
    KB_EDIT = "kb.edit"
    SUPERVISE = "supervise"
    USER_ADMIN = "user.admin"
    FIELD_WORK = "field.work"
    FIELD_DISPATCH = "field.dispatch"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Agents correct a customer's addresses and name on the call (customer.edit);
    # merging two records stays with supervisors.
    Role.AGENT: frozenset({Permission.TICKET_VIEW, Permission.TICKET_REPLY,
                           Permission.CUSTOMER_VIEW, Permission.CUSTOMER_EDIT}),
    Role.SUPERVISOR: frozenset({Permission.TICKET_VIEW, Permission.TICKET_VIEW_ALL,
                                Permission.TICKET_REPLY, Permission.TICKET_ASSIGN,
                                Permission.CUSTOMER_VIEW, Permission.CUSTOMER_EDIT,
                                Permission.CUSTOMER_MERGE,
                                Permission.FINANCIAL_VIEW, Permission.RAW_REPLAY,
                                Permission.SUPERVISE, Permission.FIELD_DISPATCH}),
    Role.KNOWLEDGE_EDITOR: frozenset({Permission.KB_EDIT}),
    # A technician sees their own visits and what those need, nothing else.
    Role.TECHNICIAN: frozenset({Permission.FIELD_WORK}),
    Role.ADMIN: frozenset(Permission),
}


def permissions_of(user: User) -> frozenset[Permission]:
    """Return every permission a user holds through roles and grants."""
    if not user.is_active:
        return frozenset()
    perms: set[Permission] = set()
    for role in user.role_names:
        perms |= ROLE_PERMISSIONS[role]
    if user.financial_access:
        perms.add(Permission.FINANCIAL_VIEW)
    return frozenset(perms)


def can(user: User | None, permission: Permission) -> bool:
    """Whether the user holds a permission."""
    return user is not None and permission in permissions_of(user)


def require(user: User | None, permission: Permission) -> User:
    """Return the user if they hold a permission, else raise ``PermissionDeniedError``."""
    if user is None or not can(user, permission):
        raise PermissionDeniedError(f"{permission} required")
    return user


def queue_ids_of(session: Session, user: User) -> set[int]:
    """Return the queues a user is a member of."""
    from contactcenter.tickets.models import QueueMember

    return set(session.scalars(select(QueueMember.queue_id).where(QueueMember.user_id == user.id)))


def can_view_ticket(session: Session, user: User | None, ticket: object) -> bool:
    """Whether the user may see a ticket: theirs, their queues', or unassigned and unqueued.

    Supervisors and admins see every ticket.
    """
    from contactcenter.tickets.models import Ticket

    assert isinstance(ticket, Ticket)
    if user is None or not can(user, Permission.TICKET_VIEW):
        return False
    if can(user, Permission.TICKET_VIEW_ALL):
        return True
    if ticket.assignee_id == user.id:
        return True
    if ticket.queue_id is not None:
        return ticket.queue_id in queue_ids_of(session, user)
    return ticket.assignee_id is None


def visible_ticket_filter(session: Session, user: User) -> object:
    """Return a SQL condition selecting the tickets a user may see (for lists and search)."""
    from sqlalchemy import and_, false, or_, true

    from contactcenter.tickets.models import Ticket

    if not can(user, Permission.TICKET_VIEW):
        return false()
    if can(user, Permission.TICKET_VIEW_ALL):
        return true()
    queues = queue_ids_of(session, user)
    return or_(
        Ticket.assignee_id == user.id,
        Ticket.queue_id.in_(queues) if queues else false(),
        and_(Ticket.queue_id.is_(None), Ticket.assignee_id.is_(None)),
    )


def check_assignee(session: Session, actor: User, assignee: object) -> int | None:
    """Validate an ``assignee_id`` an actor asks for: themselves, or anyone with the assign right.

    :raises ValueError: when the value is not an id of an active user who works tickets.
    :raises PermissionDeniedError: when the actor may not give tickets to others.
    """
    if assignee is not None and (not isinstance(assignee, int) or isinstance(assignee, bool)):
        raise ValueError("assignee_id must be an integer or null")
    if assignee != actor.id and not can(actor, Permission.TICKET_ASSIGN):
        raise PermissionDeniedError("permission denied")
    if assignee is not None:
        target = session.get(User, assignee)
        if target is None or not can(target, Permission.TICKET_VIEW):
            raise ValueError("assignee_id must name an active user who works tickets")
    return assignee
