"""Generator speed on this CPU: training samples/s and inference frames/s, per preset and option.

    python benchmarks/train_speed.py [--presets cpu paper] [--batch 8] [--repeats 5] [--threads 2]
                                     [--options plain channels_last bf16 bf16_cl compile] [--skip-train]

Prints, for each preset: parameters, FLOPs per frame (torch.utils.flop_counter; inference =
audio path, training = forward of both paths), the machine's measured fp32 / bf16 matmul
throughput for scale, then a table of median figures over `--repeats` timed runs:
inference frames/s (audio path, `--batch` windows of T frames, inference_mode) and training
samples/s (windows/s: generator forward with lips + generator_loss with frozen SyncNet and
discriminator + backward + Adam, then the discriminator step), and the bf16 error against fp32.
Peak RSS (resource.getrusage) is printed at the end. Other processes share the CPU: the load
average is printed alongside, and medians are taken over repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipmem_core.config import LossWeights, ModelConfig  # noqa: E402
from lipmem_core.model.discriminator import QualityDiscriminator  # noqa: E402
from lipmem_core.model.generator import LipMemGenerator, to_channels_last  # noqa: E402
from lipmem_core.model.losses import discriminator_loss, generator_loss  # noqa: E402
from lipmem_core.model.syncnet import SyncNet  # noqa: E402

OPTIONS = ("plain", "channels_last", "bf16", "bf16_cl", "compile")
# For comparison: the cpu preset's widths with full-resolution face features (its first design).
EXTRA_CONFIGS = {
    "cpu_fullres": lambda: dataclasses.replace(
        ModelConfig.cpu(), stem_stride=1, face_widths=(16, 32, 64, 128, 256, 256)
    )
}


def config_named(name: str) -> ModelConfig:
    return EXTRA_CONFIGS[name]() if name in EXTRA_CONFIGS else ModelConfig.preset(name)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / median_time(lambda: a @ b, repeats) / 1e9


def flops_per_frame(cfg: ModelConfig) -> tuple[float, float]:
    """(inference, training-forward) FLOPs per frame of the generator."""
    from torch.utils.flop_counter import FlopCounterMode

    gen = LipMemGenerator(cfg).eval()
    t, h = cfg.n_frames, cfg.img_size
    face, mel, lips = torch.randn(1, 6, t, h, h), torch.randn(1, t, 1, 80, 16), torch.randn(1, t, 3, 5, h, h)
    out = []
    for use_lips in (None, lips):
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            gen(face, mel, use_lips)
        out.append(fc.get_total_flops() / t)
    return out[0], out[1]


def inputs(cfg: ModelConfig, b: int) -> dict[str, torch.Tensor]:
    t, h = cfg.n_frames, cfg.img_size
    return {
        "face": torch.rand(b, 6, t, h, h) * 2 - 1,
        "mel": torch.rand(b, t, 1, 80, 16) * 8 - 4,
        "lips": torch.rand(b, t, 3, 5, h, h) * 2 - 1,
        "gt": torch.rand(b, 3, t, h, h) * 2 - 1,
        "clip_mel": torch.rand(b, 1, 80, 16) * 8 - 4,
    }


def prepare(module: torch.nn.Module, option: str) -> torch.nn.Module:
    if option in ("channels_last", "bf16_cl"):
        module = to_channels_last(module)
    return module


def autocast_for(option: str) -> contextlib.AbstractContextManager:
    return (
        torch.autocast("cpu", dtype=torch.bfloat16) if option.startswith("bf16") else contextlib.nullcontext()
    )


def bench_inference(cfg: ModelConfig, option: str, batch: int, repeats: int) -> tuple[float, float]:
    """(frames/s, max |frames - fp32 frames|) of the audio path."""
    torch.manual_seed(0)
    gen = prepare(LipMemGenerator(cfg).eval(), option)
    x = inputs(cfg, batch)
    with torch.inference_mode():
        ref = gen(x["face"], x["mel"]).frames.float()
    run = torch.compile(gen) if option == "compile" else gen

    def step() -> torch.Tensor:
        with torch.inference_mode(), autocast_for(option):
            return run(x["face"], x["mel"]).frames

    t = median_time(step, repeats, warmup=2 if option == "compile" else 1)
    err = (step().float() - ref).abs().max().item()
    return batch * cfg.n_frames / t, err


def bench_training(cfg: ModelConfig, option: str, batch: int, repeats: int) -> float:
    """Training windows (samples) per second, generator + discriminator steps."""
    torch.manual_seed(0)
    gen = prepare(LipMemGenerator(cfg).train(), option)
    sync = prepare(SyncNet(cfg).eval().requires_grad_(False), option)
    disc = prepare(QualityDiscriminator(cfg).train(), option)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=5e-4, betas=(0.5, 0.999))
    x = inputs(cfg, batch)
    fwd = torch.compile(gen) if option == "compile" else gen
    weights = LossWeights()

    def step() -> None:
        with autocast_for(option):
            out = fwd(x["face"], x["mel"], x["lips"])
            loss, _ = generator_loss(out, x, sync, gen, disc, weights)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        with autocast_for(option):
            d_loss, _ = discriminator_loss(disc, x["gt"], out.frames.float())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

    return batch / median_time(step, repeats, warmup=2 if option == "compile" else 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["cpu", "paper"], help="cpu, paper or cpu_fullres")
    p.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    p.add_argument("--batch", type=int, default=8, help="windows per batch (x T frames)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-train", action="store_true")
    args = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    print(
        f"matmul 2048^3: fp32 {matmul_gflops(torch.float32):.0f} GFLOP/s, bf16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s"
    )
    for name in args.presets:
        cfg = config_named(name)
        n_params = sum(p.numel() for p in LipMemGenerator(cfg).parameters())
        f_inf, f_train = flops_per_frame(cfg)
        print(
            f"\n[{name}] {n_params / 1e6:.2f}M generator parameters, {cfg.img_size} px; "
            f"GFLOP/frame: inference {f_inf / 1e9:.3f}, training forward {f_train / 1e9:.3f}"
        )
        print(f"{'option':<14}{'infer frames/s':>16}{'GFLOP/s':>10}{'bf16 err':>10}{'train samples/s':>17}")
        for option in args.options:
            fps, err = bench_inference(cfg, option, args.batch, args.repeats)
            sps = float("nan") if args.skip_train else bench_training(cfg, option, args.batch, args.repeats)
            print(f"{option:<14}{fps:>16.1f}{fps * f_inf / 1e9:>10.0f}{err:>10.4f}{sps:>17.2f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
