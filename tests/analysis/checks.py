"""Assertions on the files analysis writes: PNG images and self-contained plotly pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image


def assert_png(path: Path, min_px: int = 200, max_px: int = 6000) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        extrema = im.convert("L").getextrema()
    assert min_px <= w <= max_px and min_px <= h <= max_px, f"{path.name}: {w}x{h}"
    assert extrema[0] < extrema[1], f"{path.name} is blank"


def plotly_figures(path: Path) -> list[dict]:
    """The figure data of every plotly graph on a page; asserts the page loads plotly.js from a local file."""
    text = path.read_text(encoding="utf-8")
    assert "<html" in text.lower() and text.rstrip().lower().endswith("</html>")
    assert not re.search(r"<script[^>]+src=[\"']https?:", text), "the page loads a script from the network"
    assert len(text) < 1_000_000, "the page carries its own copy of plotly.js"
    srcs = re.findall(r"<script[^>]+src=[\"']([^\"']*plotly[^\"']*\.js)[\"']", text)
    assert len(srcs) == 1, f"{path.name}: plotly.js is not loaded once: {srcs}"
    lib = (path.parent / srcs[0]).resolve()
    assert lib.is_file() and lib.stat().st_size > 3_000_000, f"{path.name}: {srcs[0]} is not plotly.js"
    figs = []
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*\{', text, re.S):
        figs.append({"id": m.group(1), "data": json.loads(m.group(2))})
    assert figs, f"{path.name}: no plotly figure"
    return figs
