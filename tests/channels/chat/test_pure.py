"""Pure pieces of the chat channel: identities, tokens, hours, uploads, limits, frames."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from contactcenter.channels.base import ChannelError
from contactcenter.channels.chat.adapter import frame_to_contact
from contactcenter.channels.chat.hours import HoursError, is_open, parse_hours
from contactcenter.channels.chat.identity import (
    identity_hash,
    new_visitor_token,
    verified_user_id,
    visitor_from_token,
)
from contactcenter.channels.chat.ratelimit import MemoryRateLimiter
from contactcenter.channels.chat.uploads import UploadError, check_upload, sniff_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_a_signed_identity_is_trusted_and_a_forged_one_is_not() -> None:
    good = identity_hash("s3cret", "user-42")
    assert verified_user_id("s3cret", "user-42", good) == "user-42"
    assert verified_user_id("s3cret", "user-43", good) is None
    assert verified_user_id("s3cret", "user-42", "0" * 64) is None
    assert verified_user_id("s3cret", "user-42", None) is None
    assert verified_user_id("", "user-42", identity_hash("", "user-42")) is None


def test_visitor_tokens_round_trip_and_reject_tampering() -> None:
    visitor_id, token = new_visitor_token("k" * 32)
    assert visitor_from_token("k" * 32, token) == visitor_id
    assert visitor_from_token("other-key" * 4, token) is None
    assert visitor_from_token("k" * 32, token[:-2] + "xx") is None
    assert visitor_from_token("k" * 32, 42) is None


def test_opening_hours_follow_the_local_clock() -> None:
    hours = parse_hours("mon-fri 09:00-17:00; sat 10:00-14:00")
    monday_10_london = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    assert is_open(hours, "Europe/London", monday_10_london)
    assert not is_open(hours, "Europe/London", monday_10_london.replace(hour=18))
    assert not is_open(hours, "Europe/London", dt.datetime(2026, 3, 8, 11, tzinfo=dt.UTC))
    assert is_open(hours, "UTC", dt.datetime(2026, 3, 7, 11, tzinfo=dt.UTC))
    assert is_open(parse_hours(""), "UTC", monday_10_london)
    with pytest.raises(HoursError):
        parse_hours("weekdays 9-5")


def test_uploads_are_judged_by_their_bytes_not_their_names() -> None:
    assert sniff_type(PNG) == "image/png"
    assert sniff_type(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff_type(b"MZ\x90\x00binary") == "application/x-msdownload"
    assert sniff_type("привет, world".encode()) == "text/plain"
    assert sniff_type(b"<svg onload=alert(1)>") == "text/html"
    allowed = ["image/png", "text/plain"]
    assert check_upload("photo.png", PNG, allowed, 1000) == ("photo.png", "image/png")
    with pytest.raises(UploadError):
        check_upload("invoice.png", b"MZ\x90\x00" + b"x" * 20, allowed, 1000)
    with pytest.raises(UploadError):
        check_upload("page.txt", b"<html><script>alert(1)</script>", allowed, 1000)
    with pytest.raises(UploadError):
        check_upload("big.png", PNG * 100, allowed, 100)
    name, _ = check_upload("../../etc/\u202epasswd.png", PNG, allowed, 1000)
    assert "/" not in name and "\u202e" not in name


def test_the_memory_limiter_counts_per_key_and_window() -> None:
    now = [1000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert all(limiter.hit("a", 3, 60).allowed for _ in range(3))
    refused = limiter.hit("a", 3, 60)
    assert not refused.allowed and 0 < refused.retry_after <= 60
    assert limiter.hit("b", 3, 60).allowed
    now[0] += 60
    assert limiter.hit("a", 3, 60).allowed


def test_a_chat_frame_maps_to_one_inbound_contact() -> None:
    frame = {"chat": "CHAT1", "visitor": "v" * 20, "client_id": "c-1", "text": "Hello",
             "name": "<b>Anna</b>", "identity": {"kind": "chat", "address": "v" * 20},
             "new": True, "subject": "Billing: Hello",
             "attachments": [{"filename": "a.png", "content_type": "image/png",
                              "data": base64.b64encode(PNG).decode()}]}
    contact = frame_to_contact(frame)
    assert contact.channel == "chat" and contact.external_id == "CHAT1/c-1"
    assert contact.sender.kind == "chat" and contact.sender.name == "<b>Anna</b>"
    assert contact.thread.thread_on_open_ticket is False
    assert contact.attachments[0].data == PNG
    with pytest.raises(ChannelError):
        frame_to_contact({**frame, "identity": {"kind": "email", "address": "a@b.c"}})
    with pytest.raises(ChannelError):
        frame_to_contact({**frame, "text": "", "attachments": []})
