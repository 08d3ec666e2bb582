"""Shared pieces of the knowledge tests: editors, an agent, jobs wired to commits, articles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.jobs import InlineJobQueue, dispatch_event_jobs
from contactcenter.knowledge import service
from contactcenter.knowledge.index import KnowledgeIndex, drop_index
from contactcenter.knowledge.indexing import index_for, index_path
from contactcenter.knowledge.models import Article
from tests.factories import make_queue, make_user


@dataclass
class Staff:
    author: User
    reviewer: User
    agent: User
    admin: User


@pytest.fixture
def staff(session: Any) -> Staff:
    queue = make_queue(session, "support")
    staff = Staff(author=make_user(session, "knowledge_editor", email="author@example.test"),
                  reviewer=make_user(session, "knowledge_editor", email="reviewer@example.test"),
                  agent=make_user(session, "agent", email="agent@example.test", queues=(queue,)),
                  admin=make_user(session, "admin", email="admin@example.test"))
    session.commit()
    return staff


@pytest.fixture
def wired(db: Any, jobs: InlineJobQueue, settings: Settings) -> Any:
    """Jobs subscribed to events run synchronously after each commit (as in the app)."""
    db.on_commit(lambda rows: dispatch_event_jobs(jobs, rows))
    yield jobs
    drop_index(index_path(settings))


@pytest.fixture
def kb_index(settings: Settings, wired: Any) -> KnowledgeIndex:
    return index_for(settings)


def publish(session: Any, staff: Staff, title: str, body: str, *, language: str = "en",
            visibility: str = "public", category: str = "", tags: tuple[str, ...] = (),
            products: tuple[str, ...] = (), external_id: str | None = None) -> Article:
    """Create an article, have it reviewed and published (committed)."""
    content = service.clean_input({"title": title, "body": body, "language": language,
                                   "visibility": visibility, "category": category,
                                   "tags": list(tags), "products": list(products)})
    article = service.create_article(session, content, staff.author.id, external_id=external_id)
    service.transition(session, article, "submit", staff.author.id)
    service.transition(session, article, "publish", staff.reviewer.id)
    session.commit()
    return article
