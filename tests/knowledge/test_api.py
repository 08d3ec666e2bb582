"""The knowledge API: permissions, the workflow over HTTP, ticket suggestions and uses."""

from __future__ import annotations

from typing import Any

import pytest

from contactcenter.knowledge.index import drop_index
from contactcenter.knowledge.indexing import index_path
from tests.agent_ui.conftest import ingest
from tests.factories import bearer, make_inbox, make_queue, make_token, make_user


@pytest.fixture
def heads(session: Any, settings: Any) -> Any:
    queue = make_queue(session, "kbq")
    users = {"author": make_user(session, "knowledge_editor"),
             "reviewer": make_user(session, "knowledge_editor"),
             "agent": make_user(session, "agent", queues=(queue,)),
             "other_agent": make_user(session, "agent")}
    session.commit()
    out = {name: bearer(make_token(session, u)) for name, u in users.items()}
    out["queue"] = queue  # type: ignore[assignment]
    yield out
    drop_index(index_path(settings))


def test_editor_workflow_over_http(client: Any, heads: Any) -> None:
    art = {"title": "Reset the router", "body": "Hold **reset** for 10 s.<script>x</script>",
           "language": "en", "visibility": "public", "tags": ["router"]}
    assert client.post("/api/v1/kb/articles", json=art, headers=heads["agent"]).status_code == 403
    assert client.post("/api/v1/kb/articles", json=art).status_code == 401
    created = client.post("/api/v1/kb/articles", json=art, headers=heads["author"])
    assert created.status_code == 201
    article = created.get_json()
    assert "<script>" not in article["html"] and "<strong>reset</strong>" in article["html"]
    url = f"/api/v1/kb/articles/{article['id']}"
    saved = client.put(url, json={"body": "Hold reset for 15 s."}, headers=heads["author"])
    assert saved.get_json()["current_version"] == 2
    diff = client.get(f"{url}/diff?from=1&to=2", headers=heads["author"]).get_json()
    assert diff["changes"][0]["field"] == "body"
    assert client.post(f"{url}/publish", headers=heads["author"]).status_code == 409
    assert client.post(f"{url}/submit", headers=heads["author"]).status_code == 200
    assert client.post(f"{url}/publish", headers=heads["agent"]).status_code == 403
    assert client.post(f"{url}/publish", headers=heads["author"]).status_code == 409
    assert client.post(f"{url}/publish", headers=heads["reviewer"]).get_json()["live"]
    hits = client.get("/api/v1/kb/search?q=router+reset", headers=heads["agent"]).get_json()
    assert [h["id"] for h in hits["results"]] == [article["id"]]
    assert "<mark>" in hits["results"][0]["snippet"]
    rolled = client.post(f"{url}/rollback", json={"version": 1}, headers=heads["author"])
    assert rolled.get_json()["version"]["number"] == 3
    versions = client.get(f"{url}/versions", headers=heads["author"]).get_json()["items"]
    assert [v["number"] for v in versions] == [3, 2, 1]
    # Agents read the published version, not the working copy.
    seen = client.get(url, headers=heads["agent"]).get_json()
    assert seen["body"] == "Hold reset for 15 s."


def test_ticket_suggestions_uses_and_proposals(client: Any, session: Any, settings: Any,
                                               heads: Any) -> None:
    art = client.post("/api/v1/kb/articles", json={
        "title": "Parcel tracking", "body": "Track the parcel with its number.",
        "visibility": "public"}, headers=heads["author"]).get_json()
    client.post(f"/api/v1/kb/articles/{art['id']}/submit", headers=heads["author"])
    client.post(f"/api/v1/kb/articles/{art['id']}/publish", headers=heads["reviewer"])
    inbox = make_inbox(session, heads["queue"])
    session.commit()
    ticket = ingest(session, settings, inbox_id=inbox.id, subject="Where is my parcel?",
                    text="Tracking shows nothing")
    url = f"/api/v1/tickets/{ticket.number}"
    got = client.get(f"{url}/suggestions", headers=heads["agent"]).get_json()
    assert [r["id"] for r in got["results"]] == [art["id"]]
    assert client.get(f"{url}/suggestions", headers=heads["other_agent"]).status_code == 404
    used = client.post(f"{url}/kb-uses", json={"article_id": art["id"], "kind": "link"},
                       headers=heads["agent"])
    assert used.status_code == 201
    assert used.get_json()["link"].endswith(f"/help/articles/{art['id']}")
    proposal = client.post(f"{url}/kb-proposals", json={"body": "Use the tracking page."},
                           headers=heads["agent"])
    assert proposal.status_code == 201 and proposal.get_json()["status"] == "draft"
    fb = client.post(f"/api/v1/kb/articles/{art['id']}/feedback",
                     json={"helpful": False, "comment": "outdated"}, headers=heads["agent"])
    assert fb.status_code == 201
    items = client.get(f"/api/v1/kb/articles/{art['id']}/feedback",
                       headers=heads["author"]).get_json()["items"]
    assert items[0]["comment"] == "outdated"


def test_inputs_are_bounded(client: Any, heads: Any) -> None:
    too_long = client.post("/api/v1/kb/articles", json={"title": "x" * 400},
                           headers=heads["author"])
    assert too_long.status_code == 400
    assert client.get("/api/v1/kb/search?q=" + "a" * 5000 + "&limit=99999",
                      headers=heads["agent"]).status_code == 200
    assert client.post("/api/v1/kb/articles/1/explode", headers=heads["author"]).status_code \
        == 404


def test_attachments_are_stored_and_sent_as_downloads(client: Any, heads: Any) -> None:
    import io

    art = client.post("/api/v1/kb/articles", json={"title": "Manual", "visibility": "public"},
                      headers=heads["author"]).get_json()
    url = f"/api/v1/kb/articles/{art['id']}/attachments"
    data = {"file": (io.BytesIO(b"<html>manual</html>"), "../../manual.html", "text/html")}
    assert client.post(url, data=data, headers=heads["agent"],
                       content_type="multipart/form-data").status_code == 403
    data = {"file": (io.BytesIO(b"<html>manual</html>"), "../../manual.html", "text/html")}
    created = client.post(url, data=data, headers=heads["author"],
                          content_type="multipart/form-data")
    assert created.status_code == 201 and created.get_json()["filename"] == "manual.html"
    download = client.get(created.get_json()["url"], headers=heads["author"])
    assert download.data == b"<html>manual</html>"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in download.headers["Content-Disposition"]
    # Not published: agents and the public portal do not get it.
    assert client.get(created.get_json()["url"], headers=heads["agent"]).status_code == 404
    assert client.get(f"/help/attachments/{created.get_json()['id']}").status_code == 404
