"""The report's HTML page in a real browser: headless Chromium shows its embedded figures."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_fixtures import toy_report  # noqa: F401

# Line colours of the figures (matplotlib's tab10 blue, orange, green); the page's own CSS has none.
FIGURE_COLOURS = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44)])


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    return exe


def screenshot(exe: str, page: Path, shot: Path, profile: Path) -> np.ndarray:
    """A 1400 x 3000 screenshot of ``page`` as an RGB array."""
    profile.mkdir()
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    with Image.open(shot) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def figure_rows(pixels: np.ndarray) -> np.ndarray:
    """Per screen row, how many pixels have one of the figures' line colours."""
    near = np.zeros(pixels.shape[:2], dtype=bool)
    for colour in FIGURE_COLOURS:
        near |= np.abs(pixels - colour).max(axis=2) <= 12
    return near.sum(axis=1)


def bands(rows: np.ndarray, gap: int = 80) -> int:
    """Number of vertical bands of coloured rows separated by at least ``gap`` rows without."""
    ys = np.flatnonzero(rows >= 10)
    return 0 if ys.size == 0 else 1 + int((np.diff(ys) > gap).sum())


@pytest.mark.slow
def test_chromium_shows_the_embedded_figures(toy_report, tmp_path):  # noqa: F811
    exe = chromium()
    page = toy_report / "report.html"
    shown = figure_rows(screenshot(exe, page, tmp_path / "report.png", tmp_path / "profile-1"))
    # The same page with the images taken out: same text and tables, no figures.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', page.read_text()))
    without = figure_rows(screenshot(exe, bare, tmp_path / "bare.png", tmp_path / "profile-2"))
    assert shown.sum() > 1000, "the figures' line colours do not appear in the screenshot"
    assert without.sum() < 100, "the page shows figure colours without its figures"
    assert bands(shown) >= 2, "fewer than two figures are visible in the first 3000 pixels"
