"""Web forms: validation, tickets, idempotent submits, honeypot, limits, acknowledgement mail."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.channels.chat.ratelimit import reset_memory_limiters
from contactcenter.channels.forms.schema import DefinitionError, parse_form, validate_submission
from contactcenter.channels.forms.service import save_form
from contactcenter.config import Settings
from contactcenter.tickets.models import Attachment, Message, Ticket
from tests.factories import make_queue

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
FORM = {"slug": "support", "title": "Contact support", "queue": "support", "language": "en",
        "fields": [{"name": "name", "type": "text"},
                   {"name": "email", "label": "E-mail", "type": "email", "required": True},
                   {"name": "topic", "type": "select", "options": ["Billing", "Other"],
                    "required": True},
                   {"name": "message", "type": "textarea", "required": True},
                   {"name": "file", "type": "file"}]}


class Sink:
    """A local SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def settings(tmp_path: Path, sink: tuple[Sink, int]) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    smtp_relay_host="127.0.0.1", smtp_relay_port=sink[1],
                    smtp_from_address="support@example.test", forms_posts_per_hour=5)


@pytest.fixture(autouse=True)
def form(session: Any) -> Any:
    reset_memory_limiters()
    make_queue(session, "support")
    row = save_form(session, FORM)
    session.commit()
    return row


def test_definitions_are_checked() -> None:
    with pytest.raises(DefinitionError):
        parse_form({**FORM, "fields": [{"name": "message", "type": "textarea"}]})
    with pytest.raises(DefinitionError):
        parse_form({**FORM, "fields": [*FORM["fields"], {"name": "x", "type": "script"}]})
    spec = parse_form(FORM)
    result = validate_submission(spec, {"email": "bad", "topic": "Hacking", "priority": "urgent"},
                                 {})
    assert result.errors == {"email": "Enter a valid e-mail address.",
                             "topic": "Choose one of the options.",
                             "message": "This field is required."}


def _submission_id(client: Any) -> str:
    page = client.get("/forms/support").get_data(as_text=True)
    match = re.search(r'name="submission_id" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_a_form_post_with_an_attachment_opens_a_ticket_and_mails_the_acknowledgement(
        client: Any, session: Any, sink: tuple[Sink, int]) -> None:
    import io

    sid = _submission_id(client)
    data = {"submission_id": sid, "name": "<img src=x onerror=alert(1)>",
            "email": "Anna@Example.com", "topic": "Billing", "message": "My invoice is wrong",
            "priority": "urgent", "file": (io.BytesIO(PNG), "../invoice.png")}
    response = client.post("/forms/support", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    number = int(re.search(r"#(\d+)", response.get_data(as_text=True)).group(1))
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.channel == "form" and ticket.queue.slug == "support"
    assert ticket.priority == "normal"
    message = session.scalar(select(Message).where(Message.ticket_id == ticket.id))
    assert "My invoice is wrong" in message.text and "<img src=x" in message.text
    attachment = session.scalar(select(Attachment).where(Attachment.message_id == message.id))
    assert attachment.content_type == "image/png" and attachment.filename == "invoice.png"
    end = time.monotonic() + 5
    while not sink[0].messages and time.monotonic() < end:
        time.sleep(0.05)
    assert len(sink[0].messages) == 1
    assert f"[#{number}]".encode() in sink[0].messages[0]
    assert b"anna@example.com" in sink[0].messages[0].lower()

    again = client.post("/forms/support", data={**data, "file": (io.BytesIO(PNG), "a.png")},
                        content_type="multipart/form-data")
    assert f"#{number}" in again.get_data(as_text=True)
    assert session.scalar(select(Ticket).where(Ticket.number == number + 1)) is None
    assert len(sink[0].messages) == 1


def test_bad_fields_come_back_with_clear_errors(client: Any) -> None:
    import io

    response = client.post("/forms/support", data={
        "submission_id": _submission_id(client), "email": "not-an-address", "topic": "",
        "message": "", "file": (io.BytesIO(b"MZ\x90\x00evil"), "photo.png")},
        content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter a valid e-mail address." in page and "This field is required." in page
    assert "not accepted" in page
    assert 'value="not-an-address"' in page


def test_the_json_endpoint_validates_and_is_idempotent(client: Any) -> None:
    body = {"submission_id": "embed-0001-abcdef", "email": "boris@example.com",
            "topic": "Other", "message": "Hello from another site"}
    first = client.post("/forms/support.json", json=body)
    assert first.status_code == 200 and first.json["duplicate"] is False
    second = client.post("/forms/support.json", json=body)
    assert second.json == {"ticket": first.json["ticket"], "duplicate": True}
    bad = client.post("/forms/support.json", json={**body, "submission_id": "embed-0002-x",
                                                   "email": ""})
    assert bad.status_code == 422 and bad.json["errors"] == {"email": "This field is required."}


def test_the_honeypot_and_the_rate_limit_stop_bots(client: Any, session: Any,
                                                   settings: Settings) -> None:
    body = {"submission_id": "bot-00000001", "email": "bot@example.com", "topic": "Other",
            "message": "spam", "website": "http://spam.example"}
    assert client.post("/forms/support.json", json=body).json["ticket"] is None
    assert session.scalar(select(Ticket)) is None
    answers = [client.post("/forms/support.json", json={**body, "website": "",
                                                        "submission_id": f"bot-0000000{i}"})
               for i in range(settings.forms_posts_per_hour + 2)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) > 0


def test_a_phone_field_reads_a_local_number_in_the_given_region() -> None:
    spec = parse_form({**FORM, "fields": [*FORM["fields"], {"name": "phone", "type": "phone"}]})
    values = {"email": "anna@example.com", "topic": "Other", "message": "Call me",
              "phone": "8 (916) 555-01-02"}
    assert validate_submission(spec, values, {}, region="RU").values["phone"] == "+79165550102"
    assert "phone" in validate_submission(spec, values, {}).errors  # not a US number
