"""The email channel: an SMTP server, IMAP polling, parsing, threading hints and replies."""
