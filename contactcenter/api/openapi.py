"""The OpenAPI 3.1 description of ``/api/v1``, built from small helpers."""

from __future__ import annotations

from typing import Any

from contactcenter import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Bad input"),
    "401": _json(_ref("Error"), "No or invalid token"),
    "403": _json(_ref("Error"), "Missing permission"),
    "404": _json(_ref("Error"), "Not found, or not visible to the caller"),
}


def _op(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {status: ok, **ERRORS}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    return op


def _conflicts(op: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add the identity endpoints' 409 (and any other answers) to an operation."""
    op["responses"].update(extra or {})
    op["responses"]["409"] = _json(_ref("IdentityConflict"), "The address belongs to another "
                                   "customer (merge them instead), or is the customer's last")
    return op


def _path_int(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}}},
    "Identity": {"type": "object", "properties": {
        "id": {"type": "integer"},
        "kind": {"enum": ["email", "phone", "chat", "external"]},
        "address": {"type": "string"}, "verified": {"type": "boolean"}}},
    "CustomerBrief": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "language": {"type": ["string", "null"]}, "external_id": {"type": ["string", "null"]},
        "value_tier": {"type": ["string", "null"]},
        "identities": {"type": "array", "items": _ref("Identity")}}},
    "Customer": {"allOf": [_ref("CustomerBrief"), {"type": "object", "properties": {
        "masked": {"type": "boolean",
                   "description": "true when the caller may not see financial data"},
        "lifetime_value": {"type": ["string", "null"]},
        "balance": {"type": ["string", "null"]},
        "purchases": {"type": "array", "items": {"type": "object"}},
        "contracts": {"type": "array", "items": {"type": "object"}}}}]},
    "IdentityConflict": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"},
        "conflict": {"enum": ["identity_exists", "last_identity"]},
        "merge_customer_id": {"type": "integer", "description": "the customer holding the "
                              "address; only for callers who may merge customers"}}},
    "IdentityNew": {"type": "object", "required": ["kind", "address"], "properties": {
        "kind": {"enum": ["email", "phone", "chat"]},
        "address": {"type": "string", "maxLength": 400,
                    "description": "phone numbers are stored in E.164"},
        "region": {"type": "string", "description": "ISO country of a phone number "
                   "written without +country (default US)"}}},
    "IdentityAdded": {"type": "object", "properties": {
        "identity": _ref("Identity"), "customer": _ref("CustomerBrief")}},
    "CustomerChange": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 200},
        "language": {"type": ["string", "null"], "description": "ISO code like en or ru"}}},
    "Attachment": {"type": "object", "properties": {
        "id": {"type": "integer"}, "filename": {"type": "string"},
        "content_type": {"type": "string"}, "size": {"type": "integer"},
        "preview": {"type": "boolean", "description": "a thumbnail is at "
                    "/api/v1/attachments/{id}/preview"}}},
    "Message": {"type": "object", "properties": {
        "id": {"type": "integer"}, "direction": {"enum": ["inbound", "outbound", "note"]},
        "channel": {"type": "string"}, "text": {"type": "string"},
        "html": {"type": "string", "description": "sanitised by allow-list"},
        "delivery_state": {"type": "string"},
        "attachments": {"type": "array", "items": _ref("Attachment")}}},
    "TicketBrief": {"type": "object", "properties": {
        "id": {"type": "integer"}, "number": {"type": "integer"}, "subject": {"type": "string"},
        "status": {"enum": ["new", "open", "pending", "on_hold", "solved", "closed"]},
        "priority": {"type": "string"}, "channel": {"type": "string"},
        "customer_id": {"type": "integer"}, "assignee_id": {"type": ["integer", "null"]},
        "sender_unverified": {"type": "boolean", "description": "opened by mail that named "
                              "another ticket without proving its sender (the From may be "
                              "forged)"},
        "claimed_ticket_number": {"type": ["integer", "null"],
                                  "description": "the ticket that mail named"}}},
    "Ticket": {"allOf": [_ref("TicketBrief"), {"type": "object", "properties": {
        "customer": _ref("CustomerBrief"),
        "messages": {"type": "array", "items": _ref("Message")}}}]},
    "IntakeResult": {"type": "object", "properties": {
        "status": {"enum": ["created", "appended", "duplicate", "failed"]},
        "ticket": {"type": ["integer", "null"]}, "customer": {"type": ["integer", "null"]},
        "raw_id": {"type": "integer"}}},
}


def openapi_spec() -> dict[str, Any]:
    """Return the API description, with the capability packages' paths merged in."""
    from contactcenter.api import package_apis

    spec = _core_spec()
    for module in package_apis():
        spec["paths"].update(module.OPENAPI_PATHS)
        spec["components"]["schemas"].update(module.OPENAPI_SCHEMAS)
    return spec


def _core_spec() -> dict[str, Any]:
    ticket_list = {"type": "object", "properties": {
        "total": {"type": "integer"}, "items": {"type": "array", "items": _ref("TicketBrief")}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Contact center API", "version": __version__,
                 "description": "Tickets, messages and customers. Authenticate with "
                                "`Authorization: Bearer <token>` (see `contactcenter token "
                                "create`). Financial fields are null unless the caller holds "
                                "the financial permission; each unmasked view is audited."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": dict(SCHEMAS)},
        "paths": {
            "/me": {"get": _op("The caller", _json({"type": "object"}))},
            "/tickets": {"get": _op("Tickets the caller may see, newest activity first",
                                    _json(ticket_list), params=[
                                        _query("status", {"type": "string"}),
                                        _query("customer_id", {"type": "integer"}),
                                        _query("limit", {"type": "integer", "minimum": 1,
                                                         "maximum": 200}),
                                        _query("offset", {"type": "integer", "minimum": 0})])},
            "/tickets/{number}": {
                "get": _op("A ticket with its customer and messages", _json(_ref("Ticket")),
                           params=[_path_int("number")]),
                "patch": _op("Change status or assignee", _json(_ref("TicketBrief")),
                             params=[_path_int("number")], body={"type": "object", "properties": {
                                 "status": {"type": "string"},
                                 "assignee_id": {"type": ["integer", "null"]}}}),
            },
            "/tickets/{number}/messages": {
                "get": _op("A ticket's messages", _json({"type": "object"}),
                           params=[_path_int("number")]),
                "post": _op("Reply (delivered through the outbox) or add an internal note",
                            _json(_ref("Message"), "Created"), params=[_path_int("number")],
                            status="201", body={"type": "object", "properties": {
                                "text": {"type": "string", "maxLength": 100000},
                                "html": {"type": "string"}, "internal": {"type": "boolean"}}}),
            },
            "/customers": {"get": _op("Find customers by name, email, phone or external id",
                                      _json({"type": "object"}),
                                      params=[_query("q", {"type": "string"}, True)])},
            "/customers/{customer_id}": {
                "get": _op("A customer with purchases and contracts (masked by role)",
                           _json(_ref("Customer")), params=[_path_int("customer_id")]),
                "patch": _op("Change a customer's display name or language (audited)",
                             _json(_ref("CustomerBrief")), params=[_path_int("customer_id")],
                             body=_ref("CustomerChange"))},
            "/customers/{customer_id}/identities": {"post": _conflicts(_op(
                "Add an email, phone or chat id to a customer (audited)",
                _json(_ref("IdentityAdded"), "Created"), params=[_path_int("customer_id")],
                body=_ref("IdentityNew"), status="201"),
                {"200": _json(_ref("IdentityAdded"), "The customer already had it")})},
            "/customers/{customer_id}/identities/{identity_id}": {"delete": _conflicts(_op(
                "Remove an address from a customer (not its last one; audited)",
                _json({"type": "object", "properties": {"customer": _ref("CustomerBrief")}}),
                params=[_path_int("customer_id"), _path_int("identity_id")]))},
            "/customers/{customer_id}/merge": {"post": _op(
                "Merge another customer into this one", _json({"type": "object"}, "Created"),
                params=[_path_int("customer_id")], status="201",
                body={"type": "object", "required": ["merged_id"],
                      "properties": {"merged_id": {"type": "integer"}}})},
            "/merges/{merge_id}/undo": {"post": _op("Undo a merge", _json({"type": "object"}),
                                                    params=[_path_int("merge_id")])},
            "/search": {"get": _op("Search tickets and customers by number, name, email, phone",
                                   _json({"type": "object"}),
                                   params=[_query("q", {"type": "string"}, True)])},
            "/contacts": {"post": _op("Submit a contact through the API channel",
                                      _json(_ref("IntakeResult"), "Created"), status="201",
                                      body={"type": "object", "required": ["external_id", "from"]})},
            "/raw": {"get": _op("Raw payloads by state (failed intake queue)",
                                _json({"type": "object"}),
                                params=[_query("state", {"type": "string"})])},
            "/raw/{raw_id}/replay": {"post": _op("Process a stored raw payload again",
                                                 _json({"type": "object"}),
                                                 params=[_path_int("raw_id")])},
            "/attachments/{attachment_id}": {"get": {
                "summary": "Download an attachment (always as a file, never inline)",
                "parameters": [_path_int("attachment_id")],
                "responses": {"200": {"description": "The file",
                                      "content": {"application/octet-stream": {}}},
                              **ERRORS}}},
            "/attachments/{attachment_id}/preview": {"get": {
                "summary": "An image attachment's PNG thumbnail (authorised as the download; "
                           "404 when there is none)",
                "parameters": [_path_int("attachment_id")],
                "responses": {"200": {"description": "The thumbnail",
                                      "content": {"image/png": {}}},
                              **ERRORS}}},
            "/openapi.json": {"get": {"summary": "This description", "security": [],
                                      "responses": {"200": {"description": "OK"}}}},
        },
    }
