"""Train the SyncNet expert (docs/PAPER.md: cosine BCE, batch 256, lr 1e-4), then freeze it for train.py.

    python -m lipmem_core.train_syncnet --data DIR --out runs/syncnet [--preset cpu] [--steps N]
    torchrun --nproc_per_node N -m lipmem_core.train_syncnet --data DIR --out runs/syncnet

The run directory's `checkpoint/` is what `train --syncnet` takes. See docs/TRAINING.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from lipmem_core.checkpoint import save_checkpoint
from lipmem_core.config import ModelConfig, TrainConfig
from lipmem_core.data.augment import AudioAugment
from lipmem_core.data.datasets import ClipStore, SyncWindows
from lipmem_core.model.generator import to_channels_last
from lipmem_core.model.losses import syncnet_loss
from lipmem_core.model.syncnet import SyncNet
from lipmem_core.train.args import (
    autocast,
    base_parser,
    loop_config,
    model_config,
    setup,
    train_config,
    write_run_json,
)
from lipmem_core.train.distributed import DistEnv, shutdown, unwrap, wrap_ddp
from lipmem_core.train.loop import command_line, run_training


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a collated batch to `device` (other fields pass through)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def val_loader(dataset: torch.utils.data.Dataset, n_windows: int, batch_size: int) -> DataLoader:
    """A fixed, evenly spread subset of validation windows (epoch 0, no shuffling)."""
    idx = np.unique(np.linspace(0, len(dataset) - 1, min(n_windows, len(dataset))).astype(int))
    return DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False)


class SyncNetTask:
    """SyncNet expert training: one Adam optimiser, cosine-BCE on in/out-of-sync pairs."""

    kind = "syncnet"

    def __init__(
        self,
        cfg: ModelConfig,
        tcfg: TrainConfig,
        env: DistEnv,
        val: DataLoader,
        bf16: bool,
        nhwc: bool = False,
    ) -> None:
        self.env, self.val, self.bf16 = env, val, bf16
        self.model = SyncNet(cfg).to(env.device)
        if nhwc:  # before the DDP wrapper and the optimiser see the parameters
            to_channels_last(self.model)
        self.ddp = wrap_ddp(self.model, env)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tcfg.sync_lr)
        self.ddp.train()

    def state_modules(self) -> dict[str, nn.Module]:
        return {"syncnet": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"syncnet": self.opt}

    def train_step(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        b = to_device(batch, self.env.device)
        with autocast(self.bf16, self.env.device):
            loss, logs = syncnet_loss(self.ddp, b)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return logs

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        n = 0
        for batch in self.val:
            b = to_device(batch, self.env.device)
            with autocast(self.bf16, self.env.device):
                _, logs = syncnet_loss(self.model, b)
            k = len(b["label"])
            for key, v in logs.items():
                sums[key] = sums.get(key, 0.0) + v * k
            n += k
        self.model.train()
        return {f"val_{k}": v / n for k, v in sums.items()}

    def export(self, out_dir: Path, metadata: dict[str, Any]) -> None:
        save_checkpoint(out_dir, unwrap(self.model), kind="syncnet", metadata=metadata)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = base_parser(
        "python -m lipmem_core.train_syncnet", "Train the SyncNet lip-sync expert."
    ).parse_args(argv)
    cfg, tcfg = model_config(args), train_config(args)
    env = setup(args, tcfg.seed)
    try:
        augment = AudioAugment() if tcfg.augment else None
        store = ClipStore(args.data, "train", cfg.img_size, preload=args.preload)
        train_set = SyncWindows(store, cfg.n_frames, augment, tcfg.seed, tcfg.sync_min_offset)
        val_set = SyncWindows(
            ClipStore(args.data, args.val_split, cfg.img_size),
            cfg.n_frames,
            None,
            tcfg.seed + 1,
            tcfg.sync_min_offset,
        )
        loop = loop_config(tcfg, args, env, tcfg.sync_max_steps, tcfg.sync_batch_size)
        val = val_loader(val_set, tcfg.val_windows, loop.batch_size)
        task = SyncNetTask(cfg, tcfg, env, val, args.bf16, args.channels_last)
        write_run_json(args.out, env, model=cfg.to_dict(), train=tcfg.to_dict(), loop=vars(loop))
        meta = {
            "model_config": cfg.to_dict(),
            "train_config": tcfg.to_dict(),
            "world_size": env.world_size,
            "command": command_line("lipmem_core.train_syncnet", argv),
        }
        return run_training(task, train_set, loop, args.out, env, args.data, meta)
    finally:
        shutdown(env)
