"""Markdown -> sanitized HTML: the only place Teachfile makes HTML from user text.

Two layers, each sufficient on its own for the common attacks:

1. Python-Markdown runs with raw HTML switched off (the ``html_block``
   preprocessor and the ``html`` inline pattern are removed), so ``<script>`` that
   an author types is shown as text, not passed through.
2. nh3 (ammonia) then keeps only a tight allow-list of tags and attributes, link
   schemes ``http``, ``https``, ``mailto`` and relative URLs, and adds
   ``rel="noopener noreferrer"`` to every link. Whatever the first layer lets
   through by mistake (an extension's bug, an entity trick) stops here.

Headings: a case page already uses ``<h1>`` (the title) and ``<h2>`` (the fixed
sections), so author headings are shifted down two levels: ``#`` -> ``<h3>``,
``##`` -> ``<h4>``, ``###`` -> ``<h5>``, deeper -> ``<h6>``. Images are not
allowed in user text (images belong in the DICOM viewer); ``![alt](url)`` becomes
a plain link to the URL. ``^sup^`` and ``~sub~`` give superscript and subscript
(mm^2^, SpO~2~).

Limits (DESIGN.md: every parser of outside input is bounded):

* :func:`check_length` refuses a field longer than :data:`MAX_FIELD_CHARS`; the
  services call it before storing. :func:`render_markdown` never raises: it
  truncates longer text itself.
* Python-Markdown's link pattern is quadratic in the number of ``[`` in one
  block (measured on this stack: 20,000 ``[`` in one paragraph took 41 s, 4,000
  took 1.8 s, 1,000 took 0.12 s). Above :data:`MAX_BRACKETS` in one text, every
  ``[`` is rendered as a literal bracket (no links). With that, the worst of ~35
  adversarial 20,000-character inputs we tried (bracket, emphasis, backtick,
  table, entity, autolink and nesting floods) renders in under 0.5 s.
* Deep nesting (1,000 ``>`` or 100 indented list levels) measured under 0.05 s,
  and 20,000 characters of emphasis, backticks or ``<`` under 0.03 s, so they
  need no cap beyond the length limit.
"""

from __future__ import annotations

import html
import re
import threading
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Final

import markdown
import nh3
from markdown.inlinepatterns import SimpleTagInlineProcessor
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

from app.errors import Invalid

__all__ = [
    "MAX_BRACKETS",
    "MAX_FIELD_CHARS",
    "MAX_INLINE_CHARS",
    "check_length",
    "plain_text",
    "render_inline",
    "render_markdown",
]

#: Longest Markdown field a service accepts (a long discussion is ~8,000 characters).
MAX_FIELD_CHARS: Final = 20_000
#: Longest one-line field (a title).
MAX_INLINE_CHARS: Final = 300
#: Above this many ``[`` in one text, brackets are literal (see the module docstring).
MAX_BRACKETS: Final = 1_000

_TRUNCATED: Final = " [\u2026]"

_BLOCK_TAGS: Final = frozenset({
    "p", "br", "pre", "blockquote", "ul", "ol", "li", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "hr",
})
_INLINE_TAGS: Final = frozenset({"strong", "em", "code", "sup", "sub"})
_TAGS: Final = _BLOCK_TAGS | _INLINE_TAGS | {"a"}
_ALIGN: Final = {"align": {"left", "center", "right"}}
_URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_HEADING_SHIFT: Final = {"h1": "h3", "h2": "h4", "h3": "h5", "h4": "h6", "h5": "h6", "h6": "h6"}


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """Keep only well-formed values of the few attributes the allow-list has."""
    if attr == "start":
        return value if value.isdigit() and len(value) <= 6 else None
    if attr == "title":
        return value[:200]
    if attr == "href":
        # ammonia checks the scheme as a URL parser reads it; also refuse a value that
        # spells a forbidden scheme once whitespace and controls are squeezed out
        # ("java    script:" from a Markdown tab), whatever a lenient client makes of it
        squashed = "".join(ch for ch in value if ch > " " and ch != "\x7f")
        m = _SCHEME.match(squashed)
        if m and m.group(1).lower() not in _URL_SCHEMES:
            return None
    return value


def _clean(html: str, tags: frozenset[str]) -> str:
    return nh3.clean(
        html,
        tags=set(tags),
        clean_content_tags={"script", "style"},
        attributes={"a": {"href", "title"}, "ol": {"start"}} if "a" in tags else {},
        tag_attribute_values={"th": _ALIGN, "td": _ALIGN} if "th" in tags else {},
        attribute_filter=_attribute_filter,
        url_schemes=set(_URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


class _Teachfile(Treeprocessor):  # type: ignore[misc]  # markdown is untyped
    """Shift headings down two levels; turn images into links to their URL."""

    def run(self, root: ET.Element) -> None:
        for el in root.iter():
            if el.tag in _HEADING_SHIFT:
                el.tag = _HEADING_SHIFT[el.tag]
            elif el.tag == "img":
                src, alt = el.get("src", ""), el.get("alt", "") or el.get("src", "")
                el.attrib.clear()
                el.tag = "a"
                el.set("href", src)
                el.text = alt


class _Extension(markdown.Extension):  # type: ignore[misc]
    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # raw HTML is shown as text, never passed through (layer 1)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.inlinePatterns.register(SimpleTagInlineProcessor(r"(\^)([^\^\s]{1,50})\^", "sup"),
                                   "teachfile_sup", 65)
        md.inlinePatterns.register(SimpleTagInlineProcessor(r"(~)([^~\s]{1,50})~", "sub"),
                                   "teachfile_sub", 64)
        md.treeprocessors.register(_Teachfile(md), "teachfile", 0)


_local = threading.local()


def _converter() -> markdown.Markdown:
    """One Markdown instance per thread (instances keep state between calls)."""
    md: markdown.Markdown | None = getattr(_local, "md", None)
    if md is None:
        md = markdown.Markdown(
            extensions=["tables", "sane_lists", "fenced_code", _Extension()],
            extension_configs={"tables": {"use_align_attribute": True}},
            output_format="html",
        )
        _local.md = md
    return md


def _prepare(text: object, limit: int) -> str:
    """Coerce to str, normalise newlines, drop NULs, truncate, and defuse bracket floods."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    s = s.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    if len(s) > limit:
        s = s[:limit] + _TRUNCATED
    if s.count("[") > MAX_BRACKETS:
        s = s.replace("[", "&#91;")
    return s


def _to_html(s: str) -> str:
    md = _converter()
    try:
        return str(md.reset().convert(s))
    except RecursionError:
        # not reached by any input we measured; never let a parser take the request down
        return "<p>" + html.escape(s) + "</p>"


def check_length(text: str | None, field: str, limit: int = MAX_FIELD_CHARS) -> str:
    """Return ``text`` (``""`` for None), or raise :class:`Invalid` if it is longer than ``limit``.

    Services call this for every Markdown field before storing it, so an author
    learns about the limit instead of seeing a silently truncated page.
    """
    s = text or ""
    if len(s) > limit:
        raise Invalid(
            f"{field} is too long: {len(s):,} characters, the limit is {limit:,}."
        )
    return s


def render_markdown(text: object) -> Markup:
    """Render Markdown to sanitized HTML, safe on any input (never raises on content).

    Text longer than :data:`MAX_FIELD_CHARS` is truncated with a visible marker.
    """
    s = _prepare(text, MAX_FIELD_CHARS)
    if not s.strip():
        return Markup("")
    return Markup(_clean(_to_html(s), _TAGS))  # noqa: S704 (nh3 output is the safe HTML)


_BLOCK_START = re.compile(r"^(\s*)([#>*+\-]|\d+)([.)]?)")


def _escape_block_start(m: re.Match[str]) -> str:
    lead, mark, dot = m.groups()
    if mark.isdigit():
        return lead + mark + ("\\" + dot if dot else "")
    return lead + "\\" + mark + dot


def render_inline(text: object) -> Markup:
    """Render a one-line field (a title): emphasis, code, sup/sub; no blocks, no links."""
    s = " ".join(_prepare(text, MAX_INLINE_CHARS).split())
    if not s:
        return Markup("")
    # "1984. A year" or "# 1" must stay text, not become a list or a heading
    s = _BLOCK_START.sub(_escape_block_start, s, count=1)
    return Markup(_clean(_to_html(s), _INLINE_TAGS))  # noqa: S704 (nh3 output)


class _TextExtractor(HTMLParser):
    """Collect the text of sanitized HTML, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(text: object) -> str:
    """The words of a Markdown text without markup, for search indexing and identifier scans.

    Goes through the same rendering as the page, so what is indexed is what is shown.
    """
    rendered = str(render_markdown(text))
    if not rendered:
        return ""
    parser = _TextExtractor()
    parser.feed(rendered)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
