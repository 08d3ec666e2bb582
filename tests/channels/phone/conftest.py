"""Fixtures of the phone channel's tests: Twilio settings, signed webhooks, a fake REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from contactcenter.channels.phone import rest
from contactcenter.config import Settings
from tests.channels.phone.twilio_fake import FakeTwilio, start_fake_twilio

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "12345678901234567890123456789012"
ACCOUNT = "AC" + "0" * 32
PUBLIC = "https://cc.example.test"


def load(name: str, **changes: str) -> dict[str, str]:
    """Return a fixture webhook's parameters with some changed."""
    data: dict[str, str] = json.loads((FIXTURES / f"{name}.json").read_text())
    data.update(changes)
    return data


def sign(url: str, params: dict[str, str] | None, token: str = TOKEN) -> str:
    """Sign a request exactly as Twilio does."""
    return RequestValidator(token).compute_signature(url, params or {})


@pytest.fixture(scope="session")
def fake_twilio_server() -> Iterator[tuple[FakeTwilio, Any]]:
    state, server = start_fake_twilio()
    yield state, server
    server.shutdown()


@pytest.fixture
def twilio(fake_twilio_server: tuple[FakeTwilio, Any]) -> FakeTwilio:
    """The fake REST API, emptied for this test."""
    state = fake_twilio_server[0]
    state.requests.clear()
    state.failures.clear()
    state.media.clear()
    state.redirects.clear()
    state.message_sids.clear()
    rest._client.cache_clear()
    return state


@pytest.fixture
def settings(tmp_path: Path, fake_twilio_server: tuple[FakeTwilio, Any]) -> Settings:
    state = fake_twilio_server[0]
    host = state.url.split("//", 1)[1]
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    public_url=PUBLIC, twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN,
                    twilio_api_base_url=state.url, twilio_api_timeout_seconds=1,
                    twilio_caller_id="+12025550100", twilio_sms_from="+12025550101",
                    twilio_whatsapp_from="+12025550101",
                    twilio_media_hosts=f"api.twilio.com,{host}",
                    twilio_ivr_menu="1:support:technical support:support|router|internet,"
                                    "2:billing:billing:bill|invoice|payment",
                    twilio_api_key_sid="SK" + "1" * 32, twilio_api_key_secret="secret" * 6,
                    twilio_twiml_app_sid="AP" + "2" * 32,
                    routing_offer_timeouts="call=20,chat=30,ticket=120")


class Webhooks:
    """Post signed webhooks to the app the way Twilio does."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def post(self, path: str, params: dict[str, str], *, query: str = "",
             signature: str | None = None, headers: dict[str, str] | None = None,
             url_base: str = PUBLIC) -> Any:
        full = f"{path}?{query}" if query else path
        sig = signature if signature is not None else sign(url_base + full, params)
        return self.client.post(full, data=urlencode(params),
                                content_type="application/x-www-form-urlencoded",
                                headers={"X-Twilio-Signature": sig, **(headers or {})})


@pytest.fixture
def webhooks(client: Any) -> Webhooks:
    return Webhooks(client)
