"""app.markup: Markdown renders as expected, and no executable HTML survives hostile input."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from markupsafe import Markup

from app.errors import Invalid
from app.markup import (
    MAX_BRACKETS,
    MAX_FIELD_CHARS,
    check_length,
    plain_text,
    render_inline,
    render_markdown,
)

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "sup", "sub",
}
ALLOWED_ATTRS = {"a": {"href", "title", "rel"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


class Collector(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_decl(self, decl: str) -> None:
        self.other.append(decl)

    def handle_pi(self, data: str) -> None:
        self.other.append(data)

    def unknown_decl(self, data: str) -> None:
        self.other.append(data)


def parse(html: str) -> Collector:
    c = Collector()
    c.feed(html)
    c.close()
    return c


def assert_inert(html: str) -> None:
    """No tag, attribute or URL scheme outside the allow-list; no comments, CDATA, PIs."""
    c = parse(html)
    assert not c.comments and not c.other, html
    for tag, attrs in c.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            assert name in ALLOWED_ATTRS.get(tag, set()), (tag, name, html)
            if name == "href":
                assert value is not None
                # what a browser would resolve: strip controls and whitespace first
                squashed = "".join(ch for ch in value if ch > " " and ch != "\x7f")
                scheme = urlsplit(squashed).scheme.lower()
                assert scheme in {"", "http", "https", "mailto"}, (value, html)
        if tag == "a":
            assert attrs.get("rel") == "noopener noreferrer", html


HOSTILE = [
    # OWASP XSS filter evasion classics
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<a onmouseover=\"alert(document.cookie)\">xxs link</a>",
    "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099\">",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;>",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    "<SCRIPT/XSS SRC=\"http://xss.rocks/xss.js\"></SCRIPT>",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
    "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
    "<SCRIPT SRC=//xss.rocks/.j>",
    "<IMG SRC=\"`<javascript:alert>`('XSS')\"",
    "</TITLE><SCRIPT>alert(\"XSS\");</SCRIPT>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<svg/onload=alert('XSS')>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=20 y=20>XSS</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
    "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\"><TD onclick=alert(1)>x</TD></TABLE>",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "<DIV STYLE=\"width: expression(alert('XSS'));\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"http://xss.rocks/scriptlet.html\"></OBJECT>",
    "<EMBED SRC=\"data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH\""
    " AllowScriptAccess=\"always\"></EMBED>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<details open ontoggle=alert(1)>",
    "<base href=\"javascript:alert('XSS');//\">",
    "<!--[if gte IE 4]><SCRIPT>alert('XSS');</SCRIPT><![endif]-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<!-- <script>alert(1)</script> -->",
    "<? echo('<SCR)'; echo('IPT>alert(\"XSS\")</SCRIPT>'); ?>",
    "<p style=\"color:red\" class=x id=y>styled</p>",
    "<a href=\"http://ok\" target=_blank onclick=\"alert(1)\">ok</a>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<textarea><script>alert(1)</script></textarea>",
    "\"><script>alert(1)</script>",
    "'';!--\"<XSS>=&{()}",
    # Markdown link and image syntax
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;avascript&#x3A;alert(1))",
    "[click](jav&#x09;ascript:alert(1))",
    "[click](%6Aavascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](javascript:alert(1) \"title\")",
    "[click](<javascript:alert(1)>)",
    "[click](http://ok \"t\" onclick=alert(1))",
    "[click][r]\n\n[r]: javascript:alert(1)",
    "[click][r]\n\n[r]: data:text/html,x",
    "![x](javascript:alert(1))",
    "![x\" onerror=\"alert(1)](http://x/y.png)",
    "![x](x\" onerror=\"alert(1))",
    "![svg](data:image/svg+xml,<svg onload=alert(1)>)",
    "[![x](javascript:alert(1))](javascript:alert(2))",
    "<javascript:alert(1)>",
    "<http://x.y/\"onmouseover=\"alert(1)>",
    "<mailto:a@b.c?body=<script>>",
    "<a@b.c\"onmouseover=alert(1)>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "    <script>alert(1)</script>",
    "> <script>alert(1)</script>\n> - <img src=x onerror=alert(1)>",
    "- *<b onclick=alert(1)>x</b>*\n  - **<svg onload=alert(1)>**",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=x onerror=alert(1)> |",
    "# <script>alert(1)</script>\n\nSetext\n===",
    "x^<script>alert(1)</script>^ y~<b>~",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "\x00<script>alert(1)</script>",
    "<a href=\"&#1;javascript:alert(1)\">x</a>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_renders_inert(text: str) -> None:
    out = render_markdown(text)
    assert isinstance(out, Markup)
    assert_inert(str(out))
    assert_inert(str(render_inline(text)))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_plain_text_is_text(text: str) -> None:
    assert isinstance(plain_text(text), str)


def test_raw_html_is_shown_as_text() -> None:
    out = str(render_markdown("a <b>bold</b> <script>x()</script> b"))
    c = parse(out)
    assert [t for t, _ in c.tags] == ["p"]
    assert "&lt;script&gt;" in out


def test_markdown_renders() -> None:
    text = (
        "# Heading\n\n## Sub\n\n### Deeper\n\n#### Deepest\n\n"
        "**bold** *it* `code` mm^2^ SpO~2~\n\n"
        "- one\n- two\n\n3. three\n4. four\n\n"
        "> quoted\n\n---\n\n"
        "| Sign | Meaning |\n|:---|---:|\n| Deep sulcus | pneumothorax |\n\n"
        "```\nHU = slope * SV + intercept\n```\n\n"
        "[Radiopaedia](https://radiopaedia.org) [rel](/cases/x) <https://example.org> "
        "[mail](mailto:educator@example.org)\n\n"
        "![Figure](https://example.org/fig.png)"
    )
    c = parse(str(render_markdown(text)))
    tags = [t for t, _ in c.tags]
    for tag in ("h3", "h4", "h5", "h6", "strong", "em", "code", "sup", "sub", "ul", "ol",
                "li", "blockquote", "hr", "table", "thead", "tbody", "th", "td", "pre"):
        assert tag in tags, tag
    assert "h1" not in tags and "h2" not in tags and "img" not in tags
    hrefs = [a["href"] for t, a in c.tags if t == "a"]
    assert hrefs == [
        "https://radiopaedia.org", "/cases/x", "https://example.org",
        "mailto:educator@example.org", "https://example.org/fig.png",
    ]
    assert ("ol", {"start": "3"}) in c.tags
    assert ("th", {"align": "left"}) in c.tags


def test_render_inline_is_one_line_of_inline_markup() -> None:
    assert str(render_inline("Tension *pneumothorax*")) == "Tension <em>pneumothorax</em>"
    assert str(render_inline("1984. A year")) == "1984. A year"
    assert str(render_inline("# 1\nsecond line")) == "# 1 second line"
    assert str(render_inline("[link](https://x.org)")) == "link"
    assert str(render_inline(None)) == ""


def test_plain_text_strips_markup_and_keeps_words() -> None:
    text = "# Findings\n\nA **hyperdense** crescent &amp; <shift>.\n\n- left\n- right"
    assert plain_text(text) == "Findings\nA hyperdense crescent & <shift>.\nleft\nright"
    assert plain_text("") == ""


def test_check_length() -> None:
    assert check_length("ok", "History") == "ok"
    assert check_length(None, "History") == ""
    with pytest.raises(Invalid, match=r"History is too long: 20,001 characters, the limit is 20,000"
                       ):
        check_length("x" * (MAX_FIELD_CHARS + 1), "History")


def test_render_never_raises_on_odd_values() -> None:
    for value in (None, 42, b"bytes", "", "   ", "\r\n\r\n", "\x00"):
        assert isinstance(render_markdown(value), Markup)


def test_overlong_text_is_truncated_visibly() -> None:
    out = str(render_markdown("word " * 10_000))
    assert len(out) < MAX_FIELD_CHARS + 100
    assert out.rstrip().endswith("[\u2026]</p>")


PATHOLOGICAL = {
    "blockquote nesting": ">" * MAX_FIELD_CHARS,
    "spaced blockquotes": "> " * (MAX_FIELD_CHARS // 2),
    "list nesting": "\n".join("    " * i + "- x" for i in range(150)),
    "emphasis": "*a **a " * (MAX_FIELD_CHARS // 7),
    "emphasis runs": "*" * 10_000 + "a" + "*" * 10_000,
    "open brackets": "[" * MAX_FIELD_CHARS,
    "brackets just under the cap": "[" * (MAX_BRACKETS - 1),
    "link starts": "[a](" * (MAX_FIELD_CHARS // 4),
    "image starts": "![" * (MAX_FIELD_CHARS // 2),
    "balanced brackets": "[" * 10_000 + "]" * 10_000,
    "angle brackets": "<a " * (MAX_FIELD_CHARS // 3),
    "backticks": "`a" * (MAX_FIELD_CHARS // 2),
    "fences": "```\n" * (MAX_FIELD_CHARS // 4),
    "table pipes": "|a|\n|-|\n" + "|x" * 10_000,
    "entities": "&#" * (MAX_FIELD_CHARS // 2),
    "mixed markers": "> - * 1. " * (MAX_FIELD_CHARS // 9),
    "far too long": "x" * 1_000_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_returns(text: str) -> None:
    """Bounded: measured under 0.5 s each (see app/markup.py); here only that it returns."""
    out = render_markdown(text)
    assert_inert(str(out))
    assert len(str(out)) < 40 * MAX_FIELD_CHARS


def test_bracket_flood_still_shows_brackets() -> None:
    out = str(render_markdown("[" * (MAX_BRACKETS + 1) + "a](http://x)"))
    assert "<a" not in out
    assert "[[[" in out
