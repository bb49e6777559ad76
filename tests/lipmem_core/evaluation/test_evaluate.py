"""The evaluation CLI on a tiny SynthTalk corpus, and RESULTS.md from its output."""

from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import torch

from lipmem_core.checkpoint import save_checkpoint
from lipmem_core.data import corpus
from lipmem_core.data.synth.build import main as synth_main
from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.errors import CheckpointError, CorpusError
from lipmem_core.evaluation import evaluate as E
from lipmem_core.evaluation import oracle as O
from lipmem_core.evaluation import results as R
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.model.syncnet import SyncNet
from lipmem_core.pixels import to_unit
from tests.tiny_model import tiny_config

# builds a corpus with espeak-ng and runs every row: ~45 s on a loaded 2-core machine
pytestmark = pytest.mark.slow

S = 8
CFG = tiny_config(img_size=64, face_widths=(8, 8, 16, 16, 16), sync_dim=16, sync_width=4)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread (and far faster on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = root / "corpus"
    assert synth_main(["--out", str(data), "--speakers", "3", "--utterances", "2", "--size", "64",
                       "--workers", "1", "--quiet", "--seed", "3"]) == 0  # fmt: skip
    torch.manual_seed(0)
    save_checkpoint(root / "gen", LipMemGenerator(CFG), kind="generator", metadata={"steps": 0})
    nomem = dataclasses.replace(CFG, use_memory=False)
    save_checkpoint(root / "gen-nomem", LipMemGenerator(nomem), kind="generator")
    save_checkpoint(root / "sync", SyncNet(CFG), kind="syncnet")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    trained = O.train_oracle(
        steps=1, batch=4, width=8, n_identities=1, val_identities=1, val_frames=5, log_every=0
    )
    torch.set_num_threads(before)
    O.save_oracle(trained, root / "oracle")
    return root, data


def _run(root, data, ckpt: str, out: str, extra=()) -> dict:
    argv = ["--checkpoint", str(root / ckpt), "--data", str(data), "--split", "test", "--out", str(root / out),
            "--syncnet", str(root / "sync"), "--oracle", str(root / "oracle"), "--quiet", *extra]  # fmt: skip
    assert E.main(argv) == 0
    text = (root / out).read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON
    return json.loads(text)


@pytest.fixture(scope="module")
def memory_results(setup):
    root, data = setup
    return _run(root, data, "gen", "memory.json")


def test_cli_writes_every_field(setup, memory_results):
    root, data = setup
    res = memory_results
    assert res["command"].startswith("python -m lipmem_core.evaluate --checkpoint ")
    assert {"created", "git", "checkpoint", "syncnet", "oracle", "data", "seed", "rows"} <= set(res)
    for key, judge in (("syncnet_sha256", "sync"), ("oracle_sha256", "oracle")):  # which weights measured
        assert res[key] == json.loads((root / judge / "config.json").read_text())["sha256"]
    assert res["checkpoint"]["model_config"]["n_slots"] == S
    manifest = corpus.read_manifest(data)
    test_rows = manifest[manifest["split"] == "test"]
    assert res["data"]["n_clips"] == len(test_rows) == 2
    assert res["data"]["n_frames"] == int(test_rows["frames"].sum())
    names = [r["name"] for r in res["rows"]]
    assert names == ["ground_truth", "model", "untrained"]
    for row in res["rows"][:2]:
        for key in ("psnr", "ssim", "psnr_mouth", "ssim_mouth", "lse_d", "lse_c", "offset_zero_share",
                    "offset_mean_abs", "mouth_mae"):  # fmt: skip
            assert row[key] is not None, (row["name"], key)
        assert set(row["mouth"]["mae"]) == set(MOUTH_PARAMS)
        assert len(row["per_clip"]) == 2
        assert all(-15 <= c["offset"] <= 15 for c in row["per_clip"])
    model = res["rows"][1]
    assert 0 < model["psnr"] < 60 and -1 < model["ssim"] < 1  # a random-init model: far from the truth
    for name in ("model", "untrained"):
        mem = next(r for r in res["rows"] if r["name"] == name)["memory"]
        assert mem["n_frames"] == res["data"]["n_frames"]
        assert mem["n_slots"] == S and 0 <= mem["pnmi"] <= 1
        assert mem["used_slots"] + mem["dead_slots"] == S


def test_reference_row_on_ground_truth(setup, memory_results):
    root, data = setup
    gt = memory_results["rows"][0]
    assert gt["psnr"] == "inf" and R.from_json_value(gt["psnr"]) == math.inf
    assert gt["psnr_mouth"] == "inf"
    assert gt["ssim"] == pytest.approx(1.0) and gt["ssim_mouth"] == pytest.approx(1.0)
    assert gt["memory"] is None
    # the mouth error of the reference row is the oracle's own error on the corpus frames
    oracle = O.load_oracle(root / "oracle")
    manifest = corpus.read_manifest(data)
    preds, truths = [], []
    for row in manifest[manifest["split"] == "test"].sort_values(["speaker", "utterance"]).itertuples():
        d = corpus.clip_dir(data, row)
        preds.append(O.predict_mouth(oracle, corpus.read_frames(d)))
        truths.append(corpus.read_mouth(d)[list(MOUTH_PARAMS)].to_numpy())
    own = O.mouth_error(np.concatenate(preds), np.concatenate(truths))
    assert gt["mouth_mae"] == pytest.approx(own["mae_mean"], rel=1e-6)
    for p in MOUTH_PARAMS:
        assert gt["mouth"]["mae"][p] == pytest.approx(own["mae"][p], rel=1e-6)
    assert "mouth_vs_gt_reading" not in gt


def test_mouth_error_against_the_oracle_reading_of_ground_truth(memory_results):
    """|gen - read(gt)| lies within |gen - truth| +- |read(gt) - truth| for every parameter."""
    gt, model = memory_results["rows"][0], memory_results["rows"][1]
    vs = model["mouth_vs_gt_reading"]
    for p in MOUTH_PARAMS:
        assert vs["mae"][p] <= model["mouth"]["mae"][p] + gt["mouth"]["mae"][p] + 1e-9
        assert vs["mae"][p] >= model["mouth"]["mae"][p] - gt["mouth"]["mae"][p] - 1e-9
        # both percentages divide by the same spread: the corpus's real parameters
        if model["mouth"]["mae_pct_std"][p] is None:  # a parameter constant in the tiny corpus
            assert vs["mae_pct_std"][p] is None
            continue
        ratio = vs["mae_pct_std"][p] / model["mouth"]["mae_pct_std"][p]
        assert ratio == pytest.approx(vs["mae"][p] / model["mouth"]["mae"][p], rel=1e-6)


def test_model_row_matches_the_pipeline(setup, memory_results):
    """The model row's addressing is what the inference pipeline returns for that clip."""
    root, data = setup
    from lipmem_core.checkpoint import load_checkpoint
    from lipmem_core.infer.pipeline import TalkingFacePipeline

    pipe = TalkingFacePipeline(load_checkpoint(root / "gen"), device="cpu")
    manifest = corpus.read_manifest(data)
    slots, phones = [], []
    for row in manifest[manifest["split"] == "test"].sort_values(["speaker", "utterance"]).itertuples():
        clip = E.load_clip(data, row, CFG.img_size)
        made = pipe.generate(clip.frames, clip.wav, face_is_crop=True)
        frames, addr = np.stack(made.crops), made.addressing
        assert frames.shape == clip.frames.shape and addr.shape == (len(frames), S)
        slots.append(addr.argmax(1))
        phones += clip.phones
    from lipmem_core.evaluation.metrics import slot_statistics

    expected = slot_statistics(phones, np.concatenate(slots), S).to_dict()
    got = memory_results["rows"][1]["memory"]
    assert got["pnmi"] == pytest.approx(expected["pnmi"]) and got["used_slots"] == expected["used_slots"]

    # A_lip from the clips' own frames, then its agreement with the pipeline's A_aud
    model = load_checkpoint(root / "gen").model.eval()
    lips = []
    for row in manifest[manifest["split"] == "test"].sort_values(["speaker", "utterance"]).itertuples():
        clip = E.load_clip(data, row, CFG.img_size)
        pix = to_unit(clip.frames)
        n = len(pix)
        for i in range(n):  # one window at a time, built by hand: frames i-2..i+2, upper half black
            window = pix[[min(max(j, 0), n - 1) for j in range(i - 2, i + 3)]].permute(3, 0, 1, 2).clone()
            window[:, :, : pix.shape[1] // 2] = 0.0
            with torch.inference_mode():
                lips.append(int(model.address_lips(window[None]).argmax()))
    agreement = float(np.mean(np.concatenate(slots) == np.asarray(lips)))
    assert memory_results["rows"][1]["address_agreement"] == pytest.approx(agreement)


def test_reference_other_draws_from_half_a_clip_away_and_is_labelled(setup, memory_results, tmp_path):
    """--reference other: the model row is what the pipeline draws with reference_shift = n // 2
    per clip; the ground-truth and memory rows (audio only) do not change; the file and the
    results page say which reference was used."""
    root, data = setup
    from lipmem_core.checkpoint import load_checkpoint
    from lipmem_core.evaluation.metrics import ssim
    from lipmem_core.infer.pipeline import TalkingFacePipeline

    other = _run(root, data, "gen", "memory-other.json", extra=["--reference", "other"])
    assert other["reference"] == "other" and memory_results["reference"] == "self"
    assert other["rows"][0] == memory_results["rows"][0]  # the real frames are the real frames
    assert other["rows"][1]["memory"] == memory_results["rows"][1]["memory"]
    assert other["rows"][1]["ssim"] != memory_results["rows"][1]["ssim"]
    pipe = TalkingFacePipeline(load_checkpoint(root / "gen"), device="cpu")
    manifest = corpus.read_manifest(data)
    row = manifest[manifest["split"] == "test"].sort_values(["speaker", "utterance"]).iloc[0]
    clip = E.load_clip(data, row, CFG.img_size)
    made = np.stack(
        pipe.generate(clip.frames, clip.wav, face_is_crop=True, reference_shift=len(clip.frames) // 2).crops
    )
    assert other["rows"][1]["per_clip"][0]["ssim"] == pytest.approx(ssim(made, clip.frames), rel=1e-6)
    out = tmp_path / "RESULTS.md"
    R.main([str(root / "memory.json"), str(root / "memory-other.json"), "--out", str(out)])
    text = out.read_text()
    assert (
        "gen (memory), reference: other (memory-other.json)" in text and "gen (memory) (memory.json)" in text
    )
    assert text.split("## Mouth shape")[0].count("| ground truth") == 1  # the same real frames: one row


def test_jaw_motion_ratio_compares_oracle_jaw_spread(memory_results):
    gt, model = memory_results["rows"][0], memory_results["rows"][1]
    for row in (gt, model):
        assert row["jaw_std"] == pytest.approx(np.mean([c["jaw_std"] for c in row["per_clip"]]))
    assert model["jaw_motion_ratio"] == pytest.approx(model["jaw_std"] / gt["jaw_std"])
    assert "jaw_motion_ratio" not in gt and "address_agreement" not in gt


def test_no_memory_checkpoint_has_no_memory_rows_and_results_page(setup, memory_results, tmp_path):
    root, data = setup
    res = _run(root, data, "gen-nomem", "nomem.json", extra=["--max-clips", "1"])
    assert [r["name"] for r in res["rows"]] == ["ground_truth", "model"]
    assert res["rows"][1]["memory"] is None and "no memory" in res["rows"][1]["label"]
    assert res["data"]["n_clips"] == 1

    out = tmp_path / "RESULTS.md"
    R.main([str(root / "memory.json"), str(root / "nomem.json"), "--out", str(out)])
    text = out.read_text()
    quality = text.split("## Mouth shape")[0]
    # nomem.json's real frames are one clip, another reference: it brings its own row
    assert quality.count("| ground truth") == 2 and "| ground truth (nomem.json) |" in quality
    assert "gen (memory) (memory.json)" in text and "gen-nomem (no memory) (nomem.json)" in text
    assert "untrained (random init) (memory.json), all frames" in text
    assert "gen (memory) (memory.json), speech frames" in text
    assert "| inf |" in text  # the reference PSNR
    assert res["command"] in text and memory_results["command"] in text
    assert "**Warning:** `nomem.json` was evaluated on other clips" in text  # --max-clips 1
    assert "## Mouth shape per parameter" in text and "| jaw |" not in quality
    mouth = text.split("## Mouth shape")[1].split("## Memory")[0]
    exact, reread = mouth.split("Against the oracle's reading")
    assert exact.count("| ground truth") == 2 and "| ground truth" not in reread  # GT vs its own reading is 0
    assert reread.count("(memory.json) |") == 1 and reread.count("(nomem.json) |") == 1


def test_clips_per_speaker_keeps_the_first_clips_of_every_speaker(setup, tmp_path):
    """--clips-per-speaker K: the first K clips (utterance order) of each speaker, scored as the
    whole-split run scored them; --max-clips then cuts that list."""
    root, _ = setup
    data = tmp_path / "corpus"  # 4 speakers: 2 in the train split, 2 clips each
    assert synth_main(["--out", str(data), "--speakers", "4", "--utterances", "2", "--size", "64",
                       "--workers", "1", "--quiet", "--seed", "3"]) == 0  # fmt: skip
    everything = E.evaluate(root / "gen", data, "train", progress=False)
    speakers = everything["data"]["speakers"]
    assert len(speakers) == 2 and everything["data"]["n_clips"] == 4
    firsts = [next(c for c in everything["data"]["clips"] if f"/{s}/" in c) for s in speakers]
    assert E.main(["--checkpoint", str(root / "gen"), "--data", str(data), "--split", "train", "--quiet",
                   "--out", str(tmp_path / "per-speaker.json"), "--clips-per-speaker", "1"]) == 0  # fmt: skip
    res = json.loads((tmp_path / "per-speaker.json").read_text())
    assert res["data"]["clips"] == firsts and res["data"]["speakers"] == speakers
    by_key = {c["clip"]: c for c in everything["rows"][1]["per_clip"]}
    for c in res["rows"][1]["per_clip"]:
        assert c["ssim"] == pytest.approx(by_key[c["clip"]]["ssim"], rel=1e-6)
    cut = E.evaluate(root / "gen", data, "train", progress=False, clips_per_speaker=1, max_clips=1)
    assert cut["data"]["clips"] == firsts[:1]


def test_errors_name_the_fix(setup, tmp_path):
    root, data = setup
    with pytest.raises(CorpusError, match="no clips in split"):
        E.evaluate(root / "gen", data, split="nosuch", progress=False)
    with pytest.raises(CheckpointError, match="needs a generator"):
        E.evaluate(root / "sync", data, progress=False)
    with pytest.raises(CheckpointError, match="mouth oracle"):
        O.load_oracle(root / "gen")
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(Exception, match="not a results.json"):
        R.load_results(bad)


def test_json_safe_handles_non_finite():
    assert E.json_safe({"a": [math.inf, -math.inf, math.nan, np.float32(1.5), np.int64(3)]}) == {
        "a": ["inf", "-inf", None, 1.5, 3]
    }


def test_mouth_strip_figure(setup, arctic_wav, tmp_path):
    """analysis.strips draws both strips (test clip, real speech) and never writes over an input."""
    from analysis import strips

    root, data = setup
    out = tmp_path / "strips.png"
    argv = ["--memory", str(root / "gen"), "--ablation", str(root / "gen-nomem"), "--data", str(data),
            "--audio", str(arctic_wav), "--text", strips.ARCTIC_TEXT, "--columns", "6"]  # fmt: skip
    assert strips.main([*argv, "--clip", "0", "--out", str(out)]) == 0
    image = cv2.imread(str(out))
    # two titled strips of three rows each: taller than two single rows of mouth crops
    assert image is not None and image.shape[0] > 6 * 43 and image.shape[1] > 6 * 62
    before = arctic_wav.read_bytes()
    assert strips.main([*argv, "--out", str(arctic_wav)]) == 2  # the recording it reads
    assert arctic_wav.read_bytes() == before
    assert strips.main([*argv, "--clip", "99", "--out", str(tmp_path / "x.png")]) == 2  # no such clip
    assert not (tmp_path / "x.png").exists()


def test_results_page_shows_figures_relative_to_the_page_and_refuses_missing_ones(
    memory_results, tmp_path, capsys
):
    """--figure embeds an image (the mouth strips) with a link that works from the page's own
    folder; a path that does not exist stops the command before anything is written."""
    page = tmp_path / "docs" / "RESULTS.md"
    figure = tmp_path / "assets" / "strips.png"
    figure.parent.mkdir()
    figure.write_bytes(b"\x89PNG")
    source = tmp_path / "memory.json"
    source.write_text(json.dumps(memory_results))
    R.main([str(source), "--out", str(page), "--figure", str(figure)])
    text = page.read_text()
    assert "## Figures" in text and "![strips](../assets/strips.png)" in text
    assert text.index("## Figures") < text.index("## Commands")
    with pytest.raises(SystemExit):
        R.main([str(source), "--out", str(tmp_path / "other.md"), "--figure", str(tmp_path / "none.png")])
    assert "no such figure" in capsys.readouterr().err and not (tmp_path / "other.md").exists()


def test_every_model_row_sits_below_the_reference_it_was_measured_against(memory_results, tmp_path):
    """A file measured against other real-frame figures (here: another SyncNet's LSE) brings its
    own ground-truth row, and the first reference comes back for a later file that uses it."""
    judged = json.loads(json.dumps(memory_results))
    judged["rows"][0]["lse_c"] += 0.1  # the ground truth as another SyncNet scores it
    paths = []
    for name, res in (("a.json", memory_results), ("judge.json", judged), ("b.json", memory_results)):
        (tmp_path / name).write_text(json.dumps(res))
        paths.append(str(tmp_path / name))
    R.main([*paths, "--out", str(tmp_path / "RESULTS.md")])
    quality = (tmp_path / "RESULTS.md").read_text().split("## Mouth shape")[0]
    order = [line.split(" | ")[0] for line in quality.splitlines() if line.startswith("| ") and "(" in line]
    assert order == [
        "| ground truth (a.json)", "| gen (memory) (a.json)",
        "| ground truth (judge.json)", "| gen (memory) (judge.json)",
        "| ground truth (b.json)", "| gen (memory) (b.json)",
    ]  # fmt: skip
