"""SynthTalk speed: the face renderer alone, and the whole corpus builder.

    python benchmarks/synth_speed.py [--speakers 8] [--utterances 20] [--workers 2] [--runs 3]
        [--size 128] [--render-sizes 64 128 256] [--tmp DIR]

Prints, as medians of --runs:
- the renderer, at each of --render-sizes: FaceRenderer.render per frame (one process, face
  already built), in frames per wall second and per CPU second, also with the corpus writer's
  JPEG encoding, the one-off static layers per identity (CPU ms), and a 250-frame render_clip
  of a new face (wall);
- the corpus builder: build_corpus at 128 px with --workers processes (plan + speech + trajectory
  + render + JPEG + files) into a fresh directory per run, in frames per wall second and per
  CPU second (the CPU figure does not depend on other load on the machine);
- the peak RSS of this process and of its largest worker.
Target: >= 1,000 frames/s for the corpus builder on 2 cores (a 3-hour corpus, 270k frames, in
under 5 minutes). Write to the file system the real corpus will use (--tmp): creating a
file per frame costs very different CPU time on different file systems.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lipmem_core.data.synth.build import JPEG_QUALITY, build_corpus, pad_to_frames
from lipmem_core.data.synth.face_render import FaceRenderer, Identity, head_motion, render_clip
from lipmem_core.data.synth.mouth import mouth_trajectory
from lipmem_core.data.synth.speech import synthesize


def renderer_fps(size: int, runs: int) -> dict[str, float]:
    """Medians over runs: frames/s wall and per CPU second of FaceRenderer.render, frames per
    CPU second with JPEG encoding (what the corpus writer does per frame), CPU ms to build a
    new face's static layers, and frames/s wall of a fresh 250-frame render_clip."""
    rng = np.random.default_rng(0)
    utt = synthesize("The quick brown fox jumps over the lazy dog, and then it runs away. " * 3)
    _, phones, n = pad_to_frames(utt.audio, utt.phones)
    mouth = mouth_trajectory(phones, n)  # (n, 7)
    poses, blinks = head_motion(n, rng)
    out = np.empty((size, size, 3), np.uint8)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    wall, cpu, with_jpeg, setup, clip = [], [], [], [], []
    for r in range(runs):
        c = time.process_time()
        renderer = FaceRenderer(Identity.sample(np.random.default_rng(100 + r)), size)
        setup.append(1000 * (time.process_time() - c))
        t, c = time.perf_counter(), time.process_time()
        for k in range(n):
            renderer.render(mouth[k], poses[k], blinks[k], out=out)
        wall.append(n / (time.perf_counter() - t))
        cpu.append(n / (time.process_time() - c))
        c = time.process_time()
        for k in range(n):
            frame = renderer.render(mouth[k], poses[k], blinks[k], out=out)
            cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]), jpeg)
        with_jpeg.append(n / (time.process_time() - c))
        t = time.perf_counter()
        render_clip(Identity.sample(np.random.default_rng(200 + r)), mouth[:250], rng, size)
        clip.append(min(n, 250) / (time.perf_counter() - t))
    medians = {"wall": wall, "cpu": cpu, "jpeg": with_jpeg, "setup_ms": setup, "clip": clip}
    return {k: statistics.median(v) for k, v in medians.items()}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished descendants (workers, espeak forks)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def builder_fps(
    speakers: int, utterances: int, workers: int, size: int, runs: int, tmp: str | None
) -> tuple[float, float, int]:
    """(frames per wall second, frames per CPU second, frames per run), medians over runs."""
    import pandas as pd

    rates, cpu_rates, frames = [], [], 0
    for r in range(runs):
        out = Path(tempfile.mkdtemp(prefix="synth_speed_", dir=tmp))
        try:
            t, c = time.perf_counter(), _cpu_seconds()
            manifest = build_corpus(
                out, speakers, utterances, seed=r, size=size, workers=workers, progress=False
            )
            elapsed, cpu = time.perf_counter() - t, _cpu_seconds() - c
            frames = int(pd.read_csv(manifest)["frames"].sum())
            rates.append(frames / elapsed)
            cpu_rates.append(frames / cpu)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return statistics.median(rates), statistics.median(cpu_rates), frames


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--utterances", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=128, help="the corpus builder's frame size")
    p.add_argument("--render-sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tmp", default=None, help="where to write the corpora (default: system temp)")
    args = p.parse_args()

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the renderer figures are for one core
    for size in args.render_sizes:
        r = renderer_fps(size, args.runs)
        print(f"renderer, {size}px, 1 process: {r['wall']:,.0f} frames/s wall, {r['cpu']:,.0f} frames "
              f"per CPU second ({r['jpeg']:,.0f} with JPEG encoding); static layers "
              f"{r['setup_ms']:.0f} CPU-ms per identity; {r['clip']:,.0f} frames/s wall for a "
              f"250-frame render_clip of a new face")  # fmt: skip
    cv2.setNumThreads(threads)
    fps, cpu_fps, frames = builder_fps(
        args.speakers, args.utterances, args.workers, args.size, args.runs, args.tmp
    )
    print(f"corpus builder, {args.size}px, {args.workers} workers, {args.speakers}x{args.utterances} "
          f"utterances ({frames} frames): {fps:,.0f} frames/s wall "
          f"(3 h = 270k frames in {270_000 / fps / 60:.1f} min); {cpu_fps:,.0f} frames per CPU "
          f"second (load-independent: an idle {args.workers}-core machine reaches about "
          f"{args.workers} x that)")  # fmt: skip
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: {self_mb:.0f} MB (this process), {child_mb:.0f} MB (largest worker)")


if __name__ == "__main__":
    main()
