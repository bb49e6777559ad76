"""Figures of the memory analysis (analysis.plots): right traces, right data, right hover."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis.addressing import frame_table, join_phones, phone_slot_matrices, slot_order
from analysis.plots import gallery_figure, map_scatter, slot_phone_heatmap, utterance_timeline
from analysis.slots import slot_labels
from analysis.tables import phone_table
from lipmem_core.phones import Interval

S = 8


@pytest.fixture()
def clip() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    phones = phone_table(
        [Interval(0.1, 0.3, "M"), Interval(0.3, 0.6, "AA1"), Interval(0.6, 0.8, "IY")],
        [Interval(0.1, 0.8, "mommy")],
        utterance="u",
        duration=1.0,
    )
    slots = np.array([0] * 3 + [5] * 5 + [2] * 7 + [6] * 5 + [0] * 5)  # 25 frames = 1 s
    a = np.full((25, S), 0.02, np.float32)
    a[np.arange(25), slots] = 1 - 0.02 * (S - 1)
    frames = join_phones(frame_table(a, "u"), phones)
    audio = np.sin(np.arange(16000) / 5.0).astype(np.float32)
    return frames, phones, audio


def test_heatmap_orders_slots_and_explains_each_cell(clip):
    frames, _, _ = clip
    m = phone_slot_matrices(frames)
    order = slot_order(m["counts"])
    fig = slot_phone_heatmap(m["p_label_given_slot"], order, m["counts"], slot_labels(m["counts"]))
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap)
    assert list(heat.x) == [f"s{s}" for s in order]
    assert list(heat.y) == list(m["counts"].index)
    i, j = list(heat.y).index("AA"), list(heat.x).index("s2")
    assert heat.z[i][j] == pytest.approx(m["p_label_given_slot"].loc["AA", 2])
    assert "frames 7" in heat.hovertext[i][j] and "P(AA|slot) 1.00" in heat.hovertext[i][j]
    assert "AA 100%" in heat.hovertext[i][j]


def test_timeline_has_wave_phones_and_slots_on_one_time_axis(clip):
    frames, phones, audio = clip
    fig = utterance_timeline(frames, phones, audio, order=list(reversed(range(S))))
    kinds = [type(t).__name__ for t in fig.data]
    assert kinds == ["Scatter", "Bar", "Heatmap", "Scatter"]
    wave, bar, heat, argmax = fig.data
    assert len(wave.x) <= 2 * 4000  # an envelope, not 16000 samples
    assert list(bar.text) == ["", "M", "AA", "IY", ""]
    np.testing.assert_allclose(np.asarray(bar.base, float) + np.asarray(bar.x, float), phones["end"])
    assert np.asarray(heat.z).shape == (S, 25) and heat.y[0] == f"s{S - 1}"
    assert list(argmax.y[:4]) == ["s0", "s0", "s0", "s5"]
    assert fig.layout.xaxis.matches == fig.layout.xaxis2.matches == "x3"  # one time axis
    assert len(utterance_timeline(frames).data) == 2  # addressing alone works too


def test_timeline_refuses_several_utterances(clip):
    frames, _, _ = clip
    two = pd.concat([frames, frames.assign(utterance="v")])
    with pytest.raises(ValueError, match="one utterance"):
        utterance_timeline(two)


def test_map_scatter_colours_frames_and_overlays_slots():
    table = pd.DataFrame(
        {
            "kind": ["frame", "frame", "frame", "slot", "slot"],
            "utterance": ["u", "u", "u", "", ""],
            "frame": [0, 1, 2, -1, -1],
            "slot": [1, 1, 0, 0, 1],
            "phone": ["M", "B", "AA", "", ""],
            "x": [0.0, 1.0, 2.0, 3.0, 4.0],
            "y": [0.0, 1.0, 2.0, 3.0, 4.0],
            "method": "umap",
        }
    )
    by_viseme = map_scatter(table, color="viseme")
    assert [t.name for t in by_viseme.data] == ["bilabial", "open", "value slots (2 slots)"]
    assert len(by_viseme.data[0].x) == 2
    by_phone = map_scatter(table, color="phone")
    assert [t.name for t in by_phone.data] == ["AA", "B", "M", "value slots (2 slots)"]
    assert by_phone.layout.xaxis.title.text == "UMAP 1"


def test_gallery_montage_places_each_image(clip):
    images = np.stack([np.full((10, 10, 3), 20 * i, np.uint8) for i in range(5)])
    images[1] = (200, 30, 0)  # a coloured tile: channel order must survive the PNG
    fig = gallery_figure(images, [7, 1, 2, 3, 4], cols=3)
    png = base64.b64decode(fig.data[0].source.split(",", 1)[1])
    canvas = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]  # lossless, RGB
    assert canvas.shape == (2 * 12, 3 * 12, 3)
    assert (canvas[0:10, 0:10] == 0).all() and (canvas[12:22, 0:10] == 60).all()  # row-major
    assert (canvas[0:10, 12:22] == (200, 30, 0)).all()
    assert fig.data[1].hovertext[0].startswith("slot 7")
    assert [a.text for a in fig.layout.annotations] == ["7", "1", "2", "3", "4"]
    info = pd.DataFrame(
        {"slot": [7, 1, 2, 3, 4], "phone": ["M", "AA", "unused", "S", "IY"], "top_phones": ""}
    )
    labelled = gallery_figure(images, [7, 1, 2, 3, 4], info, cols=3)
    assert labelled.layout.annotations[0].text == "7 M" and labelled.layout.annotations[2].text == "2 unused"
    custom = gallery_figure(images, [7, 1, 2, 3, 4], info, cols=3, labels=list("abcde"), image_format="jpeg")
    assert [a.text for a in custom.layout.annotations] == list("abcde")
    jpeg = base64.b64decode(custom.data[0].source.split(",", 1)[1])
    approx = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].astype(int)
    assert custom.data[0].source.startswith("data:image/jpeg") and np.abs(approx - canvas).mean() < 3
    with pytest.raises(ValueError, match="png"):
        gallery_figure(images, [7, 1, 2, 3, 4], image_format="gif")
