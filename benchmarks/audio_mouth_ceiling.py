"""How much of SynthTalk's mouth can one mel window tell? The ceiling for the audio side.

Trains the generator's own audio encoder (`AudioEncoder`, the cpu preset's width and size) with
a linear head on a SynthTalk corpus's train split, from each frame's 0.2 s mel window alone, and
scores unseen speakers (the test split) at intervals:
- `regression`: the 7 exact mouth parameters (L1 on standardised parameters); printed as the
  MAE in % of each parameter's std, the same unit as evaluate's mouth error. A generator that
  draws from this window cannot beat it with references from elsewhere, except through
  the reference frames themselves.
- `groups`: the frame's mouth-shape group, the S k-means groups of `--loss slot_mouth`
  (`MouthSlots`); printed as top-1 / top-5 accuracy and the number of groups predicted. This
  bounds the address agreement that mouth-shape slots can reach: the lips may find their group
  exactly, and the audio finds it this often.

`--context C` asks what a longer stretch of audio adds: each frame is read from the windows of
frames k-C .. k+C (C = 0 is the generator's single 0.2 s window; with C = 2 the five windows
span 0.36 s). `--context-mode features` passes each window through the same encoder and
concatenates their features before the linear head (2C+1 times the encoder's cost);
`channels` stacks the windows as the encoder's input channels (only its first conv widens).

    python benchmarks/audio_mouth_ceiling.py --data DIR [--steps 3000] [--task regression groups] [--context C]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipmem_core.audio import mel_windows  # noqa: E402
from lipmem_core.config import ModelConfig  # noqa: E402
from lipmem_core.data.datasets import ClipStore  # noqa: E402
from lipmem_core.data.synth.mouth import MOUTH_PARAMS  # noqa: E402
from lipmem_core.model.encoders import AudioEncoder  # noqa: E402
from lipmem_core.model.mouth_slots import MouthSlots  # noqa: E402


def split_windows(data: str, split: str, context: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame's mel windows (N, 2C+1, 80, 16), those of frames k-C .. k+C (past the clip's
    ends they read silence, as `mel_windows` pads), and exact mouth parameters (N, 7) of a split."""
    store = ClipStore(data, split, img_size=32)  # frames are never read
    mels, mouths = [], []
    for ci, clip in enumerate(store.clips):
        frames = np.arange(clip.n_frames)
        mel = store.mel(ci)
        mels.append(np.stack([mel_windows(mel, frames + o) for o in range(-context, context + 1)], axis=1))
        mouths.append(store.mouth(ci))
    return torch.from_numpy(np.concatenate(mels)).float(), torch.from_numpy(np.concatenate(mouths)).float()


class ContextReader(nn.Module):
    """Mel windows (N, W, 80, 16) -> (N, n_out). `features`: each window through one shared
    AudioEncoder, the W features concatenated, then a linear head; `channels`: the W windows as
    one encoder's input channels, then a linear head. W = 1: both are the encoder and a head."""

    def __init__(self, width: int, dim: int, n_windows: int, n_out: int, mode: str = "features") -> None:
        super().__init__()
        self.mode = mode
        stacked = mode == "channels"
        self.encoder = AudioEncoder(width, dim, in_channels=n_windows if stacked else 1)
        self.head = nn.Linear(dim if stacked else n_windows * dim, n_out)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if self.mode == "channels":
            return self.head(self.encoder(mel))  # (N, n_out)
        n, w = mel.shape[:2]
        f = self.encoder(mel.reshape(n * w, 1, *mel.shape[2:]))  # (N * W, dim)
        return self.head(f.reshape(n, -1))  # (N, n_out)


def predict(model: nn.Module, mel: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(mel[i : i + 512]) for i in range(0, len(mel), 512)])
    model.train()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="SynthTalk corpus root (needs mouth.csv)")
    p.add_argument("--task", nargs="+", choices=["regression", "groups"], default=["regression", "groups"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=1000, help="score the test split every N steps")
    p.add_argument("--batch-size", type=int, default=64, help="frames per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--groups", type=int, default=96, help="mouth-shape groups (the memory's S)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--context", type=int, default=0, help="also read the windows of C frames either side")
    p.add_argument("--context-mode", choices=["features", "channels"], default="features")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ModelConfig.cpu()
    t0 = time.perf_counter()
    mel_train, mouth_train = split_windows(args.data, "train", args.context)
    mel_test, mouth_test = split_windows(args.data, "test", args.context)
    print(f"frames: train {len(mel_train)}, test {len(mel_test)} (read in {time.perf_counter() - t0:.0f} s)")
    mean, std = mouth_train.mean(0), mouth_train.std(0)
    test_std = mouth_test.std(0)
    slots = MouthSlots(args.groups)
    for task in args.task:
        torch.manual_seed(args.seed)
        if task == "regression":
            target, n_out = (mouth_train - mean) / std, len(MOUTH_PARAMS)
        else:
            target, n_out = slots.fit(mouth_train, seed=args.seed), args.groups
            test_groups = slots.labels(mouth_test)
        model = ContextReader(cfg.audio_width, cfg.dim, 2 * args.context + 1, n_out, args.context_mode)
        opt = torch.optim.Adam(model.parameters(), args.lr)
        gen = torch.Generator().manual_seed(args.seed)
        t0 = time.perf_counter()
        print(
            f"\n{task} (audio width {cfg.audio_width}, dim {cfg.dim}, batch {args.batch_size}, lr {args.lr}, "
            f"context {args.context}: {2 * args.context + 1} windows as {args.context_mode}):"
        )
        for step in range(1, args.steps + 1):
            i = torch.randint(0, len(mel_train), (args.batch_size,), generator=gen)
            out = model(mel_train[i])
            loss = (out - target[i]).abs().mean() if task == "regression" else F.cross_entropy(out, target[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % args.every and step != args.steps:
                continue
            scores = predict(model, mel_test)
            head = f"  step {step:5d} ({time.perf_counter() - t0:4.0f} s)"
            if task == "regression":
                pct = 100 * ((scores * std + mean) - mouth_test).abs().mean(0) / test_std  # (7,)
                per = " ".join(f"{n} {v:.0f}" for n, v in zip(MOUTH_PARAMS, pct.tolist(), strict=True))
                print(f"{head}: MAE {pct.mean():.1f} % of std ({per})")
            else:
                top5 = (scores.topk(5, dim=1).indices == test_groups[:, None]).any(1).float().mean()
                top1 = scores.argmax(1)
                print(
                    f"{head}: top-1 {100 * (top1 == test_groups).float().mean():.1f} %, top-5 {100 * top5:.1f} %, "
                    f"{len(top1.unique())} of {args.groups} groups predicted "
                    f"(chance, the largest group: {100 * test_groups.bincount().max() / len(test_groups):.1f} %)"
                )
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
