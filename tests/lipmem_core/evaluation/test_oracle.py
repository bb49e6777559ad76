"""Mouth-shape oracle: input framing, data generation, error report, learning, save/load."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lipmem_core.data.synth.mouth import MOUTH_PARAMS
from lipmem_core.errors import CheckpointError
from lipmem_core.evaluation import oracle as O
from tests.tiny_corpus import make_tiny_corpus


def test_input_is_the_mouth_region_at_any_size():
    for size in (48, 64, 128, 160):
        x = O.oracle_input(np.zeros((2, size, size, 3), np.uint8))
        assert x.shape == (2, 3, *O.INPUT_HW)
        assert torch.all(x == -1.0)
    # a mark at the SynthTalk mouth centre (0.5 W, 0.72 H) is seen; one on the eyes is not
    img = np.zeros((1, 128, 128, 3), np.uint8)
    img[0, 90:95, 62:67] = 255
    assert O.oracle_input(img).max() > 0
    img[:] = 0
    img[0, 48:53, 40:45] = 255
    assert O.oracle_input(img).max() == -1.0
    with pytest.raises(ValueError, match="uint8"):
        O.oracle_input(np.zeros((2, 64, 64, 3), np.float32))


def test_face_crop_sees_the_lower_face_but_not_the_eyes():
    x = O.oracle_input(np.zeros((2, 160, 160, 3), np.uint8), "face")
    assert x.shape == (2, 3, *O.CROPS["face"][1])
    img = np.zeros((1, 128, 128, 3), np.uint8)
    img[0, 100:105, 20:25] = 255  # the jaw line at the cheek: outside the mouth box, inside the face crop
    assert O.oracle_input(img, "mouth").max() == -1.0
    assert O.oracle_input(img, "face").max() > 0
    img[:] = 0
    img[0, 48:53, 40:45] = 255  # an eye
    assert O.oracle_input(img, "face").max() == -1.0
    model = O.MouthOracle(width=8, crop="face")
    assert O.predict_mouth(model, np.zeros((3, 128, 128, 3), np.uint8)).shape == (3, 7)
    with pytest.raises(ValueError, match="crop"):
        O.MouthOracle(crop="eyes")


def test_jpeg_keeps_colours():
    """Encoded as BGR, as the corpus writes frames: a red lip stays red, not blue."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = 200  # R
    out = O.jpeg(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[..., 0].mean() > 190 and out[..., 2].mean() < 10


def test_model_output_range_and_size_budget():
    model = O.MouthOracle()
    y = model(torch.randn(3, 3, *O.INPUT_HW))
    assert y.shape == (3, len(MOUTH_PARAMS))
    assert torch.all((y >= 0) & (y <= 1))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params * 4 < 2 * 1024 * 1024  # < 2 MB in fp32


def test_random_phones_tile_and_mouths_in_range():
    rng = np.random.default_rng(0)
    phones = O.random_phones(rng, 2.0)
    assert phones[0].start == 0.0 and phones[-1].end == pytest.approx(2.0)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:], strict=False))
    m = O.sample_mouths(rng, 101)
    assert m.shape == (101, 7) and m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1
    assert m.std(axis=0).min() > 0.1  # every parameter varies


def test_sample_mouths_from_a_corpus_speech_table():
    rng = np.random.default_rng(1)
    table = rng.uniform(0, 1, (5, 7)).astype(np.float32)
    m = O.sample_mouths(rng, 20, table, uniform_share=0.0)
    assert all(any(np.array_equal(row, t) for t in table) for row in m)  # every row is from the table
    m = O.sample_mouths(rng, 20, table, uniform_share=0.5)
    assert sum(any(np.array_equal(row, t) for t in table) for row in m) == 10


def test_render_stream_is_deterministic_and_labels_match_renders():
    a_frames, a_mouths = O.RenderStream(2, seed=5).batch(4)
    b_frames, b_mouths = O.RenderStream(2, seed=5).batch(4)
    np.testing.assert_array_equal(a_frames, b_frames)
    np.testing.assert_array_equal(a_mouths, b_mouths)
    assert a_frames.shape == (4, 128, 128, 3) and a_frames.dtype == np.uint8
    # wide-open jaw vs sealed lips must look different in the mouth region
    stream = O.RenderStream(1, seed=1)
    r = stream.renderers[0]
    open_ = r.render(np.array([1, 0.3, 0, 0, 0, 0.5, 0.1])).copy()
    shut = r.render(np.array([0.05, 0.2, 0, 1, 0, 0, 0])).copy()
    diff = np.abs(O.oracle_input(open_[None]) - O.oracle_input(shut[None]))
    assert diff.mean() > 0.02


def test_fresh_identities_replace_pool_members():
    stream = O.RenderStream(3, seed=2, fresh=1)
    before = [r.identity for r in stream.renderers]
    for _ in range(4):
        stream.batch(2)
    after = [r.identity for r in stream.renderers]
    assert len(after) == 3 and after != before
    assert set(after) - set(before)  # new faces arrived
    again = O.RenderStream(3, seed=2, fresh=1)
    for _ in range(4):
        again.batch(2)
    assert [r.identity for r in again.renderers] == after  # deterministic


def test_validation_set_uses_unseen_identities():
    frames, mouths = O.validation_set(2, 10, seed=0)
    assert frames.shape == (20, 128, 128, 3) and mouths.shape == (20, 7)
    train_ids = {r.identity for r in O.RenderStream(3, seed=0).renderers}
    val_rng = np.random.default_rng(0 + O._VAL_SEED_OFFSET)
    assert O.Identity.sample(val_rng) not in train_ids


def test_mouth_error_exact_values():
    truth = np.zeros((4, 7))
    truth[:, 0] = [0, 1, 0, 1]  # jaw std 0.5
    pred = truth.copy()
    pred[:, 0] += 0.1
    err = O.mouth_error(pred, truth)
    assert err["mae"]["jaw"] == pytest.approx(0.1)
    assert err["mae_pct_std"]["jaw"] == pytest.approx(20.0)
    assert math.isnan(err["mae_pct_std"]["spread"])  # constant truth: no spread to compare with
    assert err["mae_mean"] == pytest.approx(0.1 / 7)
    # predicting the mean is 100 % of the std for a symmetric two-valued parameter
    mean_pred = truth.copy()
    mean_pred[:, 0] = 0.5
    assert O.mouth_error(mean_pred, truth)["mae_pct_std"]["jaw"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        O.mouth_error(np.zeros((3, 6)), np.zeros((3, 6)))


def test_mouth_correlation_ignores_offset_and_gain_not_timing():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(50, 7))
    assert O.mouth_correlation(2.0 * truth + 3.0, truth) == pytest.approx(np.ones(7))
    assert O.mouth_correlation(-truth, truth) == pytest.approx(-np.ones(7))
    late = np.roll(truth, 5, axis=0)  # the same motion five frames late
    assert np.all(np.abs(O.mouth_correlation(late, truth)) < 0.5)
    with pytest.raises(ValueError):
        O.mouth_correlation(truth[:, :6], truth[:, :6])
    with pytest.raises(ValueError):
        O.mouth_correlation(truth[:49], truth)


def test_mouth_error_spread_of_sets_only_the_denominator():
    """Comparing two readings divides by the real parameters' std, not by the readings' std."""
    rng = np.random.default_rng(0)
    reading, other = rng.uniform(0, 1, (50, 7)), rng.uniform(0, 1, (50, 7))
    real = rng.uniform(0, 0.5, (50, 7))
    err = O.mouth_error(other, reading, spread_of=real)
    plain = O.mouth_error(other, reading)
    assert err["mae"] == plain["mae"]
    for i, p in enumerate(MOUTH_PARAMS):
        assert err["mae_pct_std"][p] == pytest.approx(100 * err["mae"][p] / real[:, i].std())
    with pytest.raises(ValueError):
        O.mouth_error(other, reading, spread_of=real[:10])


@pytest.fixture
def one_thread():
    """A width-8 net is faster on one thread, and far faster on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_training_reduces_error_on_fixed_batch(one_thread):
    torch.manual_seed(0)
    frames, mouths = O.RenderStream(2, seed=3).batch(8)
    model = O.MouthOracle(width=8)
    x, y = O.oracle_input(frames), torch.from_numpy(mouths)
    before = O.mouth_error(O.predict_mouth(model, frames), mouths)["mae_mean"]
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(40):
        model.train()
        loss = torch.nn.functional.l1_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = O.mouth_error(O.predict_mouth(model, frames), mouths)["mae_mean"]
    assert after < 0.6 * before


@pytest.mark.parametrize("crop", ["mouth", "face"])
def test_train_save_load_roundtrip(tmp_path, one_thread, crop):
    result = O.train_oracle(
        steps=2,
        batch=4,
        width=8,
        crop=crop,
        n_identities=1,
        fresh=1,
        val_identities=1,
        val_frames=6,
        log_every=0,
    )
    assert result.steps == 2
    assert set(result.val["mae"]) == set(MOUTH_PARAMS)
    result.real = {"corpus": "c", "split": "val", "clips": "all", "frames": 6, "error": result.val}
    out = tmp_path / "oracle"
    O.save_oracle(result, out, command=["python", "-m", "lipmem_core.oracle", "--steps", "2"])
    loaded = O.load_oracle(out)
    assert loaded.crop == crop
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        O.predict_mouth(loaded, frames), O.predict_mouth(result.model, frames), atol=1e-6
    )
    meta = json.loads((out / "config.json").read_text())
    assert meta["metadata"]["val"]["mae_mean"] == pytest.approx(result.val["mae_mean"])
    assert meta["metadata"]["real"]["split"] == "val"
    assert meta["oracle_config"]["input_hw"] == list(O.CROPS[crop][1])
    assert sum(f.stat().st_size for f in out.iterdir()) < 2 * 1024 * 1024


def test_a_render_worker_trains_the_same_oracle_as_rendering_in_process(one_thread):
    """Rendering ahead in a worker process changes when batches are made, not which."""
    kw = dict(steps=3, batch=3, width=8, n_identities=2, fresh=1, val_identities=1, val_frames=2, log_every=0)
    here = O.train_oracle(**kw)
    ahead = O.train_oracle(**kw, render_workers=1)
    for (name, a), b in zip(here.model.state_dict().items(), ahead.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_several_render_workers_do_not_repeat_each_others_batches():
    loader = torch.utils.data.DataLoader(
        O.RenderBatches(O.RenderStream(2, seed=4, fresh=1), 3, seed=4),
        batch_size=None,
        collate_fn=O._as_is,
        num_workers=2,
    )
    batches = iter(loader)
    (f0, m0), (f1, m1) = next(batches), next(batches)  # one from each worker
    assert f0.dtype == np.uint8 and f0.shape == (3, O.ORACLE_SIZE, O.ORACLE_SIZE, 3)
    assert not np.array_equal(m0, m1) and not np.array_equal(f0, f1)


def test_cpu_minutes_budget_stops_training(tmp_path, one_thread):
    result = O.train_oracle(
        cpu_minutes=0.002,
        minutes=1.0,
        batch=2,
        width=8,
        n_identities=1,
        val_identities=1,
        val_frames=2,
        log_every=0,
    )
    assert 1 <= result.steps < 200 and result.cpu_seconds >= 0.12
    out = O.save_oracle(result, tmp_path / "o")
    meta = json.loads((out / "config.json").read_text())["metadata"]
    assert meta["cpu_minutes"] == round(result.cpu_seconds / 60, 2)
    with pytest.raises(ValueError, match="budget"):
        O.train_oracle()


def test_a_mirrored_oracle_averages_its_readings_of_the_frame_and_its_mirror_image(tmp_path, one_thread):
    torch.manual_seed(0)
    plain = O.MouthOracle(width=8).eval()
    mirrored = O.MouthOracle(width=8, mirror=True).eval()
    mirrored.load_state_dict(plain.state_dict())
    x = torch.rand(3, 3, *O.INPUT_HW) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(mirrored(x), 0.5 * (plain(x) + plain(x.flip(-1))))
        assert not torch.allclose(mirrored(x), plain(x))
        mirrored.train(), plain.train()  # training reads each frame once, as before
        torch.testing.assert_close(mirrored(x), plain(x))
    result = O.train_oracle(
        steps=1, batch=2, width=8, n_identities=1, val_identities=1, val_frames=2, log_every=0, mirror=True
    )
    loaded = O.load_oracle(O.save_oracle(result, tmp_path / "m"))
    assert loaded.mirror
    frames = np.random.default_rng(1).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        O.predict_mouth(loaded, frames), O.predict_mouth(result.model, frames), atol=1e-6
    )


def test_load_oracle_reads_configs_without_a_crop(tmp_path, one_thread):
    """Oracles written before the crop and mirror options read the mouth box, once."""
    result = O.train_oracle(
        steps=1, batch=2, width=8, n_identities=1, val_identities=1, val_frames=2, log_every=0
    )
    out = O.save_oracle(result, tmp_path / "old")
    config = json.loads((out / "config.json").read_text())
    del config["oracle_config"]["crop"]
    del config["oracle_config"]["mirror"]
    (out / "config.json").write_text(json.dumps(config))
    assert O.load_oracle(out).crop == "mouth"
    assert not O.load_oracle(out).mirror


def test_real_error_reads_a_split_and_stores_no_path(tmp_path, one_thread, capsys):
    clips = [
        ("train", "s0", "u0", 4),
        ("val", "s1", "u0", 5),
        ("val", "s1", "u1", 3),
        ("test", "s2", "u0", 4),
    ]
    root = make_tiny_corpus(tmp_path / "mini", clips, size=64)
    rng = np.random.default_rng(0)
    truth = {}
    for split, spk, utt, n in clips:
        mouths = rng.uniform(0, 1, (n, 7)).round(4)
        truth[(split, utt)] = mouths
        lines = ["frame," + ",".join(MOUTH_PARAMS) + ",phone"]
        lines += [f"{k}," + ",".join(f"{v:.4f}" for v in m) + ",sil" for k, m in enumerate(mouths)]
        (root / split / spk / utt / "mouth.csv").write_text("\n".join(lines) + "\n")
    frames, mouths = O.corpus_frames(root, "val")
    assert frames.shape == (8, 128, 128, 3)  # 64 px frames brought to the oracle's size
    np.testing.assert_allclose(
        mouths, np.concatenate([truth[("val", "u0")], truth[("val", "u1")]]), atol=1e-6
    )
    assert len(O.corpus_frames(root, "val", max_clips=1)[0]) == 5
    clips = O.corpus_clips(root, "val")  # the same frames, clip by clip, with their speaker
    assert [(spk, len(f), len(m)) for spk, f, m in clips] == [("s1", 5, 5), ("s1", 3, 3)]
    np.testing.assert_array_equal(np.concatenate([f for _, f, _ in clips]), frames)
    np.testing.assert_allclose(O.corpus_mouths(root, "train"), truth[("train", "u0")], atol=1e-6)
    model = O.MouthOracle(width=8)
    real = O.real_error(model, root, "val")
    assert real["corpus"] == "mini" and real["split"] == "val" and real["frames"] == 8
    expected = O.mouth_error(O.predict_mouth(model, frames), mouths)
    assert real["error"]["mae_mean"] == pytest.approx(expected["mae_mean"])
    assert str(tmp_path) not in json.dumps(real)
    with pytest.raises(ValueError, match="split"):
        O.corpus_frames(root, "nope")
    O.save_oracle(O.OracleTraining(model, 0, 0.0, {}), tmp_path / "o")
    O.main(["--measure", str(tmp_path / "o"), "--real-data", str(root), "--real-split", "test"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "test" and printed["frames"] == 4

    # --measure with --out re-saves the same weights, read as asked (here mirrored), with the new
    # measurement and the training command kept; the copy is measured again the same way
    trained = O.train_oracle(
        steps=1, batch=2, width=8, n_identities=1, val_identities=1, val_frames=2, log_every=0
    )
    O.save_oracle(trained, tmp_path / "t", command=["python", "-m", "lipmem_core.oracle", "--steps", "1"])
    O.main(["--measure", str(tmp_path / "t"), "--mirror", "--out", str(tmp_path / "m"), "--real-data", str(root),
            "--real-split", "test", "--val-identities", "1"])  # fmt: skip
    source = json.loads((tmp_path / "t" / "config.json").read_text())
    copy = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (
        copy["sha256"] == source["sha256"]
        and copy["oracle_config"]["mirror"]
        and O.load_oracle(tmp_path / "m").mirror
    )
    meta = copy["metadata"]
    assert meta["command"] == source["metadata"]["command"] and meta["steps"] == 1
    assert "--mirror" in meta["measured_by"] and str(tmp_path) not in json.dumps(copy)
    mirrored = O.load_oracle(tmp_path / "t")
    mirrored.mirror = True
    assert meta["real"]["split"] == "test"
    assert meta["real"]["error"]["mae_mean"] == pytest.approx(
        O.real_error(mirrored, root, "test")["error"]["mae_mean"]
    )


def test_stored_command_has_no_machine_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert O._portable(str(tmp_path / "ckpt" / "oracle")) == "ckpt/oracle"
    assert O._portable("/somewhere/else/synthtalk-v2") == "$DATA/synthtalk-v2"
    assert O._portable("--minutes") == "--minutes" and O._portable("rel/dir") == "rel/dir"


def test_load_oracle_rejects_missing_and_wrong_kind(tmp_path):
    with pytest.raises(CheckpointError):
        O.load_oracle(tmp_path / "nope")
