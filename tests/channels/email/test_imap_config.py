"""Mailboxes from settings (URLs, JSON, the single-mailbox variables) and the retry backoff."""

from __future__ import annotations

import pytest

from contactcenter.channels.email.imap import backoff_delay
from contactcenter.channels.email.imap_config import MailboxConfig, mailboxes_from_settings
from contactcenter.config import Settings, SettingsError


def test_single_mailbox_variables_still_work() -> None:
    settings = Settings.from_env({
        "CONTACTCENTER_IMAP_HOST": "mail.example.com", "CONTACTCENTER_IMAP_USER": "help",
        "CONTACTCENTER_IMAP_PASSWORD": "s3cret", "CONTACTCENTER_IMAP_PROCESSED_FOLDER": "Done",
        "CONTACTCENTER_IMAP_INBOX": "help@example.com", "CONTACTCENTER_IMAP_POLL_SECONDS": "30",
    })
    [mailbox] = mailboxes_from_settings(settings)
    assert (mailbox.host, mailbox.port, mailbox.ssl, mailbox.user, mailbox.password) == (
        "mail.example.com", 993, True, "help", "s3cret")
    assert (mailbox.folder, mailbox.processed_folder, mailbox.inbox) == (
        "INBOX", "Done", "help@example.com")
    assert mailbox.poll_seconds == 30 and mailbox.tls_verify
    assert mailbox.key == "help@mail.example.com:993/INBOX"
    assert "s3cret" not in repr(mailbox)


def test_no_mailbox_configured() -> None:
    assert mailboxes_from_settings(Settings()) == []


def test_mailbox_urls_with_options_and_encoded_passwords() -> None:
    settings = Settings(imap_host="one.example.com", imap_user="a", imap_password="b",
                        imap_idle_seconds=900, imap_mailboxes=(
        "imaps://help%40example.com:p%2Fw%2Cd@mail.example.com/Support%20Desk"
        "?inbox=help@example.com&processed=Done&cap=50,\n"
        "  imap://test:test@127.0.0.1:10143?idle=0&poll=2.5&starttls=1&name=loopback"))
    one, two, three = mailboxes_from_settings(settings)
    assert one.host == "one.example.com"
    assert (two.user, two.password, two.host, two.port, two.ssl) == (
        "help@example.com", "p/w,d", "mail.example.com", 993, True)
    assert (two.folder, two.inbox, two.processed_folder, two.run_cap) == (
        "Support Desk", "help@example.com", "Done", 50)
    assert two.idle_seconds == 900  # the global default
    assert (three.port, three.ssl, three.starttls, three.idle, three.poll_seconds) == (
        10143, False, True, False, 2.5)
    assert three.folder == "INBOX" and three.key == "loopback"


def test_mailboxes_as_json() -> None:
    settings = Settings(imap_mailboxes='[{"host": "mail.example.com", "user": "u", '
                                       '"password": "p:w", "ssl": false, "processed": "Done", '
                                       '"batch": 10}]')
    [mailbox] = mailboxes_from_settings(settings)
    assert mailbox == MailboxConfig(host="mail.example.com", user="u", password="p:w", port=143,
                                    ssl=False, processed_folder="Done", batch_size=10)


@pytest.mark.parametrize("value", [
    "pop3://u:p@host", "imaps://u:p@host?colour=blue", "imaps://u:p@host?poll=-1",
    "imaps://u:p@host?cap=0", "imaps://u:p@host:99999", "imaps://u:p@host?starttls=1",
    "[1, 2]", "[{\"user\": \"nohost\"}]", "[not json",
    "imaps://u:p@host imaps://u:p@host",
])
def test_bad_mailbox_settings_are_refused(value: str) -> None:
    with pytest.raises(SettingsError):
        mailboxes_from_settings(Settings(imap_mailboxes=value))


def test_backoff_grows_is_capped_and_jittered() -> None:
    delays = [backoff_delay(n, 1.0, 60.0) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        full = min(60.0, 2.0 ** (n - 1))
        assert full / 2 <= delay <= full
    assert max(delays) <= 60.0
    assert backoff_delay(10_000, 1.0, 60.0) <= 60.0
    assert len({backoff_delay(5, 1.0, 60.0) for _ in range(20)}) > 1
