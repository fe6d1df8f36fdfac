"""A small PNG bar chart for /stats, drawn with Pillow (no matplotlib needed).

`bar_chart(title, sections)` draws one horizontal bar per (label, count) in each section (e.g. "by status",
"by regency") and returns PNG bytes. Pure CPU work: call it through ``asyncio.to_thread`` in handlers.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

#: Image width in pixels; height grows with the number of bars.
WIDTH = 720
ROW = 22
PALETTE = ((46, 125, 50), (21, 101, 192), (239, 108, 0), (198, 40, 40), (106, 27, 154), (0, 131, 143))


def bar_chart(title: str, sections: Sequence[tuple[str, Sequence[tuple[str, int]]]], *, max_bars: int = 12) -> bytes:
    """PNG bytes of horizontal bars. ``sections``: (heading, [(label, count), …]); at most ``max_bars`` bars
    per section (the rest summed as "…"). Counts must be ≥ 0. Labels are cut to 28 characters."""
    font = ImageFont.load_default()
    rows: list[tuple[str, str, int, int]] = []  # kind, label, count, colour index
    for s_i, (heading, bars) in enumerate(sections):
        rows.append(("h", heading, 0, s_i))
        shown = list(bars)[:max_bars]
        rest = sum(c for _, c in list(bars)[max_bars:])
        if rest:
            shown.append(("…", rest))
        if not shown:
            rows.append(("b", "—", 0, s_i))
        for label, count in shown:
            if count < 0:
                raise ValueError(f"negative count for {label!r}")
            rows.append(("b", label[:28], count, s_i))
    height = 40 + ROW * len(rows) + 10
    img = Image.new("RGB", (WIDTH, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), title[:90], fill=(0, 0, 0), font=font)
    left, right = 200, WIDTH - 60
    y = 40
    for kind, label, count, s_i in rows:
        if kind == "h":
            draw.text((10, y + 4), label, fill=(60, 60, 60), font=font)
            draw.line((10, y + ROW - 2, WIDTH - 10, y + ROW - 2), fill=(200, 200, 200))
        else:
            section_max = max((c for k, _, c, i in rows if k == "b" and i == s_i), default=0) or 1
            draw.text((20, y + 5), label, fill=(0, 0, 0), font=font)
            w = int((right - left) * count / section_max)
            if w:
                draw.rectangle((left, y + 3, left + w, y + ROW - 3), fill=PALETTE[s_i % len(PALETTE)])
            draw.text((left + w + 6, y + 5), str(count), fill=(0, 0, 0), font=font)
        y += ROW
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()
