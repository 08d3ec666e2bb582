"""The pure rules: call states, SMS splitting and keywords, menu, hours, numbers, TwiML."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactcenter.channels.phone import ivr, sms
from contactcenter.channels.phone.callstate import STATUS_RANK, next_status, outcome_of
from contactcenter.channels.phone.numbers import agent_of_identity, parse_address


@given(st.lists(st.sampled_from(sorted(STATUS_RANK)), max_size=12))
def test_a_call_status_never_moves_backwards(statuses):
    current = "queued"
    for reported in statuses:
        new = next_status(current, reported)
        if new is not None:
            assert STATUS_RANK[new] > STATUS_RANK[current]
            current = new
    finals = [s for s in statuses if STATUS_RANK[s] == 4]
    if finals:
        assert current == finals[0]  # the first final status wins


def test_outcomes():
    assert outcome_of("inbound", "completed", "queued", False, False) == "abandoned"
    assert outcome_of("inbound", "completed", "ivr", False, False) == "missed"
    assert outcome_of("inbound", "completed", "voicemail", False, True) == "voicemail"
    assert outcome_of("inbound", "completed", "connected", True, False) == "answered"
    assert outcome_of("outbound", "busy", "bridging", False, False) == "busy"
    assert outcome_of("outbound", "failed", "ivr", False, False) == "failed"


@pytest.mark.parametrize("body,keyword", [("STOP", "stop"), (" stop. ", "stop"),
                                          ("Unsubscribe", "stop"), ("start", "start"),
                                          ("HELP", "help"), ("stop sending me ads", None),
                                          ("Стоп", "stop")])
def test_keywords(body, keyword):
    found = sms.keyword_of(body)
    assert (found.value if found else None) == keyword


def test_segments_follow_gsm_and_ucs2_rules():
    assert sms.segment_count("a" * 160) == 1
    assert sms.segment_count("a" * 161) == 2
    assert sms.segment_count("€" * 80) == 1  # extension characters count twice
    assert sms.segment_count("€" * 81) == 2
    assert sms.segment_count("я" * 70) == 1
    assert sms.segment_count("я" * 71) == 2
    assert sms.segment_count("😀" * 35) == 1  # two UCS-2 units each
    assert sms.segment_count("😀" * 36) == 2


@given(st.text(alphabet=st.sampled_from(list("ab яё😀\u0301\n")), max_size=400),
       st.integers(min_value=10, max_value=60))
def test_split_keeps_every_character_within_the_limit(text, limit):
    parts = sms.split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    squeeze = "".join(text.split())
    assert "".join("".join(p.split()) for p in parts) == squeeze
    for part in parts[1:]:
        assert not part[0] == "\u0301"  # a combining accent stays with its letter


def test_split_prefers_word_boundaries():
    parts = sms.split_message("word " * 10, 12)
    assert parts == ["word word", "word word", "word word", "word word", "word word"]


def test_menu_parse_and_choice():
    menu = ivr.parse_menu("1:support:technical support:router|internet,2:billing:billing")
    assert ivr.choose_option(menu, "2", "").queue_slug == "billing"
    assert ivr.choose_option(menu, "", "my internet is down").queue_slug == "support"
    assert ivr.choose_option(menu, "9", "") is None
    with pytest.raises(ivr.MenuError):
        ivr.parse_menu("1:support")
    with pytest.raises(ivr.MenuError):
        ivr.parse_menu("1:a:b,1:c:d")


def test_business_hours_in_their_timezone():
    hours = ivr.parse_hours("mon-fri 09:00-18:00,sat 10:00-14:00", "Europe/Moscow")
    monday_noon_msk = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    assert ivr.is_open(hours, monday_noon_msk)
    assert not ivr.is_open(hours, dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC))  # 19:00 MSK
    assert not ivr.is_open(hours, dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC))  # Sunday
    assert ivr.is_open(None, monday_noon_msk)
    with pytest.raises(ivr.MenuError):
        ivr.parse_hours("weekdays 9-5", "UTC")


def test_addresses():
    assert parse_address("whatsapp:+447700900123").channel == "whatsapp"
    assert parse_address("whatsapp:+447700900123").number == "+447700900123"
    assert parse_address("+266696687").channel == "anonymous"
    assert parse_address("client:agent-7").channel == "client"
    assert agent_of_identity("client:agent-7") == 7
    assert agent_of_identity("agent-x") is None


def test_announcement_in_russian():
    text = ivr.wait_phrase("ru", 3, 400)
    assert "Ваш номер в очереди: 3" in text and "7 мин" in text
