"""Talk to an IMAP server for the poller: connect, select, and acknowledge stored mail.

Acknowledging is ``\\Seen`` (keep on server) or a move to the processed folder:
UID MOVE (RFC 6851) where offered, else COPY, ``\\Deleted`` and UID EXPUNGE
(RFC 4315) of our own UIDs, so another client's deleted mail is never expunged
by us. TLS certificates are verified unless the mailbox says otherwise.
"""

from __future__ import annotations

import imaplib
import logging
import ssl

from imapclient import IMAPClient, SocketTimeout

from contactcenter.channels.email.imap_config import MailboxConfig

log = logging.getLogger(__name__)

# What a lost or broken connection raises: imaplib's error and abort (IMAPClient.Error,
# IMAPClient.AbortError), socket timeouts and resets, TLS errors.
IMAP_ERRORS: tuple[type[BaseException], ...] = (imaplib.IMAP4.error, OSError)

SEEN = b"\\Seen"
DELETED = b"\\Deleted"


class MailboxError(Exception):
    """The server answered something the poller cannot work with (no UIDVALIDITY)."""


def connect(mailbox: MailboxConfig) -> IMAPClient:
    """Open and log in (TLS verified unless the mailbox says otherwise)."""
    context = ssl.create_default_context()
    if not mailbox.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    seconds = mailbox.timeout_seconds or None
    client = IMAPClient(mailbox.host, port=mailbox.port, ssl=mailbox.ssl,
                        ssl_context=context if mailbox.ssl else None,
                        timeout=SocketTimeout(connect=seconds, read=seconds))
    try:
        if mailbox.starttls:
            client.starttls(context)
        client.login(mailbox.user, mailbox.password)
    except BaseException:
        disconnect(client)
        raise
    return client


def disconnect(client: IMAPClient) -> None:
    """Log out, or just close the socket when the connection is already gone."""
    try:
        client.logout()
    except IMAP_ERRORS:
        try:
            client.shutdown()
        except IMAP_ERRORS:
            pass


def open_folder(client: IMAPClient, mailbox: MailboxConfig) -> int:
    """Select the folder read-write (creating the processed folder); return UIDVALIDITY."""
    for target in (mailbox.processed_folder, mailbox.oversized_folder):
        if target and not client.folder_exists(target):
            try:
                client.create_folder(target)
            except imaplib.IMAP4.error:
                if not client.folder_exists(target):  # not a lost race with another poller
                    raise
    info = client.select_folder(mailbox.folder)
    if b"UIDVALIDITY" not in info:
        raise MailboxError(f"{mailbox.key}: the server sent no UIDVALIDITY")
    return int(info[b"UIDVALIDITY"])


def mark_done(client: IMAPClient, mailbox: MailboxConfig, uids: list[int]) -> None:
    """Flag stored messages ``\\Seen``, or move them to the processed folder."""
    if not uids:
        return
    client.add_flags(uids, [SEEN], silent=True)
    if mailbox.processed_folder:
        move_to(client, uids, mailbox.processed_folder, mailbox.key)


def move_to(client: IMAPClient, uids: list[int], target: str, key: str) -> None:
    """Move our UIDs to ``target``: UID MOVE, else COPY + ``\\Deleted`` + UID EXPUNGE."""
    if not uids:
        return
    if client.has_capability("MOVE"):
        client.move(uids, target)  # UID MOVE (RFC 6851): atomic
        return
    client.copy(uids, target)
    client.add_flags(uids, [DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)  # only our UIDs, never another client's \Deleted mail
    else:
        log.warning("IMAP mailbox %s: no UIDPLUS, moved messages stay flagged \\Deleted "
                    "until another client expunges", key)


def is_mail_announced(client: IMAPClient) -> bool:
    """Return whether the server announced new mail (EXISTS) since the last SELECT.

    A message that arrives while a command runs is announced in that command's
    reply (RFC 3501 7.3.1), which imaplib files away, and IDLE does not repeat it:
    without this check such a message would wait for the next IDLE renewal.
    imaplib keeps the replies since SELECT, which flushed them and added one
    EXISTS of its own; more than one means the mailbox grew meanwhile.
    """
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(responses, dict):
        return False  # cannot tell: the IDLE renewal still picks the mail up
    return len(responses.get("EXISTS") or ()) > 1
