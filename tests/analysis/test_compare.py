"""The Compare view's pieces (analysis.compare), exports (analysis.exports) and bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from analysis.addressing import bootstrap_statistics, frame_table, join_phones
from analysis.align import align_espeak
from analysis.compare import curve_errors, ground_truth_frames, mouth_strip, oracle_curves
from analysis.exports import Export, export_metadata, read_csv_metadata
from analysis.plots import mouth_curves
from lipmem_core.data.synth.face_identity import Identity
from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.evaluation.oracle import MouthOracle


@pytest.fixture(scope="module")
def spoken():
    return align_espeak("Bob made a map.", utterance="u")


@pytest.fixture(scope="module")
def truth(spoken):
    n = -(-len(spoken.audio) // 640)
    identity = Identity.sample(np.random.default_rng(3))
    return ground_truth_frames(identity, spoken.table, n, size=64)


def test_ground_truth_closes_the_lips_on_m_and_b(spoken, truth):
    frames, mouth = truth
    assert frames.shape == (len(mouth), 64, 64, 3) and frames.dtype == np.uint8
    close = mouth[:, MOUTH_PARAMS.index("close")]
    centres = (np.arange(len(mouth)) + 0.5) / 25
    bilabial = spoken.table[spoken.table["phone"].isin(["B", "M"])]
    for start, end in zip(bilabial["start"], bilabial["end"], strict=True):
        inside = (centres >= start) & (centres < end)
        assert close[inside].max() > 0.8
    assert close.min() < 0.2  # and opens in between
    # a still head: the only pixels that change are in the lower face
    moving = (frames.astype(int) - frames[0]).any(axis=(0, 3))
    assert not moving[:25].any()


def test_mouth_strip_has_a_row_per_rendering_and_a_column_per_step(truth):
    frames, _ = truth
    strip = mouth_strip({"ground truth": frames, "copy": frames, "black": np.zeros_like(frames)}, every=2)
    assert strip.dtype == np.uint8 and strip.ndim == 3
    columns = len(range(0, len(frames), 2))
    # the mouth box of a 128 px face is 43 x 62 px, drawn at 1.5x (93 px) plus 2 px gaps
    assert strip.shape[1] == 150 + columns * (93 + 2)
    row = (strip.shape[0] - 18) // 3
    assert np.array_equal(strip[:row, 150:], strip[row : 2 * row, 150:])  # same frames, same row
    assert strip[2 * row : 3 * row - 2, 150:243].max() == 0  # the black rendering stays black
    with pytest.raises(ValueError, match="same"):
        mouth_strip({"a": frames, "b": frames[:-1]})


def test_oracle_curves_and_errors_against_the_ground_truth(truth):
    frames, _ = truth
    torch.manual_seed(0)
    oracle = MouthOracle(width=8).eval()
    curves = oracle_curves(oracle, {"ground truth": frames, "same": frames, "flat": np.full_like(frames, 90)})
    assert list(curves.columns) == ["source", "frame", "time", "param", "value"]
    assert len(curves) == 3 * len(frames) * 3 and set(curves["param"]) == {"jaw", "close", "round"}
    errors = curve_errors(curves, "ground truth").set_index("source")
    assert errors.loc["same", "mean"] == pytest.approx(0.0, abs=1e-6)
    assert errors.loc["flat", "mean"] > 0
    figure = mouth_curves(curves)
    assert len(figure.data) == 9 and [t.name for t in figure.data if t.showlegend] == [
        "ground truth",
        "same",
        "flat",
    ]
    assert figure.data[0].line.width > figure.data[3].line.width  # the ground truth stands out


def test_export_files_carry_checkpoint_and_data(tmp_path, truth):
    meta = export_metadata("compare", "lipmem-synthtalk", "Speaker A speaking 'Bob'", frames=12)
    table = pd.DataFrame({"a": [1.5, 2.0]})
    figure = mouth_curves(
        pd.DataFrame({"source": "x", "frame": 0, "time": 0.02, "param": "jaw", "value": [0.3]})
    )
    paths = Export(meta, {"curves": figure}, {"table": table}, {"strip": truth[0][0]}).write(tmp_path)
    assert [p.suffix for p in paths] == [".html", ".csv", ".png"]
    html, csv, png = paths
    assert read_csv_metadata(csv) == meta
    pd.testing.assert_frame_equal(pd.read_csv(csv, comment="#"), table)
    assert Image.open(png).text["lipmem:data"] == "Speaker A speaking 'Bob'"
    page = html.read_text()
    assert '<meta name="lipmem:checkpoint" content="lipmem-synthtalk">' in page
    assert "<script src=" not in page and page.count("window.PlotlyConfig") == 1  # opens offline


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_data():
    rng = np.random.default_rng(0)
    phones = ["AA", "M", "IY", "S", "UW", "F"]

    def frames_of(n_utts: int, n: int = 60) -> pd.DataFrame:
        labels = rng.choice(phones, n_utts * n)
        slots = np.array([phones.index(p) for p in labels])
        noisy = rng.random(len(slots)) < 0.4
        slots[noisy] = rng.integers(0, 16, noisy.sum())  # a memory that is right 60 % of the time
        a = np.full((len(slots), 16), 0.01, np.float32)
        a[np.arange(len(slots)), slots] = 0.85
        f = frame_table(a, "u")
        f["utterance"] = [f"u{i // n}" for i in range(len(f))]
        f["frame"] = np.arange(len(f)) % n  # frames count from 0 in each utterance
        ends = np.arange(1, n + 1) / 25
        table = pd.DataFrame(
            {"utterance": f["utterance"], "phone": labels, "start": np.tile(ends - 0.04, n_utts),
             "end": np.tile(ends, n_utts), "word": "", "word_index": -1}
        )  # fmt: skip
        return join_phones(f, table)

    one, many = bootstrap_statistics(frames_of(1)), bootstrap_statistics(frames_of(40))
    for table in (one, many):
        assert (table["low"] <= table["value"]).all() and (table["value"] <= table["high"]).all()
    assert one["unit"].iloc[0] == "10-frame block" and many["unit"].iloc[0] == "utterance"
    width = lambda t: (t["high"] - t["low"]).iloc[0]  # noqa: E731  (PNMI)
    assert width(many) < width(one) / 2
    three = frames_of(3)
    pd.testing.assert_frame_equal(bootstrap_statistics(three, seed=1), bootstrap_statistics(three, seed=1))
