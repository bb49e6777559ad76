"""Bad inputs to the launched app through gradio_client (issue 15): every refused input gets a
message that says what to do (never Gradio's generic "error", never a server path), a failed
request leaves no files behind, and the app keeps serving.

One app per module (a tiny random-init checkpoint), one client session as in a browser.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipmem_core.infer.video import VideoWriter
from lipmem_core.limits import MAX_IMAGE_SIDE
from tests.app.app_support import app_demo, generate_request, launch, make_checkpoint_root

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ANALYSE_UPLOAD = "upload"
TEXTGRID_ALIGNER = "textgrid"
SERVER_PATH = re.compile(r"/(tmp|work|root|home|var|usr)/")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = make_checkpoint_root(tmp_path_factory.mktemp("checkpoints"))
    demo, ctx = app_demo(root, tmp_path_factory, private_work=False)
    url = launch(demo)
    yield demo, url, ctx
    demo.close()


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    return Client(served[1], verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    files = {"not_image": d / "notes.png", "header_png": d / "header.png", "huge": d / "huge.png"}
    files["not_image"].write_text("plain text, not an image\n" * 20)
    png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    files["header_png"].write_bytes(png[:33])  # signature + IHDR: a size, no pixels
    cv2.imwrite(str(files["huge"]), np.full((32, MAX_IMAGE_SIDE + 1, 3), 90, np.uint8))
    files["huge_video"] = d / "huge_as_video.png"
    files["huge_video"].write_bytes(files["huge"].read_bytes())
    files["faceless"] = d / "faceless.mp4"
    with VideoWriter(files["faceless"], 96, 64, 25) as writer:
        writer.write(np.full((10, 64, 96, 3), 40, np.uint8))
    files["textgrid"] = d / "broken.TextGrid"
    files["textgrid"].write_text(
        'File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = 0\nxmax = oops\n'
    )
    files["speech"] = d / "speech.wav"
    import soundfile as sf

    from tests.astronaut_video import speechlike

    sf.write(files["speech"], speechlike(1.0), 16_000)
    return files


def _refused(call, *words: str) -> str:
    """The call fails with a message holding `words`, no server path and not Gradio's generic text."""
    with pytest.raises(AppError) as info:
        call()
    message = str(info.value)
    assert "upstream Gradio app has raised an exception" not in message, message
    assert not SERVER_PATH.search(message), message
    for word in words:
        assert word in message, message
    return message


def _request_dirs(ctx) -> list[Path]:
    return sorted(Path(ctx.work_root).glob("req-*"))


def test_face_uploads_that_are_not_usable_images(client, bad_files, served):
    _, _, ctx = served
    before = _request_dirs(ctx)
    image = lambda name: dict(face_source="image", image=handle_file(str(bad_files[name])))  # noqa: E731
    _refused(lambda: generate_request(client, **image("not_image")), "not an image", "JPEG or PNG")
    _refused(lambda: generate_request(client, **image("header_png")), "not an image")
    _refused(lambda: generate_request(client, **image("huge")), f"{MAX_IMAGE_SIDE + 1} x 32", "limit")
    video = dict(face_source="video", video=handle_file(str(bad_files["huge_video"])))
    _refused(lambda: generate_request(client, **video), f"{MAX_IMAGE_SIDE + 1} x 32", "limit")
    faceless = dict(face_source="video", video=handle_file(str(bad_files["faceless"])))
    _refused(lambda: generate_request(client, **faceless), "no face")
    assert _request_dirs(ctx) == before  # failed requests leave no request folder


def test_text_and_cleared_fields(client):
    _refused(lambda: generate_request(client, text="שלום עולם"), "English")
    _refused(lambda: generate_request(client, example=None), "choose an example identity")
    pg = lambda identity, seq: client.predict("lipmem-synthtalk", identity, seq, 3, api_name="/playground")  # noqa: E731
    _refused(lambda: pg(None, "sil M AA"), "choose an example identity")
    _refused(lambda: pg("Speaker A", "1² 3"), "neither a slot number nor an ARPAbet phone")
    _refused(lambda: pg("Speaker A", "M @@"), "'@@'")
    _refused(
        lambda: client.predict("lipmem-synthtalk", None, "slot", api_name="/gallery"),
        "choose an example identity",
    )


def test_cleared_slot_field_and_a_broken_textgrid(client, bad_files):
    generate_request(client)
    client.predict(
        "clip", "lipmem-synthtalk", None, None, "pocketsphinx", "", None, "p_label_given_slot", "phone",
        False, api_name="/analyse",
    )  # fmt: skip
    _refused(lambda: client.predict(None, "Speaker A", api_name="/slot_details"), "slot number")
    _refused(
        lambda: client.predict(
            ANALYSE_UPLOAD,
            "lipmem-synthtalk",
            None,
            handle_file(str(bad_files["speech"])),
            TEXTGRID_ALIGNER,
            "",
            handle_file(str(bad_files["textgrid"])),
            "p_label_given_slot",
            "phone",
            False,
            api_name="/analyse",
        ),  # fmt: skip
        "broken.TextGrid",
        "save it again",
    )


def test_request_files_are_private_and_expire(client, served):
    demo, _, ctx = served
    work_root = Path(ctx.work_root)
    assert stat.S_IMODE(work_root.stat().st_mode) == 0o700
    assert work_root.parent == Path(demo.GRADIO_CACHE)  # served in place, expired by Gradio
    assert demo.delete_cache is not None
    video = generate_request(client)[0]
    assert Path(video["video"] if isinstance(video, dict) else video).is_file()
