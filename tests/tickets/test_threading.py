"""Pure, table-driven tests of the threading decision (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from contactcenter.tickets.threading import (
    Candidate,
    ThreadDecision,
    ThreadRule,
    choose_thread,
    is_within_window,
    may_follow_reference,
)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ME, COLLEAGUE, STRANGER = 1, 2, 3
ACME, OTHER_ORG = 10, 20
WINDOW = 14


def ticket(ticket_id: int = 100, customer: int = ME, org: int | None = ACME,
           status: str = "open", age: dt.timedelta = dt.timedelta(hours=1)) -> Candidate:
    return Candidate(ticket_id, customer, org, status, NOW - age)


def decide(*, customer: int = ME, org: int | None = ACME, explicit: Candidate | None = None,
           token: bool = False, replied_to: Candidate | None = None,
           recent: Candidate | None = None, on_open: bool = True,
           window: int = WINDOW, now: dt.datetime = NOW) -> ThreadDecision:
    return choose_thread(customer_id=customer, organisation_id=org, explicit=explicit,
                         reply_token_ok=token, replied_to=replied_to, recent=recent,
                         thread_on_open_ticket=on_open, now=now, window_days=window)


# --- may_follow_reference ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("candidate", "customer", "org", "token", "expected"),
    [
        pytest.param(ticket(customer=ME), ME, ACME, False, True, id="own-customer"),
        pytest.param(ticket(customer=ME, org=None), ME, None, False, True,
                     id="own-customer-no-org"),
        pytest.param(ticket(customer=COLLEAGUE, org=ACME), ME, ACME, False, True,
                     id="colleague-same-org"),
        pytest.param(ticket(customer=COLLEAGUE, org=OTHER_ORG), ME, ACME, False, False,
                     id="other-org"),
        pytest.param(ticket(customer=STRANGER, org=None), ME, None, False, False,
                     id="stranger-both-without-org"),
        pytest.param(ticket(customer=STRANGER, org=ACME), ME, None, False, False,
                     id="stranger-without-org-to-org-ticket"),
        pytest.param(ticket(customer=STRANGER, org=None), ME, ACME, False, False,
                     id="org-member-to-orgless-ticket"),
        pytest.param(ticket(customer=STRANGER, org=OTHER_ORG), ME, ACME, True, True,
                     id="stranger-with-token"),
        pytest.param(ticket(customer=ME, status="closed"), ME, ACME, False, False,
                     id="own-closed"),
        pytest.param(ticket(customer=STRANGER, status="closed"), ME, None, True, False,
                     id="closed-even-with-token"),
        pytest.param(ticket(customer=ME, status="solved"), ME, ACME, False, True,
                     id="own-solved"),
    ],
)
def test_may_follow_reference(candidate: Candidate, customer: int, org: int | None,
                              token: bool, expected: bool) -> None:
    assert may_follow_reference(candidate, customer, org, token) is expected


# --- is_within_window ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("age", "days", "expected"),
    [
        (dt.timedelta(0), 14, True),
        (dt.timedelta(days=13, hours=23, minutes=59), 14, True),
        (dt.timedelta(days=14), 14, True),  # exactly at the boundary: still inside
        (dt.timedelta(days=14, microseconds=1), 14, False),
        (dt.timedelta(days=15), 14, False),
        (dt.timedelta(0), 0, True),
        (dt.timedelta(seconds=1), 0, False),
        (dt.timedelta(days=1), 1, True),
        (dt.timedelta(days=1, seconds=1), 1, False),
    ],
)
def test_is_within_window(age: dt.timedelta, days: int, expected: bool) -> None:
    assert is_within_window(NOW - age, NOW, days) is expected


def test_window_works_across_timezones() -> None:
    # The same instant written in another offset is the same age.
    moscow = dt.timezone(dt.timedelta(hours=3))
    last = (NOW - dt.timedelta(days=14)).astimezone(moscow)
    assert is_within_window(last, NOW, 14)
    assert not is_within_window(last - dt.timedelta(seconds=1), NOW, 14)


# --- choose_thread ------------------------------------------------------------------------

EXPLICIT = ThreadRule.EXPLICIT
HEADERS = ThreadRule.REPLY_HEADERS
OPEN = ThreadRule.OPEN_TICKET
NEW = ThreadRule.NEW

CASES = [
    # (id, kwargs for decide, expected ticket id, expected rule)
    ("nothing-known", {}, None, NEW),
    ("explicit-own", {"explicit": ticket(1)}, 1, EXPLICIT),
    ("explicit-colleague-same-org",
     {"explicit": ticket(1, customer=COLLEAGUE, org=ACME)}, 1, EXPLICIT),
    ("explicit-stranger-ignored",
     {"explicit": ticket(1, customer=STRANGER, org=OTHER_ORG)}, None, NEW),
    ("explicit-stranger-no-org-ignored",
     {"org": None, "explicit": ticket(1, customer=STRANGER, org=None)}, None, NEW),
    ("explicit-stranger-ignored-falls-to-own-recent",
     {"explicit": ticket(1, customer=STRANGER, org=OTHER_ORG), "recent": ticket(2)}, 2, OPEN),
    ("explicit-stranger-with-token",
     {"explicit": ticket(1, customer=STRANGER, org=OTHER_ORG), "token": True}, 1, EXPLICIT),
    ("explicit-closed-never-reused", {"explicit": ticket(1, status="closed")}, None, NEW),
    ("explicit-closed-with-token-never-reused",
     {"explicit": ticket(1, status="closed"), "token": True}, None, NEW),
    ("explicit-closed-falls-to-recent",
     {"explicit": ticket(1, status="closed"), "recent": ticket(2)}, 2, OPEN),
    ("explicit-solved-own", {"explicit": ticket(1, status="solved")}, 1, EXPLICIT),
    ("explicit-old-ticket-ignores-window",
     {"explicit": ticket(1, age=dt.timedelta(days=400))}, 1, EXPLICIT),
    ("explicit-beats-headers-and-recent",
     {"explicit": ticket(1), "replied_to": ticket(2), "recent": ticket(3)}, 1, EXPLICIT),
    ("explicit-honoured-with-thread-on-open-off",
     {"explicit": ticket(1), "on_open": False}, 1, EXPLICIT),
    ("headers-own", {"replied_to": ticket(2)}, 2, HEADERS),
    ("headers-colleague", {"replied_to": ticket(2, customer=COLLEAGUE)}, 2, HEADERS),
    ("headers-stranger-ignored",
     {"replied_to": ticket(2, customer=STRANGER, org=OTHER_ORG)}, None, NEW),
    ("headers-token-flag-does-not-apply-to-headers",
     {"replied_to": ticket(2, customer=STRANGER, org=OTHER_ORG), "token": True}, None, NEW),
    ("headers-closed-ignored", {"replied_to": ticket(2, status="closed")}, None, NEW),
    ("headers-old-ticket-ignores-window",
     {"replied_to": ticket(2, age=dt.timedelta(days=90))}, 2, HEADERS),
    ("headers-beat-recent", {"replied_to": ticket(2), "recent": ticket(3)}, 2, HEADERS),
    ("headers-honoured-with-thread-on-open-off",
     {"replied_to": ticket(2), "on_open": False}, 2, HEADERS),
    ("recent-own-in-window", {"recent": ticket(3, age=dt.timedelta(days=2))}, 3, OPEN),
    ("recent-at-window-edge", {"recent": ticket(3, age=dt.timedelta(days=WINDOW))}, 3, OPEN),
    ("recent-just-past-window",
     {"recent": ticket(3, age=dt.timedelta(days=WINDOW, seconds=1))}, None, NEW),
    ("recent-solved-in-window", {"recent": ticket(3, status="solved")}, 3, OPEN),
    ("recent-closed-ignored", {"recent": ticket(3, status="closed")}, None, NEW),
    ("recent-of-colleague-ignored", {"recent": ticket(3, customer=COLLEAGUE)}, None, NEW),
    ("recent-with-thread-on-open-off", {"recent": ticket(3), "on_open": False}, None, NEW),
    ("recent-short-window",
     {"recent": ticket(3, age=dt.timedelta(days=3)), "window": 2}, None, NEW),
    ("recent-long-window",
     {"recent": ticket(3, age=dt.timedelta(days=20)), "window": 30}, 3, OPEN),
    ("recent-zero-window", {"recent": ticket(3), "window": 0}, None, NEW),
]


@pytest.mark.parametrize(("kwargs", "expected_id", "expected_rule"),
                         [pytest.param(k, i, r, id=name) for name, k, i, r in CASES])
def test_choose_thread(kwargs: dict[str, object], expected_id: int | None,
                       expected_rule: ThreadRule) -> None:
    decision = decide(**kwargs)  # type: ignore[arg-type]
    assert decision == ThreadDecision(expected_id, expected_rule)


def test_rule_values_are_stable() -> None:
    # The rule's value is stored in intake results and shown to people.
    assert [r.value for r in ThreadRule] == [
        "explicit_reference", "reply_headers", "open_ticket", "new_ticket",
        "sender_limit"]
