"""Form definitions from configuration: the file at app start, the CLI, the admin page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from contactcenter.channels.forms.models import WebForm
from contactcenter.config import Settings
from contactcenter.db import Database
from tests.agent_ui.conftest import login
from tests.factories import make_queue, make_user

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "forms.example.json"


def test_the_example_file_loads_twice_through_the_cli_to_the_same_forms(tmp_path: Path) -> None:
    from contactcenter.cli import main

    url = f"sqlite:///{tmp_path / 'cc.db'}"
    env = {"CONTACTCENTER_DATABASE_URL": url, "CONTACTCENTER_DATA_DIR": str(tmp_path),
           "CONTACTCENTER_SECRET_KEY": "test-secret-key-not-for-production"}
    runner = CliRunner()
    missing = runner.invoke(main, ["forms", "load", str(EXAMPLE)], env=env)
    assert missing.exit_code != 0 and "no queue 'support'" in missing.output

    db = Database(url)
    with db.session() as session:
        make_queue(session, "support")
        session.commit()
    for _ in range(2):
        result = runner.invoke(main, ["forms", "load", str(EXAMPLE)], env=env)
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.output.splitlines()]
        assert [line["slug"] for line in lines] == ["support", "obratnaya-svyaz"]
    with db.session() as session:
        forms = session.scalars(select(WebForm).order_by(WebForm.slug)).all()
        assert [f.slug for f in forms] == ["obratnaya-svyaz", "support"]
        assert forms[1].language == "en" and len(forms[1].fields) == 8
    listed = runner.invoke(main, ["forms", "list", "--json"], env=env)
    assert json.loads(listed.output.splitlines()[1])["queue"] == "support"
    db.dispose()


@pytest.fixture
def forms_file(tmp_path: Path) -> Path:
    path = tmp_path / "forms.json"
    path.write_text(json.dumps([{"slug": "callback", "title": "Call me back",
                                 "fields": [{"name": "email", "type": "email",
                                             "required": True},
                                            {"name": "phone", "type": "phone"}]}]))
    return path


def test_the_configured_file_is_loaded_when_the_app_starts(
        settings: Settings, db: Any, session: Any, forms_file: Path) -> None:
    from contactcenter.app import create_app

    app = create_app(settings.replace(forms_file=str(forms_file)), db=db)
    assert app.test_client().get("/forms/callback").status_code == 200
    create_app(settings.replace(forms_file=str(forms_file)), db=db)  # again: no duplicate
    assert len(session.scalars(select(WebForm)).all()) == 1


def test_a_broken_file_is_logged_and_the_app_still_starts(
        settings: Settings, db: Any, forms_file: Path, caplog: Any) -> None:
    from contactcenter.app import create_app

    forms_file.write_text("{not json")
    app = create_app(settings.replace(forms_file=str(forms_file)), db=db)
    assert app.test_client().get("/forms/callback").status_code == 404
    assert "not valid JSON" in caplog.text


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_only_admins_edit_forms_and_bad_definitions_come_back_with_the_error(
        client: Any, session: Any) -> None:
    make_queue(session, "support")
    make_user(session, "agent", email="agent@example.test")
    make_user(session, "admin", email="admin@example.test")
    session.commit()

    assert client.get("/admin/forms").status_code == 302  # sign in first
    login(client, "agent@example.test")
    assert client.get("/admin/forms").status_code == 403
    assert client.post("/admin/forms", data={"definition": "{}"}).status_code in (400, 403)
    client.post("/logout", data={"csrf_token": _csrf(client.get("/").get_data(as_text=True))})

    login(client, "admin@example.test")
    page = client.get("/admin/forms/new").get_data(as_text=True)
    token = _csrf(page)
    bad = client.post("/admin/forms", data={"csrf_token": token, "definition": "{oops"})
    assert bad.status_code == 400 and "Not valid JSON" in bad.get_data(as_text=True)
    no_email = json.dumps({"slug": "x1", "title": "X", "fields": [{"name": "a"}]})
    bad = client.post("/admin/forms", data={"csrf_token": token, "definition": no_email})
    assert bad.status_code == 400 and "an email field is needed" in bad.get_data(as_text=True)
    assert "&#34;a&#34;" in bad.get_data(as_text=True)  # the text is kept, escaped

    good = {"slug": "returns", "title": "<b>Returns</b>", "queue": "support",
            "fields": [{"name": "email", "type": "email", "required": True},
                       {"name": "reason", "type": "select", "options": ["Broken", "Other"]}]}
    saved = client.post("/admin/forms", data={"csrf_token": token,
                                              "definition": json.dumps(good)})
    assert saved.status_code == 302 and "saved=returns" in saved.headers["Location"]
    listing = client.get("/admin/forms").get_data(as_text=True)
    assert "&lt;b&gt;Returns&lt;/b&gt;" in listing and "<b>Returns" not in listing
    edit = client.get("/admin/forms/returns/edit").get_data(as_text=True)
    assert "Broken" in edit and "&#34;queue&#34;: &#34;support&#34;" in edit
    assert client.get("/forms/returns").status_code == 200

    client.post("/admin/forms", data={"csrf_token": token,
                                      "definition": json.dumps({**good, "enabled": False})})
    assert client.get("/forms/returns").status_code == 404
    assert client.get("/admin/forms/nope/edit").status_code == 404
