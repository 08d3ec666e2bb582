"""Render article Markdown to safe HTML, extract plain text and guess a text's language.

Article bodies are Markdown written by editors, but an editor's account can be
stolen and an imported file can carry anything, so the rendered HTML goes
through nh3 with an allow-list (no scripts, no event handlers, no ``javascript:``
links, no inline styles, which the CSP would refuse anyway). Raw HTML inside the
Markdown is not rendered at all (markdown-it's ``html`` option is off).
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

MAX_BODY_CHARS = 200_000

_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre",
         "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
         "s", "del"}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
               "th": {"align"}, "td": {"align"}}
_URL_SCHEMES = {"http", "https", "mailto", "tel"}

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")
_MARKUP = re.compile(r"[`*_#>\[\]()!|~-]+")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table") \
        .enable("strikethrough")


def render_markdown(body: str) -> str:
    """Return the sanitised HTML of an article body written in Markdown."""
    html = _markdown().render(body[:MAX_BODY_CHARS])
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def plain_text(body: str) -> str:
    """Return an article body without Markdown markup, for indexing and snippets."""
    text = _MARKUP.sub(" ", body[:MAX_BODY_CHARS])
    return _SPACES.sub(" ", text).strip()


def detect_language(text: str, default: str = "en") -> str:
    """Guess ``ru`` or ``en`` from the share of Cyrillic letters (enough for our two languages)."""
    sample = text[:2000]
    cyrillic = len(_CYRILLIC.findall(sample))
    latin = len(_LATIN.findall(sample))
    if cyrillic == 0 and latin == 0:
        return default
    return "ru" if cyrillic >= latin else "en"
