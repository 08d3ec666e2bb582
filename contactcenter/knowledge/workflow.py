"""The editorial workflow as pure rules: which steps each state allows, and who may publish.

States describe the working copy (the newest version):

- ``draft``: being written; editing a published article puts it back here,
  while readers keep the published version until the new one is published;
- ``in_review``: submitted, waiting for a reviewer;
- ``published``: the working copy is the version readers see;
- ``archived``: withdrawn from readers, kept for history.

With review required, publishing needs the ``in_review`` state and a reviewer
other than the version's author and the person who submitted it, so no editor
can put their own words in front of customers alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from contactcenter.knowledge.errors import WorkflowError
from contactcenter.knowledge.models import ArticleStatus

S = ArticleStatus

TRANSITIONS: dict[str, dict[ArticleStatus, frozenset[ArticleStatus]]] = {
    "submit": {S.DRAFT: frozenset({S.IN_REVIEW})},
    "reject": {S.IN_REVIEW: frozenset({S.DRAFT})},
    "publish": {S.IN_REVIEW: frozenset({S.PUBLISHED}), S.DRAFT: frozenset({S.PUBLISHED})},
    "unpublish": {S.PUBLISHED: frozenset({S.DRAFT}), S.DRAFT: frozenset({S.DRAFT}),
                  S.IN_REVIEW: frozenset({S.IN_REVIEW})},
    "archive": {S.DRAFT: frozenset({S.ARCHIVED}), S.IN_REVIEW: frozenset({S.ARCHIVED}),
                S.PUBLISHED: frozenset({S.ARCHIVED})},
    "restore": {S.ARCHIVED: frozenset({S.DRAFT})},
}

TARGET = {"submit": S.IN_REVIEW, "reject": S.DRAFT, "publish": S.PUBLISHED,
          "archive": S.ARCHIVED, "restore": S.DRAFT}


@dataclass(frozen=True)
class PublishCheck:
    """The facts a publish decision needs."""

    status: str
    version_author_id: int | None
    submitted_by_id: int | None
    actor_id: int | None
    review_required: bool


def next_status(action: str, status: str) -> ArticleStatus:
    """Return the state after ``action``, or raise ``WorkflowError`` when it is not allowed."""
    allowed = TRANSITIONS.get(action)
    if allowed is None:
        raise WorkflowError(f"unknown action {action!r}")
    current = ArticleStatus(status)
    if current not in allowed:
        raise WorkflowError(f"a {current.value} article cannot be {action}ed"
                            if not action.endswith("e") else
                            f"a {current.value} article cannot be {action}d")
    if action == "unpublish":
        return S.DRAFT if current == S.PUBLISHED else current
    return TARGET[action]


def check_publish(check: PublishCheck) -> None:
    """Raise ``WorkflowError`` unless the actor may publish the working copy now."""
    status = ArticleStatus(check.status)
    if status not in (S.DRAFT, S.IN_REVIEW):
        raise WorkflowError(f"a {status.value} article cannot be published")
    if not check.review_required:
        return
    if status != S.IN_REVIEW:
        raise WorkflowError("publishing needs a review: submit the article for review first")
    if check.actor_id is None or check.actor_id in {check.version_author_id,
                                                     check.submitted_by_id}:
        raise WorkflowError("publishing needs a reviewer other than the author")
