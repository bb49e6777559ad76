"""The launched app driven through gradio_client: every public api_name, and bad inputs.

One app per module (random free port, a tiny random-init checkpoint in a temp dir); one
client session, so gr.State (the clip just made, the analysis) carries between calls as in
the browser.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from analysis.exports import read_csv_metadata
from lipmem_core.phones import PHONES, VISEMES
from tests.app.app_support import app_demo, generate_request, launch, make_checkpoint_root, make_compare_root

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

GROUND_TRUTH = ":ground-truth"  # the API value of the ground-truth renderer
TEXT = "Bob made a big map."


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = make_compare_root(tmp_path_factory.mktemp("checkpoints"))
    make_checkpoint_root(root, "lipmem-variant", seed=1)  # a second memory model, another init
    demo, _ = app_demo(root, tmp_path_factory)
    yield launch(demo), tmp_path_factory.mktemp("downloads")
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    url, downloads = served
    return Client(url, verbose=False, download_files=str(downloads))


def _exported(client, view: str) -> list[Path]:
    """The files an Export button wrote (the file list is revealed with them)."""
    update = client.predict(api_name=f"/export_{view}")
    assert update["visible"] is True
    return [Path(f) for f in update["value"]]


def _video_path(result) -> Path:
    video = result["video"] if isinstance(result, dict) else result
    return Path(video)


def test_api_names_are_published(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {
        "/generate",
        "/example_face",
        "/analyse",
        "/heatmap",
        "/slot_details",
        "/slot_map",
        "/gallery",
        "/playground",
        "/model_card",
        "/compare",
        "/export_compare",
        "/export_analysis",
        "/export_slot_map",
        "/export_gallery",
        "/export_playground",
    }
    assert expected <= names, expected - names


def test_generate_from_text_with_example_identity_then_analyse(client):
    video, timeline, notices = generate_request(client)  # the gr.State output stays server-side
    path = _video_path(video)
    assert path.is_file() and path.stat().st_size > 1000
    assert timeline is not None  # the addressing timeline of the clip
    # The clip just made (session state) feeds the Phonemes <-> slots tab.
    heatmap, heatmap2, stats, note, timeline2, slot, lips, top = _analyse(client)
    assert heatmap is not None and timeline2 is not None
    assert heatmap2 == {"__type__": "update", "value": None, "visible": False}  # no second checkpoint
    rows = {r[0]: r[1:] for r in stats["data"]}
    n_frames = int(rows["frames"][0])
    assert n_frames > 20 and "10-frame block" in rows["bootstrap resamples"][0]
    pnmi, low, high = (
        float(x) for x in rows["PNMI"][0].replace("[", "").replace("]", "").replace(",", "").split()
    )
    assert 0.0 <= low <= pnmi <= high <= 1.0
    assert "single short clip overstates PNMI" in note and f"{n_frames} frames" in note
    figure = json.loads(heatmap["plot"])
    used = int(rows["used slots"][0].split()[0])
    assert len(figure["data"][0]["x"]) == used  # unused slots hidden by default ...
    assert f"{16 - used} of 16 slots unused (hidden)" in figure["layout"]["title"]["text"]
    assert 0 <= int(slot) < 16 and lips is None and not top["data"]  # the inspector starts empty
    every, _ = client.predict("counts", "viseme", True, api_name="/heatmap")
    assert len(json.loads(every["plot"])["data"][0]["x"]) == 16  # ... and shown on request
    lips, top = client.predict(int(slot), "Speaker B", api_name="/slot_details")
    assert cv2.imread(str(_video_path(lips))) is not None
    assert top["data"], "the most used slot answers to at least one phone"
    files = _exported(client, "analysis")
    assert sorted(f.suffix for f in files) == [".csv", ".csv", ".html"]
    csv = next(f for f in files if f.name.endswith("_statistics.csv"))
    meta = read_csv_metadata(csv)
    assert meta["checkpoint"] == "lipmem-synthtalk" and f"{n_frames} frames" in meta["data"]
    assert meta["statistic"] == "Argmax count" and meta["level"] == "viseme"
    page = next(f for f in files if f.suffix == ".html").read_text()
    assert '<meta name="lipmem:checkpoint" content="lipmem-synthtalk">' in page
    assert "<script src=" not in page and page.count("window.PlotlyConfig") == 1  # plotly.js inline


def _analyse(client, other=None, show_all=False):
    return client.predict(
        "clip", "lipmem-synthtalk", other, None, "pocketsphinx", "", None,
        "p_label_given_slot", "phone", show_all, api_name="/analyse",
    )  # fmt: skip


def test_two_checkpoints_side_by_side(client):
    generate_request(client)
    heatmap, heatmap2, stats, *_ = _analyse(client, other="lipmem-variant")
    assert heatmap2["visible"] is True
    assert "lipmem-variant" in json.loads(heatmap2["value"]["plot"])["layout"]["title"]["text"]
    assert [h.split(":")[0] for h in stats["headers"]] == ["statistic", "lipmem-synthtalk", "lipmem-variant"]
    files = _exported(client, "analysis")
    assert sum(f.suffix == ".html" for f in files) == 2  # one heatmap per checkpoint


def test_compare_view_and_its_export(client):
    video, strip, curves, errors, notices = client.predict(
        "Speaker A", "text", "Bob made a big map.", "en-us", None,
        "lipmem-synthtalk", "lipmem-synthtalk-nomem", api_name="/compare",
    )  # fmt: skip
    import av

    with av.open(str(_video_path(video))) as c:
        first = next(c.decode(video=0))
        assert (first.width, first.height) == (768, 256)  # three 256 px panels side by side
    image = cv2.imread(str(_video_path(strip)))
    assert image is not None and image.shape[0] > 3 * 40  # three rows of mouth crops
    figure = json.loads(curves["plot"])
    names = {t["name"] for t in figure["data"] if t.get("showlegend") is not False and t.get("name")}
    assert names == {"ground truth", "memory: lipmem-synthtalk", "ablation: lipmem-synthtalk-nomem"}
    assert [r[0] for r in errors["data"]] == ["memory: lipmem-synthtalk", "ablation: lipmem-synthtalk-nomem"]
    assert "no-memory ablation" in notices
    files = _exported(client, "compare")
    assert sorted(f.suffix for f in files) == [".csv", ".csv", ".html", ".png"]
    from PIL import Image

    png = Image.open(next(f for f in files if f.suffix == ".png"))
    assert png.text["lipmem:checkpoint"] == "lipmem-synthtalk vs lipmem-synthtalk-nomem"
    assert "Speaker A speaking 'Bob made a big map.'" in png.text["lipmem:data"]
    with pytest.raises(AppError, match="same checkpoint"):
        client.predict(
            "Speaker A",
            "text",
            "Hi.",
            "en-us",
            None,
            "lipmem-synthtalk",
            "lipmem-synthtalk",
            api_name="/compare",
        )


def test_ground_truth_generation(client):
    video, _, notices = generate_request(client, checkpoint=GROUND_TRUTH, example="Speaker C")
    assert _video_path(video).is_file()
    assert "ground-truth renderer" in notices


def test_slot_map_gallery_playground_model_card(client):
    value_map = json.loads(
        client.predict("lipmem-synthtalk", "value", "viseme", "pca", api_name="/slot_map")["plot"]
    )
    legend = [t["name"] for t in value_map["data"]]
    assert all(name.split(" (")[0] in {*VISEMES, "unused"} for name in legend), (
        legend
    )  # a legend entry per colour
    assert all("viseme: " in h for t in value_map["data"] for h in t["hovertext"])
    assert client.predict("lipmem-synthtalk", "key", "phone", "pca", api_name="/slot_map") is not None
    files = _exported(client, "slot_map")
    assert sorted(f.suffix for f in files) == [".csv", ".html"]
    assert "probe set" in read_csv_metadata(next(f for f in files if f.suffix == ".csv"))["data"]
    gallery = client.predict("lipmem-synthtalk", "Speaker A", "viseme", False, api_name="/gallery")
    figure = json.loads(gallery["plot"])  # one plotly montage: headers, then a label per used slot
    assert figure["data"][0]["type"] == "image" and figure["data"][0]["source"].startswith("data:image/jpeg")
    texts = [a["text"] for a in figure["layout"]["annotations"]]
    headers = [t for t in texts if t.startswith("<b>")]
    assert headers and all(t[3:].split(" (")[0] in VISEMES for t in headers)
    tiles = [t.split() for t in texts if not t.startswith("<b>") and "unused" not in t]
    for _, phones in tiles:  # "12 AA/AH": its top one or two phones
        assert set(phones.split("/")) <= set(PHONES), phones
    n_used = len(tiles)
    assert n_used == sum(int(h.rsplit(": ", 1)[1].split()[0]) for h in headers)
    if n_used < 16:  # unused slots are collapsed into one line under the montage
        assert f"{16 - n_used} of 16 slots unused" in texts[-1]
    full = json.loads(
        client.predict("lipmem-synthtalk", "Speaker A", "slot", True, api_name="/gallery")["plot"]
    )
    labels = [a["text"].split()[0] for a in full["layout"]["annotations"] if not a["text"].startswith("<b>")]
    assert sorted(int(x) for x in labels) == list(range(16))  # with unused shown: every slot
    assert len(_exported(client, "gallery")) == 2
    video, strip, steps = client.predict(
        "lipmem-synthtalk", "Speaker A", "3 5*6 M AA", 4, api_name="/playground"
    )
    assert _video_path(video).is_file()
    assert [r[2] for r in steps["data"]] == [4, 6, 4, 4]  # frames per step
    files = _exported(client, "playground")
    assert sorted(f.suffix for f in files) == [".csv", ".png"]
    assert "sequence '3 5*6 M AA'" in read_csv_metadata(next(f for f in files if f.suffix == ".csv"))["data"]
    card = client.predict("lipmem-synthtalk", api_name="/model_card")
    assert "SynthTalk" in card and "n_slots" in card and "<details>" in card  # metadata folded away


def test_bad_inputs_are_refused_and_the_app_keeps_serving(client, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("plain text, not a recording\n" * 40)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000, np.float32), 16_000)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(20 * 60 * 8000, np.int16), 8000, subtype="PCM_16")  # 20 minutes
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 200, np.uint8))
    cases = [
        (
            dict(speech_source="audio", audio=handle_file(str(not_audio))),
            "not a readable audio",
        ),
        (dict(speech_source="audio", audio=handle_file(str(silent))), "silent"),
        (dict(speech_source="audio", audio=handle_file(str(long))), "limit is 60 s"),
        (dict(face_source="image", image=handle_file(str(blank))), "face"),
    ]
    for overrides, message in cases:
        with pytest.raises(AppError, match=message):
            generate_request(client, **overrides)
    assert _video_path(generate_request(client, text="Still here.")[0]).is_file()
