"""The memory-analysis report: analysis + HTML/table writer, and its CLI (analysis.report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.align import align_espeak
from analysis.report import Utterance, analyse, main, write_report
from lipmem_core.model.generator import LipMemGenerator
from tests.conftest import ARCTIC_TRANSCRIPT
from tests.tiny_model import tiny_config

S = 12
CFG = tiny_config(face_widths=(8, 16, 32, 32), n_slots=S, audio_width=8)


@pytest.fixture(scope="module")
def model() -> LipMemGenerator:
    torch.manual_seed(0)
    return LipMemGenerator(CFG).eval()


@pytest.fixture(scope="module")
def clips() -> list[Utterance]:
    out = []
    for i, text in enumerate(["the quick brown fox", "jumps over the lazy dog"]):
        r = align_espeak(text, utterance=f"u{i}")
        out.append(Utterance(f"u{i}", r.audio, r.table))
    return out


def _one_plotly_bundle(page: str) -> bool:
    # include_plotlyjs=True inlines the bundle after a window.PlotlyConfig line; a CDN page
    # would load https://cdn.plot.ly/plotly-x.y.z.min.js with <script src=...> instead.
    return (
        page.count("window.PlotlyConfig") == 1
        and "<script src=" not in page
        and "cdn.plot.ly/plotly" not in page
    )


def test_report_writes_a_self_contained_page_and_tables(model, clips, tmp_path):
    identity = np.full((32, 32, 3), 128, np.uint8)
    report = analyse(model, clips, identity, cache_dir=tmp_path / "cache", map_method="pca")
    page = write_report(report, tmp_path / "out", "test report", ["a note"])
    text = page.read_text(encoding="utf-8")
    assert _one_plotly_bundle(text)
    assert text.count('class="plotly-graph-div"') == len(report.figures) == 8
    assert report.figures[-1][0] == "Steering the lips through memory"
    assert "a note" in text and "PNMI" in text
    out = tmp_path / "out"
    frames = pd.read_parquet(out / "frames.parquet")
    n_frames = sum(int(np.ceil(len(c.audio) / 640)) for c in clips)
    assert len(frames) == n_frames and set(frames["utterance"]) == {"u0", "u1"}
    stats = pd.read_csv(out / "statistics.csv")
    assert list(stats["utterance"]) == ["all", "u0", "u1"]
    assert stats.loc[0, "n_frames"] == n_frames
    p = pd.read_csv(out / "phone_given_slot.csv", index_col=0)
    used = p.sum(axis=0) > 0
    np.testing.assert_allclose(p.loc[:, used].sum(axis=0), 1.0)
    slots = pd.read_csv(out / "slots.csv")
    assert sorted(slots["order"]) == list(range(S))
    cached = sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "cache").iterdir())
    # one addressing per clip; the maps and the gallery images
    assert cached == ["addr", "addr", "frame_map", "gallery", "key_map", "value_map"]


def test_a_second_report_reuses_the_cache_and_draws_the_same(model, clips, tmp_path, monkeypatch):
    identity = np.full((32, 32, 3), 128, np.uint8)
    first = analyse(model, clips, identity, cache_dir=tmp_path / "cache", map_method="pca")
    from analysis import report as report_module

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    for name in ("slot_map", "frame_map", "slot_gallery"):
        monkeypatch.setattr(report_module, name, refuse)
    second = analyse(model, clips, identity, cache_dir=tmp_path / "cache", map_method="pca")
    for name in ("slot_maps", "frame_map", "frames"):
        pd.testing.assert_frame_equal(first.tables[name], second.tables[name])
    np.testing.assert_array_equal(first.figures[6][2].data[0].source, second.figures[6][2].data[0].source)
    # another identity is another gallery: not served from the cache
    with pytest.raises(AssertionError, match="recomputed"):
        analyse(model, clips, identity + 1, cache_dir=tmp_path / "cache", map_method="pca")


def test_nothing_to_analyse_is_an_error(model):
    from lipmem_core.errors import CorpusError

    with pytest.raises(CorpusError, match="no clips"):
        analyse(model, [], np.zeros((32, 32, 3), np.uint8))


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    ckpt = pytest.importorskip("lipmem_core.checkpoint", reason="lipmem_core.checkpoint has not landed yet")
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    ckpt.save_checkpoint(path, model, kind="generator", metadata={"steps": 0})
    return path


def test_cli_on_a_real_recording(checkpoint, arctic_wav, tmp_path, capsys):
    out = tmp_path / "rep"
    args = ["--checkpoint", str(checkpoint), "--audio", str(arctic_wav), "--text", ARCTIC_TRANSCRIPT]
    assert main([*args, "--map", "pca", "--out", str(out)]) == 0
    assert "PNMI" in capsys.readouterr().out
    assert _one_plotly_bundle((out / "index.html").read_text(encoding="utf-8"))
    phones = pd.read_csv(out / "phones.csv", keep_default_na=False)
    assert " ".join(phones.loc[phones["word"] != "", "word"].drop_duplicates()) == ARCTIC_TRANSCRIPT


def test_cli_on_a_corpus_split(checkpoint, tmp_path):
    from lipmem_core.data.synth.build import build_corpus

    corpus = tmp_path / "corpus"
    build_corpus(corpus, speakers=3, utterances=1, size=32, workers=1, progress=False)
    out = tmp_path / "rep"
    assert main(["--checkpoint", str(checkpoint), "--data", str(corpus), "--split", "test", "--map", "pca",
                 "--out", str(out)]) == 0  # fmt: skip
    stats = pd.read_csv(out / "statistics.csv")
    assert (
        stats.loc[0, "n_frames"]
        == pd.read_csv(corpus / "manifest.csv").query("split == 'test'")["frames"].sum()
    )


def test_cli_bad_inputs_give_clear_errors(checkpoint, tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "nope"), "--audio", "x.wav", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err
    silent = tmp_path / "silent.wav"
    import soundfile as sf

    sf.write(silent, np.zeros(16000, np.float32), 16000)
    assert main(["--checkpoint", str(checkpoint), "--audio", str(silent), "--out", str(tmp_path / "r")]) == 2
    assert "no speech" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(
            ["--checkpoint", str(checkpoint), "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]
        )
        == 2
    )
    assert "manifest.csv" in capsys.readouterr().err
