"""Fixtures shared by the email tests: a throwaway Dovecot and an IMAP-ready database."""

from tests.channels.email.dovecot import (  # noqa: F401 (fixtures, registered by import)
    dovecot_fixture,
    dovecot_without_idle_fixture,
    imap_db_fixture,
    imap_settings_fixture,
)
