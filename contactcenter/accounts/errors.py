"""Errors of accounts and authorisation."""

from __future__ import annotations


class AccountError(Exception):
    """Base of account errors."""


class AuthenticationError(AccountError):
    """Wrong credentials or token."""


class PermissionDeniedError(AccountError):
    """The user may not do this."""
