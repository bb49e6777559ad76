"""Training-window loader throughput: samples/s of GeneratorWindows and SyncWindows.

    python benchmarks/loader_speed.py --data data/synth_tiny [--img-size 128] [--batches 20]

Prints the median over repeats of samples/s for each configuration (lazy JPEG decoding vs RAM
preload, clean vs augmented audio, 0 vs 1 data-loader worker) and the peak RSS. With 0
workers it also prints samples per CPU-second, which a busy machine disturbs less.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lipmem_core.data.augment import AudioAugment
from lipmem_core.data.datasets import ClipStore, GeneratorWindows, SyncWindows
from lipmem_core.train.distributed import single_blas_thread


def samples_per_second(dataset, batch: int, batches: int, workers: int, repeats: int) -> tuple[float, float]:
    """Median wall-clock samples/s and, with 0 workers, samples per CPU-second of this process
    (the steadier figure on a shared machine)."""
    rates, cpu_rates = [], []
    for r in range(repeats):
        g = torch.Generator().manual_seed(r)
        loader = DataLoader(
            dataset,
            batch_size=batch,
            shuffle=True,
            num_workers=workers,
            generator=g,
            drop_last=True,
            worker_init_fn=single_blas_thread,
        )
        it = iter(loader)
        next(it)  # worker start-up and first mel computations are not steady state
        t, c = time.perf_counter(), time.process_time()
        n = 0
        for _ in range(batches):
            try:
                n += len(next(it)["mel"])
            except StopIteration:
                break
        rates.append(n / (time.perf_counter() - t))
        cpu_rates.append(n / (time.process_time() - c) if workers == 0 else float("nan"))
    return statistics.median(rates), statistics.median(cpu_rates)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    single_blas_thread()
    t = time.perf_counter()
    lazy = ClipStore(a.data, "train", a.img_size)
    pre = ClipStore(a.data, "train", a.img_size, preload=True)
    print(f"preload of {pre._offsets[-1]} frames: {time.perf_counter() - t:.1f} s")
    print(f"{'dataset':<10} {'frames':<8} {'audio':<10} {'workers':>7} {'samples/s':>10} {'per CPU-s':>10}")
    for name, cls in (("generator", GeneratorWindows), ("syncnet", SyncWindows)):
        for store_name, store in (("lazy", lazy), ("preload", pre)):
            for aug_name, aug in (("clean", None), ("augmented", AudioAugment())):
                for workers in (0, 1):
                    ds = cls(store, augment=aug)
                    rate, cpu = samples_per_second(ds, a.batch, a.batches, workers, a.repeats)
                    print(
                        f"{name:<10} {store_name:<8} {aug_name:<10} {workers:>7} {rate:>10.1f} {cpu:>10.1f}"
                    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
