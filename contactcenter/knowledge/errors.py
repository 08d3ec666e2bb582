"""Errors of the knowledge capability."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base of knowledge errors."""


class ArticleNotFoundError(KnowledgeError, LookupError):
    """No such article (or version)."""


class WorkflowError(KnowledgeError, ValueError):
    """A workflow step the article's state or the actor does not allow."""


class ArticleValidationError(KnowledgeError, ValueError):
    """Article fields that are missing, too long or not allowed."""
