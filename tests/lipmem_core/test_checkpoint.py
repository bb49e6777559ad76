"""Checkpoints: bit-exact round trip, fp16, atomic replace, and clear errors for damaged files."""

from __future__ import annotations

import json

import pytest
import torch

from lipmem_core.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    export_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from lipmem_core.errors import CheckpointError
from lipmem_core.model.discriminator import QualityDiscriminator
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.model.syncnet import SyncNet
from tests.lipmem_core.model.test_model import tiny_inputs
from tests.tiny_model import tiny_config


@pytest.fixture
def trained_gen() -> LipMemGenerator:
    """A generator whose BatchNorm statistics moved away from their defaults."""
    torch.manual_seed(0)
    gen = LipMemGenerator(tiny_config())
    face, mel, lips = tiny_inputs()
    gen.train()(face, mel, lips)
    return gen.eval()


def test_round_trip_is_bit_exact(tmp_path, trained_gen):
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator", {"steps": 7, "data": "synthtalk"})
    assert sorted(p.name for p in path.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    loaded = load_checkpoint(path)
    assert loaded.kind == "generator" and loaded.metadata == {"steps": 7, "data": "synthtalk"}
    assert loaded.config == trained_gen.cfg and not loaded.model.training
    for (k, a), (k2, b) in zip(
        trained_gen.state_dict().items(), loaded.model.state_dict().items(), strict=True
    ):
        assert k == k2 and a.dtype == b.dtype and torch.equal(a, b), k
    face, mel, _ = tiny_inputs(1)
    assert torch.equal(trained_gen(face, mel).frames, loaded.model(face, mel).frames)
    # A path to a file inside the directory works too.
    assert load_checkpoint(path / CONFIG_NAME).kind == "generator"


def test_half_precision_is_smaller_and_loads_as_float32(tmp_path, trained_gen):
    full = save_checkpoint(tmp_path / "full", trained_gen, "generator")
    half = save_checkpoint(tmp_path / "half", trained_gen, "generator", dtype="float16")
    assert (half / WEIGHTS_NAME).stat().st_size < 0.6 * (full / WEIGHTS_NAME).stat().st_size
    model = load_checkpoint(half).model
    for k, v in model.state_dict().items():
        ref = trained_gen.state_dict()[k]
        assert v.dtype == ref.dtype, k
        if v.is_floating_point():
            torch.testing.assert_close(v, ref, atol=1e-2, rtol=1e-3)


def test_int8_is_a_quarter_and_stays_close(tmp_path, trained_gen):
    full = save_checkpoint(tmp_path / "full", trained_gen, "generator")
    small = save_checkpoint(tmp_path / "int8", trained_gen, "generator", dtype="int8")
    assert (small / WEIGHTS_NAME).stat().st_size < 0.4 * (full / WEIGHTS_NAME).stat().st_size
    assert json.loads((small / CONFIG_NAME).read_text())["dtype"] == "int8"
    model = load_checkpoint(small).model
    for k, v in model.state_dict().items():
        ref = trained_gen.state_dict()[k]
        assert v.dtype == ref.dtype and v.shape == ref.shape, k
        if v.is_floating_point() and v.dim() >= 2:
            # Per-output-channel absmax/127: each element within half a quantisation step.
            step = ref.reshape(ref.shape[0], -1).abs().amax(1) / 127
            err = (v - ref).reshape(ref.shape[0], -1).abs().amax(1)
            assert torch.all(err <= step * 0.5 + 1e-3), k
    face, mel, _ = tiny_inputs(1)
    torch.testing.assert_close(model(face, mel).frames, trained_gen(face, mel).frames, atol=0.1, rtol=0)


def test_unknown_dtype_is_refused(tmp_path, trained_gen):
    with pytest.raises(CheckpointError, match="unknown checkpoint dtype"):
        save_checkpoint(tmp_path / "x", trained_gen, "generator", dtype="int4")


@pytest.mark.parametrize("kind,cls", [("syncnet", SyncNet), ("discriminator", QualityDiscriminator)])
def test_other_kinds(tmp_path, kind, cls):
    net = cls(tiny_config()).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / kind, net, kind))
    assert isinstance(loaded.model, cls) and loaded.kind == kind


def test_kind_mismatch_on_save(tmp_path):
    with pytest.raises(CheckpointError, match="holds a LipMemGenerator"):
        save_checkpoint(tmp_path / "x", SyncNet(tiny_config()), "generator")
    with pytest.raises(CheckpointError, match="unknown checkpoint kind"):
        save_checkpoint(tmp_path / "x", SyncNet(tiny_config()), "vae")


def test_truncated_weights_fail(tmp_path, trained_gen):
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator")
    w = path / WEIGHTS_NAME
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or was modified"):
        load_checkpoint(path)


def test_tampered_weights_fail(tmp_path, trained_gen):
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator")
    w = path / WEIGHTS_NAME
    data = bytearray(w.read_bytes())
    data[-10] ^= 0x01  # one flipped bit in a tensor
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_wrong_shapes_or_keys_fail_even_with_a_matching_hash(tmp_path, trained_gen):
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator")
    cfg_file = path / CONFIG_NAME
    config = json.loads(cfg_file.read_text())
    del config["config_sha256"]  # as saved before config.json carried its own hash
    config["model_config"]["n_slots"] = 9  # memory tensors no longer fit
    cfg_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)
    config["model_config"]["n_slots"] = 8
    config["model_config"]["use_memory"] = False  # memory tensors become unexpected
    cfg_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_checkpoint(path)


def test_missing_and_damaged_files(tmp_path, trained_gen):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator")
    (path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    (path / CONFIG_NAME).unlink()
    with pytest.raises(CheckpointError, match=f"no {CONFIG_NAME}"):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path / "ckpt2", trained_gen, "generator")
    (path / WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(path)


def test_unknown_config_field(tmp_path, trained_gen):
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator")
    config = json.loads((path / CONFIG_NAME).read_text())
    config["model_config"]["warp_drive"] = True
    del config["config_sha256"]  # the field check applies to checkpoints from before the hash too
    (path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="warp_drive"):
        load_checkpoint(path)


def test_replace_existing_and_leave_no_temp_dirs(tmp_path, trained_gen):
    save_checkpoint(tmp_path / "ckpt", trained_gen, "generator", {"v": 1})
    save_checkpoint(tmp_path / "ckpt", trained_gen, "generator", {"v": 2})
    assert load_checkpoint(tmp_path / "ckpt").metadata == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_failed_save_keeps_the_old_checkpoint(tmp_path, trained_gen):
    save_checkpoint(tmp_path / "ckpt", trained_gen, "generator", {"v": 1})
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "ckpt", trained_gen, "generator", {"bad": object()})
    assert load_checkpoint(tmp_path / "ckpt").metadata == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_hub_id_offline_is_a_checkpoint_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="Hugging Face Hub"):
        load_checkpoint("lipmem-nonexistent-org/no-such-model")


def test_export_merges_metadata_and_shrinks(tmp_path, trained_gen):
    src = save_checkpoint(tmp_path / "run", trained_gen, "generator", {"steps": 3, "data": "x"})
    out = export_checkpoint(src, tmp_path / "ship", "int8", {"evaluation": {"psnr": 30.0}, "data": "y"})
    loaded = load_checkpoint(out)
    assert loaded.metadata["steps"] == 3 and loaded.metadata["data"] == "y"
    assert loaded.metadata["evaluation"] == {"psnr": 30.0}
    assert json.loads((out / CONFIG_NAME).read_text())["dtype"] == "int8"
    with pytest.raises(CheckpointError):
        export_checkpoint(tmp_path / "missing", tmp_path / "never", "int8")
    assert not (tmp_path / "never").exists()


def test_config_hash_covers_config_json_and_allows_non_finite_metadata(tmp_path, trained_gen):
    path = save_checkpoint(tmp_path / "ckpt", trained_gen, "generator", {"best_loss": float("inf")})
    assert load_checkpoint(path).metadata == {"best_loss": float("inf")}
    config = json.loads((path / CONFIG_NAME).read_text())
    config["model_config"]["kappa"] = 3.0  # same shapes, different model: only the hash notices
    (path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config_sha256"):
        load_checkpoint(path)
