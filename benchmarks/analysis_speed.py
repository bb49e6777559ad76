"""Speed of the memory analysis (issue 5 targets), printed as a small table.

1. Addressing + statistics for 1 hour of audio (target <= 60 s; alignment excluded): every
   video frame's A_aud through `LipMemGenerator.address`, joined to phones, phone x slot
   matrices and `metrics.slot_statistics`. The hour is 10 s espeak clips (exact phones).
2. Phone x slot heatmap and utterance timeline of a 10 s clip from cached addressing (<= 1 s).
3. UMAP of the 96 value slots after warm-up (<= 2 s).

Model: the checkpoint given with --checkpoint, else a random-init generator of the `cpu`
preset (the analysis costs the same for trained weights). Median of --runs runs; peak RSS.

    python benchmarks/analysis_speed.py [--checkpoint DIR] [--hours 1.0] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics as stats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import plots  # noqa: E402
from analysis.addressing import (  # noqa: E402
    clip_addressing,
    corpus_addressing,
    join_phones,
    phone_slot_matrices,
    slot_order,
    statistics,
)
from analysis.align import align_espeak  # noqa: E402
from analysis.slots import slot_labels, slot_map  # noqa: E402
from lipmem_core.config import SAMPLE_RATE, ModelConfig  # noqa: E402
from lipmem_core.model.generator import LipMemGenerator  # noqa: E402

SENTENCES = [
    "the quick brown fox jumps over the lazy dog while the farmer watches from his porch",
    "she sells sea shells by the sea shore and the shells she sells are surely sea shells",
    "a big black bug bit a big black bear and the big black bear bled blood",
    "peter piper picked a peck of pickled peppers from the garden behind the old house",
    "how much wood would a woodchuck chuck if a woodchuck could chuck wood all day long",
    "red lorry yellow lorry thin things think through thick thorns in the valley",
]


def _clip_of_seconds(text: str, seconds: float, utterance: str):
    """An espeak clip of about `seconds` (the sentence repeated) with its exact phones."""
    reps = 1
    while True:
        r = align_espeak(" ".join([text] * reps), utterance=utterance)
        if len(r.audio) >= seconds * SAMPLE_RATE * 0.9:
            return r
        reps += 1


def _timed(fn, runs: int) -> tuple[float, object]:
    """(median wall seconds, last result)."""
    t, _, out = _timed_cpu(fn, runs)
    return t, out


def _timed_cpu(fn, runs: int) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds of this process, last result).

    CPU seconds tell what a run costs when the machine is shared: on an idle 2-core machine
    wall time is about CPU time / 2 for the well-threaded parts.
    """
    walls, cpus, out = [], [], None
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return stats.median(walls), stats.median(cpus), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(2)
    if args.checkpoint is not None:
        from lipmem_core.checkpoint import load_checkpoint

        model, name = load_checkpoint(args.checkpoint).model.eval(), str(args.checkpoint)
    else:
        torch.manual_seed(0)
        model, name = LipMemGenerator(ModelConfig.cpu()).eval(), "random-init cpu preset"
    print(f"model: {name}, S = {model.cfg.n_slots}, threads = {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip

    base = [_clip_of_seconds(s, 10.0, f"base{i}") for i, s in enumerate(SENTENCES)]
    clip_seconds = np.mean([len(r.audio) / SAMPLE_RATE for r in base])
    n_clips = int(round(args.hours * 3600 / clip_seconds))
    audios = [base[i % len(base)].audio for i in range(n_clips)]
    phones = pd.concat(
        [base[i % len(base)].table.assign(utterance=f"c{i:04d}") for i in range(n_clips)], ignore_index=True
    )
    hours = sum(len(a) for a in audios) / SAMPLE_RATE / 3600

    def hour() -> pd.DataFrame:
        frames = corpus_addressing(model, ((f"c{i:04d}", a) for i, a in enumerate(audios)), progress=False)
        frames = join_phones(frames, phones)
        phone_slot_matrices(frames, "phone")
        phone_slot_matrices(frames, "viseme")
        return statistics(frames, per_utterance=False)

    runs_hour = max(1, min(args.runs, 3))
    t_hour, cpu_hour, st = _timed_cpu(hour, runs_hour)
    print(f"addressing + statistics, {hours:.2f} h ({n_clips} clips): {t_hour:.1f} s wall, {cpu_hour:.1f} s CPU "
          f"(median of {runs_hour}; target <= 60 s for 1 h); PNMI {st.loc[0, 'pnmi']:.3f}")  # fmt: skip

    clip = _clip_of_seconds(SENTENCES[0], 10.0, "ten")
    with tempfile.TemporaryDirectory() as cache:
        clip_addressing(model, clip.audio, "ten", cache_dir=cache)  # fill the cache

        def heatmap():
            frames = join_phones(clip_addressing(model, clip.audio, "ten", cache_dir=cache), clip.table)
            m = phone_slot_matrices(frames, "phone")
            order = slot_order(m["counts"])
            plots.slot_phone_heatmap(m["p_label_given_slot"], order, m["counts"], slot_labels(m["counts"]))
            return frames, order

        t_heat, (frames, order) = _timed(heatmap, args.runs)
        t_line, _ = _timed(lambda: plots.utterance_timeline(frames, clip.table, clip.audio, order), args.runs)
    secs = len(clip.audio) / SAMPLE_RATE
    print(
        f"slot x phone heatmap of a {secs:.1f} s clip from cached addressing: {t_heat:.3f} s (target <= 1 s)"
    )
    print(f"utterance timeline of the same clip: {t_line:.3f} s")

    counts = phone_slot_matrices(frames, "phone")["counts"]
    t0 = time.perf_counter()
    slot_map(model, counts, "value", seed=0)
    warm = time.perf_counter() - t0
    t_umap, _ = _timed(lambda: slot_map(model, counts, "value", seed=0), args.runs)
    print(
        f"UMAP of {model.cfg.n_slots} value slots: {t_umap:.3f} s after warm-up ({warm:.1f} s first call; target <= 2 s)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
