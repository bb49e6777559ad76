"""SynthTalk speed: the face renderer alone, and the whole corpus generator.

    python benchmarks/synth_speed.py [--speakers 6] [--utterances 12] [--workers 2] [--runs 3]
        [--tmp DIR]

Write to the file system the real corpus will use (--tmp): creating ~1 file per frame costs
very different CPU time on different file systems.

Prints frames per second (median of --runs) for
- the renderer: FaceRenderer.render per frame (one process, speaker already built), and
  render_clip on a 10 s clip (includes building the speaker's face once);
- the generator: build_corpus at 128 px with --workers processes (speech + trajectory +
  render + JPEG + files), into a fresh temporary directory per run;
frames per CPU second (which does not depend on other load on the machine), and the peak RSS of this process and of its largest child. Target: >= 1,000 frames/s for
the generator on 2 cores (a 3-hour corpus, 270k frames, in under 5 minutes).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lipmem_core.data.face_render import FaceRenderer, Identity, head_motion, render_clip
from lipmem_core.data.mouth import mouth_trajectory
from lipmem_core.data.speech import synthesize
from lipmem_core.data.synth import build_corpus, pad_to_frames


def renderer_fps(size: int, runs: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    identity = Identity.sample(rng)
    utt = synthesize("The quick brown fox jumps over the lazy dog, and then it runs away. " * 3)
    _, phones, n = pad_to_frames(utt.audio, utt.phones)
    mouth = mouth_trajectory(phones, n)  # (n, 7)
    renderer = FaceRenderer(identity, size)
    poses, blinks = head_motion(n, rng)
    out = np.empty((size, size, 3), np.uint8)
    steady, clip = [], []
    for _ in range(runs):
        t = time.perf_counter()
        for k in range(n):
            renderer.render(mouth[k], poses[k], blinks[k], out=out)
        steady.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        render_clip(identity, mouth[:250], np.random.default_rng(1), size)
        clip.append(min(n, 250) / (time.perf_counter() - t))
    return statistics.median(steady), statistics.median(clip)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished descendants (workers, espeak forks)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def generator_fps(
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
    p.add_argument("--speakers", type=int, default=6)
    p.add_argument("--utterances", type=int, default=12)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tmp", default=None, help="where to write the corpora (default: system temp)")
    args = p.parse_args()

    steady, clip = renderer_fps(args.size, args.runs)
    print(f"renderer, {args.size}px, 1 process: {steady:,.0f} frames/s per frame; "
          f"{clip:,.0f} frames/s for a 250-frame render_clip (face built once)")  # fmt: skip
    fps, cpu_fps, frames = generator_fps(
        args.speakers, args.utterances, args.workers, args.size, args.runs, args.tmp
    )
    print(f"generator, {args.size}px, {args.workers} workers, {args.speakers}x{args.utterances} "
          f"utterances ({frames} frames): {fps:,.0f} frames/s wall "
          f"(3 h = 270k frames in {270_000 / fps / 60:.1f} min); {cpu_fps:,.0f} frames per CPU "
          f"second (load-independent: an idle {args.workers}-core machine reaches about "
          f"{args.workers} x that)")  # fmt: skip
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: {self_mb:.0f} MB (this process), {child_mb:.0f} MB (largest worker)")


if __name__ == "__main__":
    main()
