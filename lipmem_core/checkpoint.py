"""Checkpoints: a directory with config.json + model.safetensors. No pickle anywhere.

config.json = {"format": 1, "kind": "generator" | "syncnet" | "discriminator",
               "model_config": ModelConfig.to_dict(), "metadata": {...},
               "dtype": "float32" | "float16" | "int8", "sha256": <hex digest of model.safetensors>}

dtype "int8" keeps shipped checkpoints small: every float weight matrix/kernel is stored as int8
with one float32 scale per output channel (symmetric, absmax / 127) under "<name>:scale", other
float tensors (biases, norms, statistics) as float16. Loading dequantises to float32.

The model's constructor takes exactly the stored ModelConfig, so a checkpoint rebuilds itself.
Saving writes a temporary sibling directory and renames it into place, so a crash never leaves
a half-written checkpoint under the final name. Loading is strict: keys, shapes and the sha256
must all match, otherwise CheckpointError says what is wrong.

config.json is covered too: "config_sha256" is the sha256 of its other fields (canonical JSON),
and model_config's types and ranges (INT_RANGES, FLOAT_RANGES, MAX_PARAMETERS) are checked
before a model is built, so a damaged file can never ask for a petabyte allocation. A local
path that does not exist is reported as missing; only "owner/name@COMMIT" is fetched from the
Hugging Face Hub, at that pinned commit.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from lipmem_core.config import ModelConfig
from lipmem_core.errors import CheckpointError
from lipmem_core.model.discriminator import QualityDiscriminator
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.model.syncnet import SyncNet
from lipmem_core.provenance import portable

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
KINDS: dict[str, type[nn.Module]] = {
    "generator": LipMemGenerator,
    "syncnet": SyncNet,
    "discriminator": QualityDiscriminator,
}
DTYPES = ("float32", "float16", "int8")
SCALE_SUFFIX = ":scale"  # ':' never occurs in a PyTorch parameter name
_INT8_MIN_NUMEL = 1024  # smaller tensors gain nothing from int8
# A Hub id is "owner/name@revision"; the revision must be a full commit hash, so what is
# loaded can never change under the same name (a branch or tag can be moved).
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[^/]*))?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
CONFIG_SHA_KEY = "config_sha256"  # sha256 of config.json's other fields (see config_digest)
# Largest model a config.json may ask for, checked on PyTorch's "meta" device (no memory)
# before the real model is built: 250 M parameters = 1 GB in float32 (the paper preset has 51 M).
MAX_PARAMETERS = 250_000_000
# Integer fields of ModelConfig and their accepted ranges (tuples: each element). A config.json
# outside them is refused before anything is built; the ranges are far beyond any sensible model.
INT_RANGES: dict[str, tuple[int, int]] = {
    "img_size": (16, 1024),
    "n_frames": (1, 64),
    "mel_bins": (1, 512),
    "mel_window": (1, 256),
    "audio_context": (0, 16),
    "dim": (1, 8192),
    "n_slots": (1, 65536),
    "face_widths": (1, 8192),
    "stem_stride": (1, 2),
    "enc_res": (0, 16),
    "dec_res": (0, 16),
    "audio_width": (1, 8192),
    "lip_width": (1, 8192),
    "disc_width": (1, 8192),
    "sync_dim": (1, 8192),
    "sync_width": (1, 8192),
}
FLOAT_RANGES: dict[str, tuple[float, float]] = {"kappa": (0.0, 1e4), "fusion_dropout": (0.0, 1.0)}


@dataclass
class LoadedCheckpoint:
    """A loaded checkpoint: the model is in eval mode, in float32, on the requested device."""

    kind: str
    model: nn.Module
    config: ModelConfig
    metadata: dict[str, Any]
    path: Path


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    kind: str,
    metadata: dict[str, Any] | None = None,
    dtype: str = "float32",
) -> Path:
    """Write `model` (which has a `.cfg` ModelConfig) as a checkpoint directory; returns its path.

    dtype "float16" halves the file, "int8" quarters it (per-channel scales; see the module
    docstring); loading casts back to float32. An existing checkpoint at `directory` is replaced
    only once the new one is complete.
    """
    if dtype not in DTYPES:
        raise CheckpointError(f"unknown checkpoint dtype {dtype!r}; use one of {DTYPES}")
    if kind not in KINDS:
        raise CheckpointError(f"unknown checkpoint kind {kind!r}; use one of {sorted(KINDS)}")
    if not isinstance(model, KINDS[kind]):
        raise CheckpointError(
            f"a {kind!r} checkpoint holds a {KINDS[kind].__name__}, got {type(model).__name__}"
        )
    cfg: ModelConfig = model.cfg  # type: ignore[assignment]
    state: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu")
        if dtype == "int8" and t.is_floating_point() and t.dim() >= 2 and t.numel() >= _INT8_MIN_NUMEL:
            state[name], state[name + SCALE_SUFFIX] = _quantize_int8(t)
            continue
        if dtype != "float32" and t.is_floating_point():
            t = t.to(torch.float16)
        state[name] = t.contiguous()
    blob = save_safetensors_bytes(state, metadata={"format": "pt", "kind": kind})
    config = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "model_config": cfg.to_dict(),
        "metadata": portable(metadata or {}),  # no absolute machine paths (lipmem_core.provenance)
        "dtype": dtype,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    try:
        config[CONFIG_SHA_KEY] = config_digest(config)
        config_text = json.dumps(config, indent=2, sort_keys=True)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint metadata must be JSON-serialisable: {exc}") from exc

    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_synced(tmp / WEIGHTS_NAME, blob)
        _write_synced(tmp / CONFIG_NAME, config_text.encode())
        if final.exists():
            # Directories cannot be replaced atomically: move the old one aside first, so the
            # final name always holds either the complete old or the complete new checkpoint.
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _quantize_int8(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: (C_out, ...) -> int8 of the same shape, scales (C_out,)."""
    rows = t.float().reshape(t.shape[0], -1)  # (C_out, fan_in)
    scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127.0  # (C_out,)
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(t.shape).contiguous(), scale.contiguous()


def _dequantize(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold every "<name>:scale" back into its int8 tensor -> float32 (other tensors untouched)."""
    out = {k: v for k, v in state.items() if not k.endswith(SCALE_SUFFIX)}
    for key, scale in state.items():
        if not key.endswith(SCALE_SUFFIX):
            continue
        name = key[: -len(SCALE_SUFFIX)]
        q = out.get(name)
        if q is None or q.dtype != torch.int8 or scale.shape != q.shape[:1]:
            raise CheckpointError(f"int8 tensor {name} and its scale do not match: the file is damaged")
        shape = (-1,) + (1,) * (q.dim() - 1)
        out[name] = q.float() * scale.float().reshape(shape)
    return out


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of config.json's fields other than CONFIG_SHA_KEY, as canonical JSON (sorted
    keys, no whitespace), so reformatting the file keeps it valid and changing a value does not."""
    rest = {k: v for k, v in config.items() if k != CONFIG_SHA_KEY}
    # NaN/Infinity are kept as json writes them (training metadata may hold an inf loss).
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _looks_local(text: str) -> bool:
    """True for what can only be meant as a path: explicit (./, ../, /, ~, a backslash), more
    than one '/', a file name, or a first component that exists here (`checkpoints/x`)."""
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") != 1:
        return True
    first, _, last = text.partition("/")
    return Path(first).exists() or last in (CONFIG_NAME, WEIGHTS_NAME)


def _missing_local(p: Path) -> CheckpointError:
    """A CheckpointError for a local path that does not exist, naming close siblings."""
    parent = p.parent if str(p.parent) else Path(".")
    hint = ""
    if parent.is_dir():
        siblings = sorted(d.name for d in parent.iterdir() if (d / CONFIG_NAME).is_file())
        close = difflib.get_close_matches(p.name, siblings, n=3, cutoff=0.6)
        if close:
            hint = f"; did you mean {', '.join(str(parent / c) for c in close)}?"
        elif siblings:
            hint = f"; {parent} holds {', '.join(siblings[:8])}"
    return CheckpointError(
        f"no checkpoint at {str(p)!r}: give a directory holding {CONFIG_NAME} and {WEIGHTS_NAME}{hint}"
    )


def _resolve(path_or_hub_id: str | Path) -> Path:
    """A local checkpoint directory (or a file inside it), else a Hugging Face Hub snapshot.

    Anything that looks like a path is treated as one (and reported missing when absent);
    only "owner/name@COMMIT" goes to the Hub, at that pinned commit.
    """
    p = Path(path_or_hub_id)
    if p.is_file() and p.name in (CONFIG_NAME, WEIGHTS_NAME):
        return p.parent
    if p.is_dir():
        return p
    text = str(path_or_hub_id)
    match = _HUB_ID.match(text)
    if p.exists() or match is None or _looks_local(text):
        raise _missing_local(p)
    repo, revision = match["repo"], match["revision"]
    if revision is None or not _COMMIT.match(revision):
        raise CheckpointError(
            f"{text!r} is not a local directory; as a Hugging Face Hub id it needs a pinned "
            f"revision, {repo}@COMMIT with the full 40-hex commit id, so the weights cannot change "
            "under the same name"
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(repo_id=repo, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME])
        )
    except Exception as exc:  # offline, missing repo, auth: all end the same way for the user
        raise CheckpointError(
            f"{text!r} is not a local directory and could not be fetched from the Hugging Face Hub "
            f"({type(exc).__name__}). Check the path, or download the checkpoint while online."
        ) from exc


KIND_NAMES = {"generator": "a generator", "syncnet": "a SyncNet", "discriminator": "a discriminator"}


def read_config(path_or_hub_id: str | Path, kind: str | None = None) -> dict[str, Any]:
    """A checkpoint's config.json, verified (JSON, its `config_sha256`, a known kind) without
    loading the weights; `kind` is checked when given (see `load_checkpoint`)."""
    directory = _resolve(path_or_hub_id)
    config = _read_config(directory)
    check_kind(config["kind"], kind, path_or_hub_id)
    return config


def check_kind(found: str, needed: str | None, where: str | Path) -> None:
    """The one check that a checkpoint (`found`: its kind) is of the kind its user needs."""
    if needed is None or found == needed:
        return
    if needed not in KINDS:
        raise ValueError(f"unknown checkpoint kind {needed!r}; use one of {sorted(KINDS)}")
    raise CheckpointError(
        f"{where} is {KIND_NAMES[found]} checkpoint; this needs {KIND_NAMES[needed]} checkpoint"
    )


def _read_config(directory: Path) -> dict[str, Any]:
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_NAME}: not a LipMem checkpoint directory")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({exc}): the file is damaged") from exc
    if not isinstance(config, dict) or config.get("kind") not in KINDS:
        raise CheckpointError(f"{cfg_path} has no valid 'kind' (one of {sorted(KINDS)})")
    for key in ("model_config", "sha256"):
        if key not in config:
            raise CheckpointError(f"{cfg_path} lacks {key!r}: re-save the model with save_checkpoint")
    # Checkpoints saved before config_sha256 existed carry none; every checkpoint saved since
    # (and every shipped one) does, so an edited or damaged config.json is caught here.
    stored = config.get(CONFIG_SHA_KEY)
    if stored is not None and stored != config_digest(config):
        raise CheckpointError(
            f"{cfg_path} does not match its {CONFIG_SHA_KEY}: the file was modified or damaged; "
            "copy the checkpoint again"
        )
    return config


def _inside_preset_envelope(cfg: ModelConfig) -> bool:
    """True when no size field exceeds the larger of the `paper` and `cpu` presets' values
    (face_widths: at most as many stages, each at most the widest). Parameter counts only grow
    with these fields, and the envelope itself stays far below MAX_PARAMETERS
    (docs/ARCHITECTURE.md "Measured figures"), so such a config needs no parameter count."""
    presets = (ModelConfig.paper(), ModelConfig.cpu())
    for name in INT_RANGES:
        value = getattr(cfg, name)
        limits = [getattr(p, name) for p in presets]
        if isinstance(value, tuple):
            if len(value) > max(map(len, limits)) or max(value) > max(max(t) for t in limits):
                return False
        elif value > max(limits):
            return False
    return True


def _model_config(config: dict[str, Any], cfg_path: Path) -> ModelConfig:
    """The ModelConfig of config.json, its types and ranges checked before anything is built."""
    fields = config["model_config"]
    if not isinstance(fields, dict):
        raise CheckpointError(f"{cfg_path}: 'model_config' must be an object")
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for name, value in fields.items():
        if name not in defaults:
            continue  # ModelConfig.from_dict names unknown fields
        default = defaults[name]
        ok = True
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif isinstance(default, tuple):
            ok = (
                isinstance(value, list)
                and bool(value)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
        if not ok:
            raise CheckpointError(
                f"{cfg_path}: model_config.{name} = {json.dumps(value)[:40]} has the wrong type "
                f"(expected {type(default).__name__} like {json.dumps(default)}): the file is damaged"
            )
        lo, hi = INT_RANGES.get(name) or FLOAT_RANGES.get(name) or (None, None)
        values = value if isinstance(value, list) else [value]
        if lo is not None and not all(lo <= v <= hi for v in values):
            raise CheckpointError(
                f"{cfg_path}: model_config.{name} = {json.dumps(value)[:40]} is outside [{lo}, {hi}]: "
                "the file is damaged"
            )
    try:
        model_cfg = ModelConfig.from_dict(fields)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from exc
    if _inside_preset_envelope(model_cfg):
        return model_cfg
    # Larger than both presets somewhere: count the parameters on the meta device (shapes
    # only, no memory) before allocating. Not done for every load because PyTorch's first
    # meta-device operation is slow (it imports its decompositions; docs/ARCHITECTURE.md "Measured figures").
    try:
        with torch.device("meta"):
            probe = KINDS[config["kind"]](model_cfg)
    except Exception as exc:  # an inconsistent combination of fields the constructor rejects
        raise CheckpointError(
            f"{cfg_path}: its model_config does not describe a buildable {config['kind']} "
            f"({type(exc).__name__}: {exc}): the file is damaged"
        ) from exc
    n_params = sum(t.numel() for t in (*probe.parameters(), *probe.buffers()))
    if n_params > MAX_PARAMETERS:
        raise CheckpointError(
            f"{cfg_path}: its model_config asks for {n_params / 1e6:,.0f} M parameters, more than "
            f"the {MAX_PARAMETERS / 1e6:.0f} M LipMem loads: the file is damaged or not a LipMem model"
        )
    return model_cfg


def load_checkpoint(
    path_or_hub_id: str | Path, device: str | torch.device = "cpu", *, kind: str | None = None
) -> LoadedCheckpoint:
    """Load a checkpoint directory (or a Hub repo id) -> LoadedCheckpoint with the model in eval mode.

    `kind` ("generator", "syncnet", "discriminator"): the kind the caller needs, checked from
    config.json before anything is built. Raises CheckpointError for a missing directory or
    file, damaged JSON, another kind, an unknown config field, a truncated or modified weights
    file (sha256 mismatch), or missing / unexpected / mis-shaped tensors.
    """
    directory = _resolve(path_or_hub_id)
    config = _read_config(directory)
    check_kind(config["kind"], kind, path_or_hub_id)
    model_cfg = _model_config(config, directory / CONFIG_NAME)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_NAME}: the checkpoint is incomplete")
    blob = weights.read_bytes()
    if hashlib.sha256(blob).hexdigest() != config["sha256"]:
        raise CheckpointError(
            f"{weights} does not match the sha256 in {CONFIG_NAME}: the file is truncated or was modified; "
            "copy the checkpoint again"
        )
    try:
        state = load_safetensors_bytes(blob)
    except Exception as exc:  # safetensors raises its own error type on malformed headers
        raise CheckpointError(f"{weights} is not a readable safetensors file ({exc})") from exc
    state = _dequantize(state)
    model = KINDS[config["kind"]](model_cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights} does not fit a {config['kind']} built from its config: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for name, t in state.items():
        if t.shape != expected[name].shape:
            raise CheckpointError(
                f"{weights}: tensor {name} has shape {tuple(t.shape)}, the model needs {tuple(expected[name].shape)}"
            )
        state[name] = t.to(expected[name].dtype)  # float16 files come back as float32
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return LoadedCheckpoint(
        kind=config["kind"],
        model=model,
        config=model_cfg,
        metadata=config.get("metadata", {}),
        path=directory,
    )


def export_checkpoint(
    source: str | Path,
    destination: str | Path,
    dtype: str = "int8",
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Re-save a (training) checkpoint for shipping: smaller dtype, metadata merged in.

    The model is loaded (and so verified) first; `extra_metadata` keys override the stored ones.
    """
    loaded = load_checkpoint(source)
    metadata = {**loaded.metadata, **(extra_metadata or {})}
    metadata["exported_from"] = {"path": str(Path(source)), "dtype": dtype}
    return save_checkpoint(destination, loaded.model, loaded.kind, metadata, dtype=dtype)


def _main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m lipmem_core.checkpoint",
        description="Export a training checkpoint for shipping (int8/float16 weights, merged metadata).",
    )
    p.add_argument("source", help="checkpoint directory, e.g. runs/lipmem/checkpoint")
    p.add_argument("destination", help="new checkpoint directory, e.g. checkpoints/lipmem-synthtalk")
    p.add_argument("--dtype", choices=DTYPES, default="int8")
    p.add_argument("--metadata", type=Path, help="JSON file whose keys are merged into the metadata")
    args = p.parse_args(argv)
    extra = json.loads(args.metadata.read_text()) if args.metadata else None
    try:
        out = export_checkpoint(args.source, args.destination, args.dtype, extra)
    except CheckpointError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(f"wrote {out} ({(out / WEIGHTS_NAME).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    _main()
