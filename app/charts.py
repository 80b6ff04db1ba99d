"""Small server-drawn SVG charts for the educator's item analysis (issue 15); standard library.

Every text that goes into a chart passes through :func:`xml.sax.saxutils.escape` (labels
are learner and author text), and the SVG uses presentation attributes only, no ``style``
attribute and no script, so the page's Content-Security-Policy stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

BAR = "#0b5cad"
RIGHT = "#2b6a30"
MUTED = "#8a96a0"
HEAT = "#d7301f"


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its count, and whether it is the right answer."""

    label: str
    count: int
    right: bool = False


def _short(text: str, limit: int = 32) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(bars: Sequence[Bar], *, title: str, total: int | None = None) -> str:
    """Horizontal bars with counts (and shares of ``total``); right answers in green."""
    row, label_w, bar_w, pad = 26, 250, 220, 6
    height = row * max(1, len(bars)) + 2 * pad
    width = label_w + bar_w + 90
    top = max([*(b.count for b in bars), 1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = pad + i * row
        length = round(bar_w * bar.count / top, 1)
        share = f" ({100 * bar.count / total:.0f}%)" if total else ""
        colour = RIGHT if bar.right else BAR
        mark = " ✓" if bar.right else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13" '
            f'fill="#1d2329">{escape(_short(bar.label))}{mark}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{length}" height="{row - 8}" '
            f'fill="{colour}"><title>{escape(bar.label)}: {bar.count}</title></rect>'
            f'<text x="{label_w + length + 6}" y="{y + 17}" font-size="13" fill="#1d2329">'
            f"{bar.count}{share}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    values: Sequence[float],
    *,
    title: str,
    bins: int = 10,
    low: float = 0,
    high: float = 100,
    mark: float | None = None,
    mark_label: str = "",
) -> str:
    """Counts of ``values`` in ``bins`` equal bins from ``low`` to ``high`` (the top bin
    includes ``high``); ``mark`` draws a dashed line there (the passing score)."""
    width, height, left, bottom, top_pad = 520, 200, 36, 34, 16
    counts = [0] * bins
    span = (high - low) / bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - low) // span)))] += 1
    top = max([*counts, 1])
    plot_w, plot_h = width - left - 24, height - bottom - top_pad
    step = plot_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
        f'stroke="{MUTED}"/>',
    ]
    for i, count in enumerate(counts):
        h = round(plot_h * count / top, 1)
        x = round(left + i * step + 2, 1)
        lo, hi = low + i * span, low + (i + 1) * span
        parts.append(
            f'<rect x="{x}" y="{round(top_pad + plot_h - h, 1)}" width="{round(step - 4, 1)}" '
            f'height="{h}" fill="{BAR}"><title>{lo:g} to {hi:g}: {count}</title></rect>'
        )
        if count:
            parts.append(
                f'<text x="{round(x + step / 2 - 2, 1)}" y="{round(top_pad + plot_h - h - 3, 1)}" '
                f'text-anchor="middle" font-size="11" fill="#1d2329">{count}</text>'
            )
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = round(left + i * step, 1)
        parts.append(
            f'<text x="{x}" y="{height - 14}" text-anchor="middle" font-size="11" '
            f'fill="#1d2329">{low + i * span:g}</text>'
        )
    if mark is not None and low <= mark <= high:
        x = round(left + plot_w * (mark - low) / (high - low), 1)
        parts.append(
            f'<line x1="{x}" y1="{top_pad}" x2="{x}" y2="{top_pad + plot_h}" stroke="{HEAT}" '
            f'stroke-dasharray="4 3"/><text x="{x + 4}" y="{top_pad + 10}" font-size="11" '
            f'fill="{HEAT}">{escape(mark_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Click:
    """A learner's click in image pixels, and whether it was right."""

    x: float
    y: float
    right: bool


def heat_map(
    columns: int,
    rows: int,
    clicks: Sequence[Click],
    *,
    title: str,
    region: str = "",
    cells: int = 16,
) -> str:
    """An overlay for one image (``viewBox`` in its pixels): click density in a grid of
    ``cells`` x ``cells``, each click as a dot, and the target ``region`` outlined.

    ``region`` is SVG shape markup made by :func:`ellipse` or :func:`polygon`.
    """
    columns, rows = max(1, columns), max(1, rows)
    cw, ch = columns / cells, rows / cells
    grid: dict[tuple[int, int], int] = {}
    for c in clicks:
        key = (min(cells - 1, int(c.x // cw)), min(cells - 1, int(c.y // ch)))
        grid[key] = grid.get(key, 0) + 1
    top = max([*grid.values(), 1])
    radius = max(columns, rows) / 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heat-map" role="img" '
        f'viewBox="0 0 {columns} {rows}" preserveAspectRatio="none">',
        f"<title>{escape(title)}</title>",
    ]
    for (gx, gy), count in sorted(grid.items()):
        parts.append(
            f'<rect x="{gx * cw:.1f}" y="{gy * ch:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
            f'fill="{HEAT}" fill-opacity="{0.15 + 0.55 * count / top:.2f}"/>'
        )
    if region:
        parts.append(region)
    for c in clicks:
        parts.append(
            f'<circle cx="{c.x:.1f}" cy="{c.y:.1f}" r="{radius:.1f}" '
            f'fill="{RIGHT if c.right else "#ffffff"}" stroke="#000" '
            f'stroke-width="{radius / 3:.1f}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def ellipse(cx: float, cy: float, rx: float, ry: float, *, stroke_width: float = 1.5) -> str:
    """The outline of an elliptic target region, for :func:`heat_map`."""
    return (
        f'<ellipse cx="{cx:g}" cy="{cy:g}" rx="{rx:g}" ry="{ry:g}" fill="none" '
        f'stroke="#ffd400" stroke-width="{stroke_width:g}" stroke-dasharray="4 2"/>'
    )


def polygon(points: Sequence[tuple[float, float]], *, stroke_width: float = 1.5) -> str:
    """The outline of a polygonal target region, for :func:`heat_map`."""
    joined = " ".join(f"{x:g},{y:g}" for x, y in points)
    return (
        f'<polygon points={quoteattr(joined)} fill="none" stroke="#ffd400" '
        f'stroke-width="{stroke_width:g}" stroke-dasharray="4 2"/>'
    )
