"""Sanitise customer HTML by allow-list before anyone's browser renders it."""

from __future__ import annotations

import nh3

URL_SCHEMES = {"http", "https", "mailto", "tel"}
MAX_HTML_CHARS = 2_000_000


def sanitise_html(html: str) -> str:
    """Return HTML with only safe tags and attributes, links limited to http(s), mailto, tel.

    nh3 (ammonia) drops scripts, event handlers, forms, iframes, ``<base>`` and
    ``<meta>``, SVG and MathML, and every URL with another scheme. Links get
    ``rel="noopener noreferrer nofollow"`` so the agent's page cannot be reached back.
    """
    if not html:
        return ""
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
    return nh3.clean(
        html,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
