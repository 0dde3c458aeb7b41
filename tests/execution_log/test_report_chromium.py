"""The HTML report renders in headless Chromium and its three charts are drawn.

Skips with a visible reason when Chromium is absent, unless SCOPEROUTER_REQUIRE_CHROMIUM=1."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from scoperouter.cli import main

SIZE = (1400, 1150)
CHARTS = ("chart-waste", "chart-runs", "chart-saved")
COLORS = {
    "chart-waste": (0x25, 0x63, 0xEB),
    "chart-runs": (0xEA, 0x58, 0x0C),
    "chart-saved": (0x16, 0xA3, 0x4A),
}


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "headless Chromium not installed (apt-get install chromium)"
    if os.environ.get("SCOPEROUTER_REQUIRE_CHROMIUM") == "1":
        pytest.fail(msg + " and SCOPEROUTER_REQUIRE_CHROMIUM=1")
    pytest.skip(msg)


def run_chromium(exe: str, profile: Path, *args: str) -> str:
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--force-device-scale-factor=1",
        f"--window-size={SIZE[0]},{SIZE[1]}",
        "--hide-scrollbars",
        *args,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xFF
            elif f == 2:
                line[x] = (line[x] + b) & 0xFF
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3))
    return width, height, rows


def test_html_report_charts_are_drawn(
    game_day_log: Path, config_path: Path, tmp_path: Path
) -> None:
    """Chromium lays out the three SVG charts with bars/points, and the screenshot shows
    non-blank chart areas in the chart colours."""
    exe = chromium()
    html = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                "--log",
                str(game_day_log),
                "--config",
                str(config_path),
                "--html",
                str(html),
                "--what-if",
                "max_entities=50",
            ]
        )
        == 0
    )
    page = html.read_text(encoding="utf-8")
    # a probe copy measures the chart boxes after layout (the report itself has no script)
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.replace(
            "</body>",
            (
                "<script>document.body.setAttribute('data-boxes', JSON.stringify(Object.fromEntries("
                "[...document.querySelectorAll('svg.chart-svg')].map(s => {const r = s.getBoundingClientRect();"
                "return [s.id, {x: r.x, y: r.y, w: r.width, h: r.height, marks: s.querySelectorAll("
                "'rect.bar, circle.point, polyline.series').length}]}))));</script></body>"
            ),
        ),
        encoding="utf-8",
    )
    dom = run_chromium(exe, tmp_path / "p1", "--dump-dom", probe.as_uri())
    start = dom.index('data-boxes="') + len('data-boxes="')
    boxes = json.loads(dom[start : dom.index('"', start)].replace("&quot;", '"'))
    assert set(boxes) == set(CHARTS)
    for name, box in boxes.items():
        assert box["w"] > 200 and box["h"] > 100 and box["marks"] >= 2, (name, box)
        assert box["y"] + box["h"] <= SIZE[1], f"{name} is below the fold"

    shot = tmp_path / "report.png"
    run_chromium(exe, tmp_path / "p2", f"--screenshot={shot}", html.as_uri())
    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == SIZE
    for name, box in boxes.items():
        x0, y0 = int(box["x"]), int(box["y"])
        x1, y1 = int(box["x"] + box["w"]), int(box["y"] + box["h"])
        pixels = [rows[y][3 * x : 3 * x + 3] for y in range(y0, y1, 2) for x in range(x0, x1, 2)]
        non_white = sum(1 for p in pixels if min(p) < 235)
        target = bytes(COLORS[name])
        coloured = sum(1 for p in pixels if all(abs(p[k] - target[k]) < 24 for k in range(3)))
        assert non_white > 0.03 * len(pixels), f"{name} looks blank"
        assert coloured > 60, f"{name}: no {COLORS[name]} marks drawn"
