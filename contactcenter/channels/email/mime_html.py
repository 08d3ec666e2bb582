"""Render customer HTML as readable plain text, and count its links.

A linear scanner (no HTML tree, no regex that can backtrack over the document): block
elements become line breaks, list items get a dash, table cells a tab, blockquotes a
``> `` prefix per level, and script, style and head content is dropped. With
``mark_quotes`` the known containers of quoted history (Gmail's ``gmail_quote``,
Thunderbird's ``moz-cite-prefix``, Outlook's ``divRplyFwdMsg``, Yahoo's
``yahoo_quoted``) are marked with a ``QUOTE_MARK`` line, which ``quoting`` uses to
split the history off and then removes.
"""

from __future__ import annotations

import re
from html import unescape

QUOTE_MARK = "\ue000"
SKIP_CONTENT = frozenset({"script", "style", "head", "title", "template", "noscript", "xml",
                          "svg", "math", "object", "iframe", "select", "textarea"})
BLOCK = frozenset({"p", "div", "table", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6",
                   "section", "article", "header", "footer", "address", "center", "form",
                   "fieldset", "nav", "aside", "main", "figure", "dt", "dd", "tbody", "thead",
                   "tfoot", "caption", "body", "html"})
QUOTE_CONTAINERS = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "divrplyfwdmsg",
                    "appendonsend", "outlookmessageheader", "zmail_extra", "protonmail_quote")
TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,30})([^>]*)>")
ATTR_RE = re.compile(r"""\b(class|id|type)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
SPACE_RE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
LINK_RE = re.compile(r"<a[\s>]", re.IGNORECASE)
BLANK_RUN_RE = re.compile(r"\n{3,}")


def count_links(html: str) -> int:
    """Return how many ``<a>`` elements the HTML has."""
    return len(LINK_RE.findall(html))


class _Lines:
    """Accumulate rendered lines with their blockquote depth."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.depth = 0
        self.line_depth = 0

    def add(self, text: str, keep_space: bool = False) -> None:
        if not self.current:
            text = text if keep_space else text.lstrip(" ")
            if not text:
                return
            self.line_depth = self.depth
        self.current.append(text)

    def newline(self) -> None:
        line = "".join(self.current).rstrip()
        self.current = []
        if line:
            self.lines.append("> " * self.line_depth + line)

    def paragraph(self) -> None:
        self.newline()
        if self.lines and self.lines[-1].strip("> "):
            self.lines.append(("> " * self.depth).rstrip())

    def mark(self) -> None:
        self.newline()
        self.lines.append(QUOTE_MARK)

    def text(self) -> str:
        self.newline()
        return BLANK_RUN_RE.sub("\n\n", "\n".join(self.lines)).strip("\n")


def _is_quote_container(name: str, attrs: str) -> bool:
    if name == "blockquote" or "=" not in attrs:
        return False
    for _key, value in ATTR_RE.findall(attrs):
        value = value.strip("\"'").lower()
        if any(marker in value for marker in QUOTE_CONTAINERS):
            return True
    return False


def html_to_text(html: str, *, mark_quotes: bool = False) -> str:
    """Return a plain-text rendering of HTML (see the module docstring)."""
    out = _Lines()
    lower = html.lower()
    last_gt = html.rfind(">")
    pos, end, pre = 0, len(html), 0
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0 or lt > last_gt:
            _add_text(out, html[pos:], pre)
            break
        if lt > pos:
            _add_text(out, html[pos:lt], pre)
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            pos = end if close < 0 else close + 3
            continue
        match = TAG_RE.match(html, lt)
        if match is None:
            if html.startswith("<!", lt) or html.startswith("<?", lt):
                close = html.find(">", lt)
                pos = end if close < 0 else close + 1
            else:
                _add_text(out, "<", pre)
                pos = lt + 1
            continue
        pos = match.end()
        closing, name, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if name in SKIP_CONTENT and not closing and not attrs.rstrip().endswith("/"):
            close = lower.find("</" + name, pos)
            pos = end if close < 0 else close
            continue
        _handle_tag(out, name, closing, attrs, mark_quotes)
        if name == "pre":
            pre = max(0, pre - 1) if closing else pre + 1
    return out.text()


def _add_text(out: _Lines, raw: str, pre: int) -> None:
    text = unescape(raw) if "&" in raw else raw
    if pre:
        first, *rest = text.replace("\r", "").split("\n")
        out.add(first, keep_space=True)
        for line in rest:
            out.newline()
            out.add(line, keep_space=True)
        return
    text = SPACE_RE.sub(" ", text)
    if text.strip():
        out.add(text)
    elif out.current:
        out.add(" ")


def _handle_tag(out: _Lines, name: str, closing: bool, attrs: str, mark_quotes: bool) -> None:
    if name == "br":
        out.newline()
    elif name == "blockquote":
        if closing:
            out.newline()
            out.depth = max(0, out.depth - 1)
            out.paragraph()
        else:
            out.paragraph()
            out.depth += 1
    elif name in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"):
        out.paragraph()
    elif name == "li" and not closing:
        out.newline()
        out.add("- ")
    elif name in ("tr", "li", "pre", "dt", "dd"):
        out.newline()
    elif name in ("td", "th") and not closing:
        if out.current:
            out.add("\t")
    elif name == "hr":
        out.newline()
        out.lines.append("> " * out.depth + "-" * 20)
    elif name in BLOCK:
        if mark_quotes and not closing and _is_quote_container(name, attrs):
            out.mark()
        else:
            out.newline()
    elif mark_quotes and not closing and name == "span" and _is_quote_container(name, attrs):
        out.mark()
