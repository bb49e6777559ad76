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

from lipmem_core.phones import PHONES
from tests.app_support import launch, make_checkpoint_root

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ORACLE = "Oracle renderer (SynthTalk ground truth)"
TEXT = "Bob made a big map."


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import app as app_module

    root = make_checkpoint_root(tmp_path_factory.mktemp("checkpoints"))
    demo = app_module.build_demo(checkpoint_dir=root, analysis_dir=tmp_path_factory.mktemp("no_analysis"))
    demo.lipmem_handlers.ctx.work_root = tmp_path_factory.mktemp("work")
    yield launch(demo), tmp_path_factory.mktemp("downloads")
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    url, downloads = served
    return Client(url, verbose=False, download_files=str(downloads))


def _generate(client, **overrides):
    args = dict(
        face_source="Example identity",
        example="Speaker A",
        image=None,
        video=None,
        speech_source="Text",
        text=TEXT,
        voice="en-us",
        audio=None,
        checkpoint="lipmem-synthtalk",
        use_memory=True,
    )
    args.update(overrides)
    return client.predict(*args.values(), api_name="/generate")


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
    }
    assert expected <= names, expected - names


def test_generate_from_text_with_example_identity_then_analyse(client):
    video, timeline, notices = _generate(client)  # the gr.State output stays server-side
    path = _video_path(video)
    assert path.is_file() and path.stat().st_size > 1000
    assert timeline is not None  # the addressing timeline of the clip
    # The clip just made (session state) feeds the Phonemes <-> slots tab.
    heatmap, stats, timeline2, slot = client.predict(
        "Clip just made",
        "lipmem-synthtalk",
        None,
        "PocketSphinx",
        "",
        None,
        "P(phone | slot)",
        "phone",
        api_name="/analyse",
    )
    assert heatmap is not None and timeline2 is not None
    rows = {r[0]: r[1] for r in stats["data"]}
    assert 0.0 <= float(rows["pnmi"]) <= 1.0 and int(rows["n_slots"]) == 16
    assert 0 <= int(slot) < 16
    assert client.predict("Argmax count", "viseme", api_name="/heatmap") is not None
    lips, top = client.predict(int(slot), "Speaker B", api_name="/slot_details")
    assert cv2.imread(str(_video_path(lips))) is not None
    assert top["data"], "the most used slot answers to at least one phone"


def test_oracle_generation(client):
    video, _, notices = _generate(client, checkpoint=ORACLE, example="Speaker C")
    assert _video_path(video).is_file()
    assert "oracle renderer" in notices


def test_slot_map_gallery_playground_model_card(client):
    assert client.predict("lipmem-synthtalk", "value", "viseme", "PCA", api_name="/slot_map") is not None
    assert client.predict("lipmem-synthtalk", "key", "phone", "PCA", api_name="/slot_map") is not None
    gallery = client.predict("lipmem-synthtalk", "Speaker A", "by slot number", api_name="/gallery")
    figure = json.loads(gallery["plot"])  # one plotly montage: an image and a label per slot
    assert figure["data"][0]["type"] == "image" and figure["data"][0]["source"].startswith("data:image/jpeg")
    labels = [a["text"].split() for a in figure["layout"]["annotations"]]
    assert [label[0] for label in labels] == [str(s) for s in range(16)]
    for _, phones in labels:  # "12 AA/AH": its top one or two phones, or unused
        assert phones == "unused" or set(phones.split("/")) <= set(PHONES), phones
    video, strip, steps = client.predict(
        "lipmem-synthtalk", "Speaker A", "3 5*6 M AA", 4, api_name="/playground"
    )
    assert _video_path(video).is_file()
    assert [r[2] for r in steps["data"]] == [4, 6, 4, 4]  # frames per step
    card = client.predict("lipmem-synthtalk", api_name="/model_card")
    assert "SynthTalk" in card and "n_slots" in card


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
            dict(speech_source="Audio (upload or record)", audio=handle_file(str(not_audio))),
            "not a readable audio",
        ),
        (dict(speech_source="Audio (upload or record)", audio=handle_file(str(silent))), "silent"),
        (dict(speech_source="Audio (upload or record)", audio=handle_file(str(long))), "limit is 60 s"),
        (dict(face_source="Image", image=handle_file(str(blank))), "face"),
    ]
    for overrides, message in cases:
        with pytest.raises(AppError, match=message):
            _generate(client, **overrides)
    assert _video_path(_generate(client, text="Still here.")[0]).is_file()
