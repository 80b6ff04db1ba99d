"""A minimal PDF 1.4 writer: one A4 page of centred Helvetica lines (certificates).

Hand-written rather than a dependency: a certificate needs a few lines of text, and the
format for that is small (ISO 32000-1, 7.5 file structure; 9.6.2.2 standard Type 1 fonts
with WinAnsiEncoding, so Latin-1 names with accents print; other characters become "?").
"""

from __future__ import annotations

# Helvetica advance widths (per 1000 em) for printable ASCII, from the standard AFM, to
# centre lines; other characters use an average width.
_WIDTHS = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 "
    "556 556 556 556 278 278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 "
    "556 833 722 778 667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 333 556 "
    "556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 278 556 500 722 "
    "500 500 500 334 260 334 584"
)
_ADVANCE = {chr(32 + i): int(w) for i, w in enumerate(_WIDTHS.split())}

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points


def _encode(text: str) -> bytes:
    return text.encode("cp1252", errors="replace")


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _width(text: str, size: int) -> float:
    return sum(_ADVANCE.get(ch, 556) for ch in text) * size / 1000


def _wrap(text: str, size: int, limit: float) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if _width(candidate, size) <= limit or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


def simple_pdf(lines: list[tuple[int, str]], *, title: str = "") -> bytes:
    """A PDF with ``lines`` of (font size, text) centred down one A4 page."""
    ops = [b"BT"]
    y = PAGE_HEIGHT - 150.0
    for size, text in lines:
        for part in _wrap(text, size, PAGE_WIDTH - 100) if text else [""]:
            x = max(50.0, (PAGE_WIDTH - _width(part, size)) / 2)
            ops.append(
                b"/F1 %d Tf 1 0 0 1 %.1f %.1f Tm (%s) Tj" % (size, x, y, _escape(_encode(part)))
            )
            y -= size * 1.6
    ops.append(b"ET")
    content = b"\n".join(ops)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>" % (PAGE_WIDTH, PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Title (%s) /Producer (Teachfile) >>" % _escape(_encode(title[:200])),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)
