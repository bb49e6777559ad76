"""Training windows over a corpus on disk (SynthTalk layout, docs/ARCHITECTURE.md).

A window is a clip plus a start frame s; its targets are frames s..s+T-1 (T = 5). Timing
follows the one rule of docs/ARCHITECTURE.md: target frame k gets the 16-frame mel window
`audio.mel_windows(mel, [k])`, and the 5-frame clip gets the window of its middle frame
(`audio.clip_mel_window`), so audio and video line up exactly, including at clip edges.

Randomness (reference frames, augmentation, negative pairs) comes from a generator seeded by
(seed, epoch, index): a sample is the same whatever the worker, rank or resume point, which
makes DDP gradients comparable with one process and lets a resumed run continue exactly.
Keys are either an index or `(epoch, index)` (what `distributed.ResumableSampler` yields).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lipmem_core.audio import mel_windows, melspectrogram
from lipmem_core.config import SAMPLES_PER_FRAME
from lipmem_core.data.augment import AudioAugment, augment_audio, room_tone
from lipmem_core.data.corpus import (
    clip_dir,
    read_audio,
    read_frames,
    read_manifest,
    read_mouth,
    read_mouth_params,
)
from lipmem_core.errors import CorpusError
from lipmem_core.model.encoders import identity_input
from lipmem_core.phones import SILENCE
from lipmem_core.pixels import to_unit

# Crop audio for augmentation at multiples of 5 video frames = 3200 samples = 16 mel hops,
# so that the crop's mel frames are the clip's shifted by a whole number of windows.
_CROP_FRAMES = 5
# Video frames of audio context on each side of a window that its mel windows can touch
# (16 mel frames = 2.5 video frames, plus the STFT's half window).
_CONTEXT_FRAMES = 4
# Room tone of an appended pause, in dB relative to the clip's speech RMS: from nearly digital
# silence (espeak's own pauses) to a noisy room (CMU ARCTIC's lead-in is about -26 dB).
PAUSE_LEVEL_DB = (-60.0, -20.0)
_PAUSE_STREAM = 7  # keeps the room tone's random stream apart from the windows' (seed, epoch, index)


@dataclass(frozen=True)
class UtteranceDir:
    """One utterance directory `root/split/speaker/utterance`: `recorded_frames` frames on disk,
    followed by `pause_frames` frames of silence that hold the last one (ClipStore)."""

    path: Path
    clip_id: str  # "split/speaker/utterance"
    recorded_frames: int
    pause_frames: int = 0

    @property
    def n_frames(self) -> int:
        """The frames a window can use: the recorded ones and the appended pause."""
        return self.recorded_frames + self.pause_frames


def lip_frame_indices(centres: np.ndarray, n: int) -> np.ndarray:
    """Frames i-2..i+2 of each target i, edge-replicated at clip ends: (T,) -> (T, 5)."""
    return np.clip(np.asarray(centres)[:, None] + np.arange(-2, 3)[None, :], 0, n - 1)


def lip_input(pix: torch.Tensor) -> torch.Tensor:
    """The lip encoder's input from 5-frame windows: (T, 5, H, W, 3) in [-1, 1] -> (T, 3, 5, H, W)
    with the upper half zeroed (docs/PAPER.md: only the mouth region is seen)."""
    lips = pix.permute(0, 4, 1, 2, 3).clone()  # (T, 3, 5, H, W)
    lips[..., : pix.shape[2] // 2, :] = 0.0
    return lips


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an image (H, W, 3) to (size, size, 3) if the corpus uses another crop size."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def read_frame(path: Path, size: int) -> np.ndarray:
    """One JPEG -> uint8 RGB (size, size, 3) (corpus.read_frames reads whole clips)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CorpusError(f"cannot read frame {path}: re-generate or re-preprocess this clip")
    return cv2.cvtColor(fit(bgr, size), cv2.COLOR_BGR2RGB)


class ClipStore:
    """Frames, audio and mel spectrograms of one split of a corpus.

    `preload=True` decodes every frame once into a single uint8 array (about 4.4 GB per hour
    at 128 px); forked data-loader workers share it copy-on-write. Mels are computed once per
    clip and cached (in each worker).

    `pause_frames` P (not in the paper, TrainConfig.pause_frames) appends P frames of pause to
    every clip: the last frame held still, room tone in the audio (`augment.room_tone`, drawn
    once per clip from `seed`) and the last row of mouth.csv. SynthTalk's clips end in silence
    with the lips at rest, but its pauses last 2-3 frames, so a fully silent 0.2 s window (the
    lead-in of any recording) is never trained. Clips that do not end in silence are refused.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        img_size: int,
        preload: bool = False,
        pause_frames: int = 0,
        seed: int = 0,
    ) -> None:
        if pause_frames < 0:
            raise ValueError(f"pause_frames={pause_frames}: a number of frames, 0 for none")
        self.root, self.split, self.img_size, self.seed = Path(root), split, img_size, seed
        manifest = read_manifest(self.root)
        rows = manifest[manifest["split"] == split]
        if rows.empty:
            raise CorpusError(
                f"{self.root} has no {split!r} clips in manifest.csv: build the corpus with that split"
            )
        self.clips = [
            UtteranceDir(
                clip_dir(self.root, r), f"{r.split}/{r.speaker}/{r.utterance}", int(r.frames), pause_frames
            )
            for r in rows.itertuples(index=False)
        ]
        self._mels: dict[int, np.ndarray] = {}
        self._mouths: dict[int, np.ndarray] = {}
        self._frames: np.ndarray | None = None  # (sum recorded_frames, H, W, 3) uint8 when preloaded
        self._offsets = np.cumsum([0] + [c.recorded_frames for c in self.clips])
        if preload:
            self._frames = np.empty((int(self._offsets[-1]), img_size, img_size, 3), np.uint8)
            for ci, clip in enumerate(self.clips):
                frames = read_frames(clip.path)  # (n, H0, W0, 3)
                if len(frames) != clip.recorded_frames:
                    raise CorpusError(
                        f"{clip.path} has {len(frames)} frames, manifest.csv says {clip.recorded_frames}"
                    )
                for k, image in enumerate(frames):
                    self._frames[self._offsets[ci] + k] = fit(image, img_size)

    def frames(self, ci: int, idx: np.ndarray) -> np.ndarray:
        """Frames `idx` of clip `ci` -> uint8 (len(idx), H, W, 3); pause frames hold the last one."""
        idx = np.minimum(idx, self.clips[ci].recorded_frames - 1)
        if self._frames is not None:
            return self._frames[self._offsets[ci] + idx]
        path = self.clips[ci].path
        cache = {int(k): read_frame(path / f"{int(k):05d}.jpg", self.img_size) for k in np.unique(idx)}
        return np.stack([cache[int(k)] for k in idx])

    def audio(self, ci: int) -> np.ndarray:
        """The clip's 16 kHz mono waveform (n_frames * 640,) float32, pause included."""
        clip = self.clips[ci]
        wav = read_audio(clip.path)
        n = clip.recorded_frames * SAMPLES_PER_FRAME
        if len(wav) != n:
            raise CorpusError(
                f"{clip.path / 'audio.wav'} has {wav.shape} samples, expected ({n},) "
                "(frames x 640, mono): re-generate or re-preprocess this clip"
            )
        if not clip.pause_frames:
            return wav
        self.mouth(ci)  # refuses clips that do not end in silence
        rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
        rng = np.random.default_rng([self.seed, ci, _PAUSE_STREAM])
        tone = room_tone(clip.pause_frames * SAMPLES_PER_FRAME, rms, rng, PAUSE_LEVEL_DB)
        return np.concatenate([wav, tone])

    def mouth(self, ci: int) -> np.ndarray:
        """SynthTalk's exact mouth parameters of the clip (n_frames, 7) float32, cached (mouth.csv;
        real corpora have none and raise CorpusError); pause frames repeat the last row."""
        if ci not in self._mouths:
            clip = self.clips[ci]
            path = clip.path
            if not (path / "mouth.csv").is_file():
                raise CorpusError(
                    f"{path} has no mouth.csv: the mouth-parameter losses and pause frames need SynthTalk's "
                    "exact mouths; leave --loss mouth_params, recall_mouth, slot_mouth, drawn_mouth and "
                    "--train pause_frames at 0 for real corpora"
                )
            mouths = read_mouth_params(path)  # (recorded_frames, 7)
            if len(mouths) != clip.recorded_frames:
                raise CorpusError(f"{path / 'mouth.csv'} does not have {clip.recorded_frames} rows")
            last_phone = read_mouth(path)["phone"].iloc[-1] if clip.pause_frames else SILENCE
            if last_phone != SILENCE:
                raise CorpusError(
                    f"{path} ends on {last_phone!r}, not silence: a pause cannot follow it; "
                    "train this corpus with --train pause_frames=0"
                )
            self._mouths[ci] = np.concatenate([mouths, np.repeat(mouths[-1:], clip.pause_frames, axis=0)])
        return self._mouths[ci]

    def mel(self, ci: int) -> np.ndarray:
        """Cached log-mel of the whole clip (80, M)."""
        if ci not in self._mels:
            self._mels[ci] = melspectrogram(self.audio(ci))
        return self._mels[ci]

    def augmented_mel_windows(
        self, ci: int, frames: Sequence[int], centre_frame: float, rng: np.random.Generator, aug: AudioAugment
    ) -> np.ndarray:
        """Mel windows of `frames` after augmenting the audio around them: (len, 80, 16).

        Only a crop of the audio is perturbed and analysed; it starts on a multiple of 5 video
        frames so its mel grid is the clip's shifted by whole windows. The sample at
        `centre_frame` (in video frames) stays fixed under speed perturbation.
        """
        n = self.clips[ci].n_frames
        lo = max(0, (min(frames) - _CONTEXT_FRAMES) // _CROP_FRAMES * _CROP_FRAMES)
        hi = min(n, max(frames) + 1 + _CONTEXT_FRAMES)
        wav = self.audio(ci)[lo * SAMPLES_PER_FRAME : hi * SAMPLES_PER_FRAME]
        centre = int(round((centre_frame - lo) * SAMPLES_PER_FRAME))
        mel = melspectrogram(augment_audio(wav, centre, rng, aug))  # (80, M_crop)
        # _CONTEXT_FRAMES keeps every window clear of the crop's own padded edges, except at
        # the clip's ends, where the crop's edges are the clip's and padding is the same.
        return mel_windows(mel, np.asarray(frames) - lo)


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def _split_key(key: int | tuple[int, int]) -> tuple[int, int]:
    return (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (0, int(key))


class _Windows(Dataset):
    """All windows (clip, s) with s in [0, n - T]; shared by the generator and SyncNet sets."""

    def __init__(
        self,
        store: ClipStore,
        n_frames: int = 5,
        augment: AudioAugment | None = None,
        seed: int = 0,
    ) -> None:
        self.store, self.T, self.augment, self.seed = store, n_frames, augment, seed
        per_clip = [max(0, c.n_frames - n_frames + 1) for c in store.clips]
        if sum(per_clip) == 0:
            raise CorpusError(f"no clip in {store.root}/{store.split} has {n_frames} frames or more")
        self.clip_of = np.repeat(np.arange(len(per_clip)), per_clip)  # (N,)
        self.start_of = np.concatenate([np.arange(p) for p in per_clip])  # (N,)

    def __len__(self) -> int:
        return len(self.clip_of)

    def _mels(self, ci: int, frames: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """Mel windows (len(frames), 80, 16) of clip `ci`, augmented when augmentation is on."""
        if self.augment is None:
            return mel_windows(self.store.mel(ci), frames)
        centre = (frames[0] + frames[-1] + 1) / 2
        return self.store.augmented_mel_windows(ci, frames, centre, rng, self.augment)


class GeneratorWindows(_Windows):
    """Samples for the generator (docs/PAPER.md "Inputs"); all image tensors in [-1, 1].

    face (6, T, H, W): targets with the lower half zeroed ++ T reference frames (a random
        other window of the same clip, non-overlapping when the clip is long enough)
    gt (3, T, H, W); lips (T, 3, 5, H, W): frames i-2..i+2 of each target i, upper half
        zeroed, edge-replicated at clip ends; mel (T, 1, 80, 16); clip_mel (1, 80, 16)
    clip (index), clip_id ("split/speaker/utterance"), start, ref_start: for debugging.

    ref_mouth_drop (not in the paper, TrainConfig.ref_mouth_drop): the share of windows whose
    references also have their lower half zeroed, so the mouth must come from the audio (or
    lip) feature. with_mouth: also mouth (T, 7), SynthTalk's exact mouth parameters of the
    targets (ClipStore.mouth). audio_frames A (not in the paper, TrainConfig.audio_frames; needs
    with_mouth): also audio_mel (A, 1, 80, 16) and audio_mouth (A, 7), the mel windows and
    exact mouth parameters of A consecutive frames from a random start in the same clip
    (edge-replicated in clips shorter than A), for losses on the audio path alone.
    """

    def __init__(
        self,
        store: ClipStore,
        n_frames: int = 5,
        augment: AudioAugment | None = None,
        seed: int = 0,
        ref_mouth_drop: float = 0.0,
        with_mouth: bool = False,
        audio_frames: int = 0,
    ) -> None:
        super().__init__(store, n_frames, augment, seed)
        if audio_frames and not with_mouth:
            raise ValueError("audio_frames trains mouth read-outs: it needs with_mouth=True")
        self.with_mouth, self.audio_frames = with_mouth, audio_frames
        if not 0.0 <= ref_mouth_drop <= 1.0:
            raise ValueError(f"ref_mouth_drop must be in [0, 1], got {ref_mouth_drop}")
        self.ref_mouth_drop = ref_mouth_drop

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | int | str]:
        epoch, index = _split_key(key)
        rng = _rng(self.seed, epoch, index)
        ci, s, T = int(self.clip_of[index]), int(self.start_of[index]), self.T
        n = self.store.clips[ci].n_frames
        ref = _reference_start(rng, n, s, T)
        lip_idx = lip_frame_indices(np.arange(s, s + T), n)  # (T, 5)
        wanted = np.concatenate([np.arange(s, s + T), np.arange(ref, ref + T), lip_idx.reshape(-1)])
        pix = to_unit(self.store.frames(ci, wanted))  # (2T + 5T, H, W, 3)
        gt = pix[:T].permute(3, 0, 1, 2)  # (3, T, H, W)
        refs = pix[T : 2 * T].permute(3, 0, 1, 2)  # (3, T, H, W)
        lips = lip_input(pix[2 * T :].reshape(T, 5, *pix.shape[1:]))  # (T, 3, 5, H, W)
        mels = self._mels(ci, list(range(s, s + T)), rng)  # (T, 80, 16)
        # drawn last, and only when on, so every other draw is as without it
        hidden = bool(self.ref_mouth_drop) and bool(rng.random() < self.ref_mouth_drop)
        if hidden:
            refs = refs.clone()
            refs[..., refs.shape[-2] // 2 :, :] = 0.0
        sample = {
            "face": identity_input(gt, refs),  # (6, T, H, W)
            "gt": gt.contiguous(),
            "lips": lips,
            "mel": torch.from_numpy(mels).unsqueeze(1),  # (T, 1, 80, 16)
            "clip_mel": torch.from_numpy(_clip_window(mels, T)).unsqueeze(0),  # (1, 80, 16)
            "clip": ci,
            "clip_id": self.store.clips[ci].clip_id,
            "start": s,
            "ref_start": ref,
        }
        if self.with_mouth:
            sample["mouth"] = torch.from_numpy(self.store.mouth(ci)[s : s + T])  # (T, 7)
        if self.audio_frames:  # drawn after every other draw, so those are as without it
            a = int(rng.integers(0, max(1, n - self.audio_frames + 1)))
            frames = np.minimum(np.arange(a, a + self.audio_frames), n - 1)  # (A,)
            sample["audio_mel"] = torch.from_numpy(self._mels(ci, frames.tolist(), rng)).unsqueeze(1)
            sample["audio_mouth"] = torch.from_numpy(self.store.mouth(ci)[frames])  # (A, 7)
        return sample


class SyncWindows(_Windows):
    """Pairs for the SyncNet expert: lower half of a T-frame clip and a 0.2 s mel window.

    frames (3, T, H/2, W) in [-1, 1]; mel (1, 80, 16); label 1.0 when the mel is the clip's
    own (centred on its middle frame), 0.0 when it is centred `min_offset` frames or more away
    (same clip when it is long enough, else another clip). Half the samples are positive.
    clip, clip_id, start (of the frames), audio_start (of the audio window's clip): debugging.
    """

    def __init__(
        self,
        store: ClipStore,
        n_frames: int = 5,
        augment: AudioAugment | None = None,
        seed: int = 0,
        min_offset: int = 3,
    ) -> None:
        super().__init__(store, n_frames, augment, seed)
        self.min_offset = min_offset

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | int]:
        epoch, index = _split_key(key)
        rng = _rng(self.seed, epoch, index)
        ci, s, T = int(self.clip_of[index]), int(self.start_of[index]), self.T
        pix = to_unit(self.store.frames(ci, np.arange(s, s + T)))  # (T, H, W, 3)
        lower = pix[:, pix.shape[1] // 2 :].permute(3, 0, 1, 2).contiguous()  # (3, T, H/2, W)
        positive = bool(rng.random() < 0.5)
        a_ci, a_s = (ci, s) if positive else self._negative(rng, ci, s)
        mels = self._mels(a_ci, list(range(a_s, a_s + T)), rng)  # (T, 80, 16)
        return {
            "frames": lower,
            "mel": torch.from_numpy(_clip_window(mels, T)).unsqueeze(0),  # (1, 80, 16)
            "label": torch.tensor(float(positive)),
            "clip": ci,
            "clip_id": self.store.clips[ci].clip_id,
            "start": s,
            "audio_start": a_s,
        }

    def _negative(self, rng: np.random.Generator, ci: int, s: int) -> tuple[int, int]:
        """A window start whose audio is `min_offset`+ frames away, from real window positions."""
        n = self.store.clips[ci].n_frames
        starts = np.arange(0, n - self.T + 1)
        far = starts[np.abs(starts - s) >= self.min_offset]
        if far.size:
            return ci, int(rng.choice(far))
        others = np.flatnonzero(self.clip_of != ci)
        if others.size == 0:
            raise CorpusError("SyncNet negatives need clips longer than T + min_offset frames or 2+ clips")
        j = int(rng.choice(others))
        return int(self.clip_of[j]), int(self.start_of[j])


def _clip_window(mels: np.ndarray, T: int) -> np.ndarray:
    """The clip's sync mel (80, 16) from its T per-frame windows: the middle frame's window.

    Equal to `audio.clip_mel_window(mel, s + T // 2)` for odd T (tested).
    """
    if T % 2 == 0:
        raise ValueError(f"T={T}: the clip mel window is centred on a middle frame; use an odd T")
    return mels[T // 2]


def _reference_start(rng: np.random.Generator, n: int, s: int, T: int) -> int:
    """A random other window start in the clip (Wav2Lip): non-overlapping if possible."""
    starts = np.arange(0, n - T + 1)
    for allowed in (starts[np.abs(starts - s) >= T], starts[starts != s]):
        if allowed.size:
            return int(rng.choice(allowed))
    return s
