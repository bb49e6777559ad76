"""One generator training step, run by tests/lipmem_core/train/test_ddp.py under torchrun and in-process.

Saves this rank's gradients and updated parameters to OUT/rank{r}.safetensors. The generator
runs in eval mode (dropout off, BatchNorm from running statistics) so that each sample's loss
does not depend on how the global batch is split over processes; gradients of the global
mean loss must then be the same with 1 or 2 processes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors.torch import save_file
from torch.utils.data import DataLoader

from lipmem_core.config import TrainConfig
from lipmem_core.data.datasets import ClipStore, GeneratorWindows
from lipmem_core.model.syncnet import SyncNet
from lipmem_core.train.distributed import ResumableSampler, init_distributed, seed_everything, shutdown
from lipmem_core.train.generator import GeneratorTask
from tests.tiny_model import tiny_config

TINY = tiny_config(face_widths=(8, 8, 16, 16), audio_width=8, fusion_dropout=0.0)


def run_one_step(data: Path, out: Path, global_batch: int) -> None:
    env = init_distributed("cpu", threads=1)
    seed_everything(0)
    syncnet = SyncNet(TINY).eval().requires_grad_(False)
    task = GeneratorTask(TINY, TrainConfig(gan_start_step=0), env, syncnet, val=None, bf16=False)
    task.gen.eval()
    dataset = GeneratorWindows(ClipStore(data, "train", TINY.img_size), TINY.n_frames, None, seed=0)
    sampler = ResumableSampler(dataset, env, seed=0)
    sampler.set_position(0, 0)
    batch = next(iter(DataLoader(dataset, batch_size=global_batch // env.world_size, sampler=sampler)))
    task.train_step(batch, 0)
    tensors = {}
    for net_name, net in (("gen", task.gen), ("disc", task.disc)):
        for name, p in net.named_parameters():
            tensors[f"param/{net_name}/{name}"] = p.detach().clone()
            tensors[f"grad/{net_name}/{name}"] = p.grad.detach().clone()
    tensors["starts"] = batch["start"] + 100 * batch["clip"]  # which windows this rank saw
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / f"rank{env.rank}.safetensors"))
    shutdown(env)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--global-batch", type=int, default=4)
    a = p.parse_args()
    run_one_step(a.data, a.out, a.global_batch)
