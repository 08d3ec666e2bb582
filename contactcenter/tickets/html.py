"""Sanitise customer HTML by allow-list before anyone's browser renders it."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TypeGuard

import nh3

URL_SCHEMES = {"http", "https", "mailto", "tel"}
MAX_HTML_CHARS = 2_000_000
REMOTE_SRC_ATTR = "data-remote-src"

_ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
_ATTRIBUTES.setdefault("img", set()).add(REMOTE_SRC_ATTR)
# An absolute http(s) URL or a scheme-relative one ("//host/x", "\\host\x" to a browser).
_REMOTE_URL_RE = re.compile(r"(?:https?:)?[/\\]{2}[^/\\]", re.IGNORECASE)
# nh3's serialiser writes every attribute as name="value" with '"' escaped, so an <img>
# tag of its output is matched exactly by this (no backtracking: the parts are disjoint).
_IMG_TAG_RE = re.compile(r'<img((?:\s[^\s"\'>/=]+(?:="[^"]*")?)*)\s*/?>')
_SRC_ATTR_RE = re.compile(r'(\s)src="')


class SanitisedHtml(str):
    """HTML that ``sanitise_html`` returned: intake stores it as it is instead of cleaning it again.

    Only this module makes one (the email parser sanitises with this same policy, so
    its HTML arrives typed). Any change to the string (slicing, concatenation, a JSON
    round trip) gives a plain ``str`` again, which intake sanitises: the type cannot
    outlive the value it vouches for.
    """

    __slots__ = ()


def is_sanitised(html: str) -> TypeGuard[SanitisedHtml]:
    """Whether ``html`` came from ``sanitise_html`` unchanged (its type says so)."""
    return type(html) is SanitisedHtml


def _is_remote(url: str) -> bool:
    return _REMOTE_URL_RE.match(url.strip()) is not None


def _keep_remote_src(tag: str, attr: str, value: str) -> str | None:
    """First pass: an image keeps only a remote ``src`` (to be renamed); others drop."""
    if tag == "img" and attr in ("src", REMOTE_SRC_ATTR):
        return value if _is_remote(value) else None
    return value


def _no_img_src(tag: str, attr: str, value: str) -> str | None:
    """Second pass: no image keeps any ``src`` at all (the safety net of the rename)."""
    if tag == "img" and attr == "src":
        return None
    if tag == "img" and attr == REMOTE_SRC_ATTR:
        return value if _is_remote(value) else None
    return value


def _rename_img_src(match: re.Match[str]) -> str:
    return "<img" + _SRC_ATTR_RE.sub(r"\1" + REMOTE_SRC_ATTR + '="', match.group(1)) + ">"


def _clean(html: str, attribute_filter: Callable[[str, str, str], str | None]) -> str:
    return nh3.clean(
        html,
        attributes=_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=attribute_filter,
    )


def sanitise_html(html: str) -> SanitisedHtml:
    """Return HTML with only safe tags and attributes, links limited to http(s), mailto, tel.

    nh3 (ammonia) drops scripts, event handlers, forms, iframes, ``<base>`` and
    ``<meta>``, ``<link>``, ``<style>`` and every ``style`` attribute (so no remote
    ``url()``), SVG and MathML, and every URL with another scheme. Links get
    ``rel="noopener noreferrer nofollow"`` so the agent's page cannot be reached back.

    No image is fetched when the result is rendered, even outside our CSP: a remote
    ``<img src>`` (a tracking pixel would leak the agent's address and read time) is
    kept only as ``data-remote-src``, which a browser never loads; any other image
    source (relative, ``cid:``, ``data:``) is dropped.
    """
    if not html:
        return SanitisedHtml("")
    if is_sanitised(html):
        return html  # cleaned by this function already
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
    cleaned = _clean(html, _keep_remote_src)
    if "<img" not in cleaned:
        return SanitisedHtml(cleaned)
    renamed = _IMG_TAG_RE.sub(_rename_img_src, cleaned)
    return SanitisedHtml(_clean(renamed, _no_img_src))
