"""Headless Chromium through every tab: each one shows what it should and the console stays clean.

Debian's chromium (/usr/bin/chromium) driven by playwright; skipped with a reason when either
is missing. One full-page screenshot per tab is kept as a test artefact in
LIPMEM_SCREENSHOTS=DIR, else in pytest's temp dir (`.../screenshots0`, kept for three runs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from tests.app.app_support import app_demo, launch, make_compare_root

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
    import app as app_module

    demo, _ = app_demo(make_compare_root(tmp_path_factory.mktemp("checkpoints")), tmp_path_factory)
    yield launch(demo, **app_module.LAUNCH_KWARGS)
    demo.close()


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


def _texts(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_text_contents()]  # SVG has no innerText


def _plot_title(page, plot: str) -> str:
    return " ".join(_texts(page, f"{plot} .gtitle"))


# Tests run in file order on one page, as a user would click through the app.
def test_generate_tab(page, shots):
    assert page.get_by_label("Audio-Lip Memory on").count() == 0  # no hidden switch of checkpoint
    page.get_by_role("button", name="Generate", exact=True).click()
    _wait(page, shots, "#generate-video video[src]")
    _wait(page, shots, "#generate-timeline .js-plotly-plot")
    assert "lipmem-synthtalk" in _plot_title(page, "#generate-timeline")  # names what drew it
    _shot(page, shots, "1_generate")


def test_compare_tab(page, shots):
    _open(page, "Compare")
    page.get_by_role("button", name="Compare", exact=True).click()
    _wait(page, shots, "#compare-video video[src]")
    _wait(page, shots, "#compare-strip img")
    _wait(page, shots, "#compare-curves .js-plotly-plot")
    legend = _texts(page, "#compare-curves .legendtext")
    assert legend == ["ground truth", "memory: lipmem-synthtalk", "ablation: lipmem-synthtalk-nomem"]
    assert {"jaw opening", "lip closure (P/B/M)", "lip rounding (UW/OW/W)"} <= set(
        _texts(page, "#compare-curves .annotation-text")
    )
    errors = page.locator("#compare-errors").inner_text()
    assert "memory: lipmem-synthtalk" in errors and "ablation: lipmem-synthtalk-nomem" in errors
    assert "no-memory ablation" in page.locator("#compare-notices").inner_text()
    _shot(page, shots, "2_compare")


def test_phonemes_tab_used_slots_statistics_and_no_stale_slot(page, shots):
    _open(page, "Phonemes ↔ slots")
    page.get_by_role("button", name="Analyse").click()
    _wait(page, shots, "#analysis-heatmap .js-plotly-plot")
    _wait(page, shots, "#analysis-timeline .js-plotly-plot")
    title = _plot_title(page, "#analysis-heatmap")
    assert "slots unused (hidden)" in title and "lipmem-synthtalk" in title
    assert "white tick: the frame's argmax slot" in " ".join(_texts(page, "#analysis-timeline .legendtext"))
    assert "single short clip overstates PNMI" in page.locator("#analysis-note").inner_text()
    stats = page.locator("#analysis-stats").inner_text()
    assert "PNMI" in stats and "[" in stats and "frames" in stats  # value [95 % interval], frame count
    page.get_by_role("button", name="Show slot").click()
    _wait(page, shots, "#slot-lips img")
    _shot(page, shots, "3_phonemes")
    # A new analysis clears the slot inspector instead of leaving the last slot's lips on screen.
    page.get_by_role("button", name="Analyse").click()
    page.wait_for_function("() => !document.querySelector('#slot-lips img')", timeout=WAIT_MS)
    page.locator("#show-all-slots input").check()
    page.wait_for_function(
        "() => (document.querySelector('#analysis-heatmap .gtitle')?.textContent || '').includes('(shown)')",
        timeout=WAIT_MS,
    )
    page.get_by_role("button", name="Export figure + table").first.click()
    _wait(page, shots, "#analysis-exports a[href*='.csv']")


def test_slot_map_tab_has_a_legend(page, shots):
    _open(page, "Slot map")
    page.get_by_label("PCA").check()  # UMAP's first JIT compile is slow; E's tests cover UMAP
    _wait(page, shots, "#slot-map .js-plotly-plot")
    legend = _texts(page, "#slot-map .legendtext")
    assert legend and all(" slot" in entry for entry in legend)  # "bilabial (3 slots)"
    assert "dominant viseme" in " ".join(_texts(page, "#slot-map .legendtitletext"))
    _shot(page, shots, "4_slot_map")


def test_gallery_tab_groups_by_viseme(page, shots):
    _open(page, "Slot gallery")
    page.get_by_role("button", name="Decode all slots").click()
    _wait(page, shots, "#slot-gallery .js-plotly-plot image")  # the montage (one SVG image)
    texts = _texts(page, "#slot-gallery .annotation-text")
    headers = [t for t in texts if " slot" in t and ":" in t and "(" in t]
    assert headers, texts  # "open (AA AE AH AO): 3 slots"
    _shot(page, shots, "5_gallery")


def test_playground_tab(page, shots):
    _open(page, "Memory playground")
    page.get_by_role("button", name="Render").click()
    _wait(page, shots, "#playground-video video[src]")
    _shot(page, shots, "6_playground")


def test_model_card_tab_and_clean_console(page, shots):
    _open(page, "Model card")
    _wait(page, shots, "#model-card :text('SynthTalk')")
    assert page.locator("#model-card summary").count() == 2  # metadata and config folded away
    assert not page.locator("#model-card details").first.evaluate("d => d.open")
    _shot(page, shots, "7_model_card")
    assert page.console_errors == []  # type: ignore[attr-defined]
