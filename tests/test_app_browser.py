"""Headless Chromium through every tab: each one renders its content and the console stays clean.

Debian's chromium (/usr/bin/chromium) driven by playwright; skipped with a reason when either
is missing. Screenshots go to the test's temp dir (LIPMEM_SCREENSHOTS=DIR keeps them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from tests.app_support import launch, make_checkpoint_root

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
WAIT_MS = 300_000  # generous: on a machine shared with training, chromium alone took 40 s to start


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    import torch

    import app as app_module

    threads = torch.get_num_threads()
    root = make_checkpoint_root(tmp_path_factory.mktemp("checkpoints"))
    demo = app_module.build_demo(checkpoint_dir=root, analysis_dir=tmp_path_factory.mktemp("no_analysis"))
    demo.lipmem_handlers.ctx.work_root = tmp_path_factory.mktemp("work")
    yield launch(demo, **app_module.LAUNCH_KWARGS)
    demo.close()
    torch.set_num_threads(threads)


def _kill_browser(profile: Path) -> None:
    """SIGKILL the chromium processes whose command line names `profile` (ours alone)."""
    import signal

    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(profile).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def page(url, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))  # type: ignore[attr-defined]
        page.goto(url, timeout=WAIT_MS)
        page.wait_for_selector("#generate-video", timeout=WAIT_MS)
        yield page
        # Closing a context whose page played video hung in playwright (even after leaving the
        # page), so end this browser directly: its fresh profile directory names only it.
        _kill_browser(profile)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    keep = os.environ.get("LIPMEM_SCREENSHOTS")
    path = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _shot(page, shots: Path, name: str) -> None:
    png = shots / f"{name}.png"
    page.screenshot(path=str(png), full_page=True)
    assert png.stat().st_size > 10_000  # a real page, not a blank one


def _wait(page, shots: Path, selector: str) -> None:
    """Wait for `selector`; on a timeout, keep a screenshot of what the page showed instead."""
    try:
        page.wait_for_selector(selector, timeout=WAIT_MS)
    except Exception:
        page.screenshot(path=str(shots / "FAILED.png"), full_page=True)
        raise


def _open(page, tab: str) -> None:
    page.get_by_role("tab", name=tab).click()


# Tests run in file order on one page, as a user would click through the app.
def test_generate_tab(page, shots):
    page.get_by_role("button", name="Generate", exact=True).click()
    _wait(page, shots, "#generate-video video[src]")
    _wait(page, shots, "#generate-timeline .js-plotly-plot")
    _shot(page, shots, "1_generate")


def test_phonemes_tab(page, shots):
    _open(page, "Phonemes ↔ slots")
    page.get_by_role("button", name="Analyse").click()
    _wait(page, shots, "#analysis-heatmap .js-plotly-plot")
    _wait(page, shots, "#analysis-timeline .js-plotly-plot")
    page.get_by_role("button", name="Show slot").click()
    _wait(page, shots, "#slot-lips img")
    _shot(page, shots, "2_phonemes")


def test_slot_map_tab(page, shots):
    _open(page, "Slot map")
    page.get_by_label("PCA").check()  # UMAP's first JIT compile is slow; E's tests cover UMAP
    _wait(page, shots, "#slot-map .js-plotly-plot")
    _shot(page, shots, "3_slot_map")


def test_gallery_tab(page, shots):
    _open(page, "Slot gallery")
    page.get_by_role("button", name="Decode all slots").click()
    _wait(page, shots, "#slot-gallery .js-plotly-plot image")  # the montage (one SVG image)
    assert page.locator("#slot-gallery .annotation").count() >= 16  # a label per slot
    _shot(page, shots, "4_gallery")


def test_playground_tab(page, shots):
    _open(page, "Memory playground")
    page.get_by_role("button", name="Render").click()
    _wait(page, shots, "#playground-video video[src]")
    _shot(page, shots, "5_playground")


def test_model_card_tab_and_clean_console(page, shots):
    _open(page, "Model card")
    _wait(page, shots, "#model-card :text('SynthTalk')")
    _shot(page, shots, "6_model_card")
    assert page.console_errors == []  # type: ignore[attr-defined]
