"""Command-line options shared by `train_syncnet` and `train`, and the setup they share."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from lipmem_core.config import LossWeights, ModelConfig, TrainConfig
from lipmem_core.train.distributed import DistEnv, init_distributed, seed_everything
from lipmem_core.train.loop import LoopConfig


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--data", type=Path, required=True, help="corpus root (SynthTalk layout)")
    p.add_argument("--out", type=Path, required=True, help="run directory; re-run to resume")
    p.add_argument("--preset", choices=["cpu", "paper"], default="cpu", help="model + training preset")
    p.add_argument("--steps", type=int, help="stop after this many optimisation steps in total")
    p.add_argument("--minutes", type=float, help="stop cleanly after this many minutes (this run)")
    p.add_argument("--batch-size", type=int, help="global batch (split over torchrun processes)")
    p.add_argument("--workers", type=int, help="data-loader processes per training process")
    p.add_argument("--seed", type=int)
    p.add_argument("--img-size", type=int, help="face crop size; frames are resized on the fly")
    p.add_argument(
        "--model", action="append", default=[], metavar="KEY=VALUE", help="override a ModelConfig field"
    )
    p.add_argument(
        "--loss",
        action="append",
        default=[],
        metavar="TERM=WEIGHT",
        help="override a LossWeights weight, e.g. memory=1.0",
    )
    p.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field, e.g. lr=3e-4 or memory_lr_scale=10",
    )
    p.add_argument("--val-split", default="val")
    p.add_argument("--val-every", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--no-augment", action="store_true", help="train on clean audio only")
    p.add_argument("--preload", action="store_true", help="decode all frames into RAM first")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads per process (default: cores / procs)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs with AVX512-BF16, GPUs)")
    p.add_argument("--channels-last", action="store_true", help="NHWC conv weights (oneDNN on CPU)")
    return p


def _parse_value(field: dataclasses.Field, text: str) -> Any:
    value = json.loads(text) if text[:1] in "[{" or text in ("true", "false") else text
    kind = str(field.type)
    if isinstance(value, list):
        return tuple(value)
    if kind == "bool":
        return value if isinstance(value, bool) else text.lower() in ("1", "true", "yes")
    if kind in ("int", "float"):
        return {"int": int, "float": float}[kind](value)
    return value


def _overrides(items: list[str], cls: type, option: str, form: str) -> dict[str, Any]:
    """Parse `--option NAME=VALUE` items against the fields of dataclass `cls`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            if not sep or key not in fields:
                raise ValueError(key)
            changes[key] = _parse_value(fields[key], text)
        except ValueError:
            name = form.split("=")[0]
            raise SystemExit(
                f"{option} {item!r}: expected {form} with {name} one of {sorted(fields)}"
            ) from None
    return changes


def model_config(args: argparse.Namespace, **fixed: Any) -> ModelConfig:
    """The preset's ModelConfig with --img-size, --model KEY=VALUE and `fixed` applied."""
    changes = _overrides(args.model, ModelConfig, "--model", "KEY=VALUE")
    if args.img_size:
        changes["img_size"] = args.img_size
    return dataclasses.replace(ModelConfig.preset(args.preset), **changes, **fixed)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The preset's TrainConfig with the command-line overrides (incl. --loss TERM=WEIGHT) applied."""
    cfg = TrainConfig.preset(args.preset)
    pairs = {
        "seed": args.seed,
        "workers": args.workers,
        "val_every": args.val_every,
        "ckpt_every": args.ckpt_every,
        "log_every": args.log_every,
    }
    changes: dict[str, Any] = {k: v for k, v in pairs.items() if v is not None}
    changes.update(_overrides(args.train, TrainConfig, "--train", "KEY=VALUE"))
    if "loss" in changes:
        raise SystemExit("--train loss=...: set loss weights with --loss TERM=WEIGHT")
    if args.no_augment:
        changes["augment"] = False
    if args.loss:
        changes["loss"] = dataclasses.replace(
            cfg.loss, **_overrides(args.loss, LossWeights, "--loss", "TERM=WEIGHT")
        )
    try:
        return dataclasses.replace(cfg, **changes)
    except ValueError as e:  # a value TrainConfig refuses (e.g. memory_init_by)
        raise SystemExit(f"--train: {e}") from None


def per_process_batch(global_batch: int, env: DistEnv) -> int:
    """Split the global batch over processes; it must divide evenly (same samples as 1 process)."""
    if global_batch % env.world_size:
        raise SystemExit(f"--batch-size {global_batch} does not divide over {env.world_size} processes")
    return global_batch // env.world_size


def setup(args: argparse.Namespace, seed: int) -> DistEnv:
    """Join DDP (if under torchrun), set threads and seeds (same initial weights on all ranks)."""
    env = init_distributed(args.device, args.threads)
    seed_everything(seed)
    return env


def loop_config(
    tcfg: TrainConfig, args: argparse.Namespace, env: DistEnv, max_steps: int, batch: int
) -> LoopConfig:
    return LoopConfig(
        max_steps=args.steps if args.steps is not None else max_steps,
        batch_size=per_process_batch(args.batch_size or batch, env),
        minutes=args.minutes,
        val_every=tcfg.val_every,
        ckpt_every=tcfg.ckpt_every,
        log_every=tcfg.log_every,
        workers=tcfg.workers,
        seed=tcfg.seed,
    )


def write_run_json(out: Path, env: DistEnv, **configs: Any) -> None:
    """run.json: the configs of the latest invocation, for people reading a run directory."""
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(configs, indent=1, default=str))


def autocast(enabled: bool, device: torch.device) -> torch.autocast:
    """bf16 autocast on the training device (a no-op context when disabled)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
