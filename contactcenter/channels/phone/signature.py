"""Validate ``X-Twilio-Signature`` exactly as Twilio computes it.

Twilio signs the full URL it requested (scheme, host, port, path and the query
string as sent) followed by the POST parameters sorted by name, with HMAC-SHA1
of the account's Auth Token (or HMAC-SHA256 when the request says so in
``X-Twilio-Webhooks-Signature-Settings``). Behind a TLS-terminating proxy the
URL the app sees is not the one Twilio requested, so the URL is rebuilt from
``CONTACTCENTER_PUBLIC_URL`` plus the request's path and raw query. The
library's ``RequestValidator`` tries the URL with and without the default port
(Twilio is inconsistent about it). JSON bodies are not form-signed: Twilio adds
``bodySHA256`` to the query and signs the URL; the raw body must hash to it.
A missing token, signature or hash is a refusal, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm

MAX_SIGNATURE = 200


def public_request_url(public_url: str, script_root: str, path: str, query: str) -> str:
    """Return the URL Twilio requested: the public base, the path and the raw query string.

    A public URL with a path prefix (``https://host/cc``) is not doubled when the
    app also sees that prefix as its script root.
    """
    base = public_url.rstrip("/")
    base_path = urlsplit(base).path
    full_path = (script_root or "") + path
    if base_path and (full_path == base_path or full_path.startswith(base_path + "/")):
        full_path = full_path[len(base_path):]
    url = base + full_path
    return f"{url}?{query}" if query else url


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    """Return the validator of an Auth Token (built once, not per webhook)."""
    return RequestValidator(token)


def is_valid_request(token: str, url: str, method: str, form: Mapping[str, Any] | None,
                     body: bytes, content_type: str, signature: str,
                     settings_header: str = "") -> bool:
    """Whether a webhook's signature is Twilio's for this URL and body.

    ``form`` is the parsed POST form (a MultiDict keeps repeated parameters);
    GET requests are signed over the URL alone.
    """
    if not token or not signature or len(signature) > MAX_SIGNATURE:
        return False
    validator = _validator(token)
    algorithm = get_signature_algorithm(settings_header)
    query = parse_qs(urlsplit(url).query)
    params: Any
    if method.upper() == "GET":
        params = {}
    elif "bodySHA256" in query:
        try:
            params = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    elif content_type.split(";")[0].strip().lower() == "application/json":
        # A JSON body without its hash in the signed URL would be unprotected.
        return False
    else:
        params = form or {}
    try:
        return bool(validator.validate(url, params, signature, algorithm))
    except ValueError:
        return False
