"""The Generate tab: a face + speech -> a talking-face MP4 and its memory addressing.

Two renderers share one entry point:
- a LipMem checkpoint (the model; the audio-addressed path of SyncTalkFace), through
  lipmem_core.infer.pipeline.TalkingFacePipeline;
- the *ground-truth renderer*: SynthTalk's own ground truth (phones -> mouth trajectory -> face
  renderer), which needs no checkpoint and shows what a perfect SynthTalk model would draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lipmem_app.context import EXAMPLE_IDENTITIES, AppContext
from lipmem_app.inputs import CLIP_ID, Face, Speech
from lipmem_app.limits import MAX_SECONDS
from lipmem_core.config import FPS
from lipmem_core.errors import LipMemError
from lipmem_core.phones import Interval

# The Renderer choice that draws SynthTalk's ground truth (the corpus renderer driven by the
# exact phones) instead of a checkpoint; a name no checkpoint directory has.
GROUND_TRUTH = ":ground-truth"
GROUND_TRUTH_LABEL = "SynthTalk ground truth (the corpus renderer)"
GROUND_TRUTH_SIZE = 256  # px: the renderer draws at any size; 256 reads well in the browser

Progress = Callable[[float, str], None]


@dataclass
class GeneratedClip:
    """The clip just generated, kept in gr.State for the Phonemes <-> slots tab."""

    video: str
    audio: np.ndarray  # (N,) float32, 16 kHz
    phones: pd.DataFrame | None  # phone table (analysis.tables): exact for typed text, else None
    text: str | None
    checkpoint: str | None  # None for the ground-truth renderer
    notices: list[str]


def phones_for(speech: Speech, progress: Progress) -> pd.DataFrame:
    """Exact phones when the speech came from text; else a PocketSphinx recognition + alignment."""
    if speech.phones is not None:
        return speech.phones
    from analysis.align import align_pocketsphinx

    progress(0.1, "recognising and aligning the speech (PocketSphinx)")
    return align_pocketsphinx(speech.audio, speech.text, utterance=CLIP_ID).table


def render_ground_truth(
    ctx: AppContext, face: Face, speech: Speech, out_path: Path, progress: Progress
) -> GeneratedClip:
    """SynthTalk's ground truth for this speech on an example identity: (n, 256, 256, 3) -> MP4."""
    from lipmem_core.audio import num_frames
    from lipmem_core.data.synth.face_render import render_clip
    from lipmem_core.data.synth.mouth import mouth_trajectory
    from lipmem_core.infer.video import VideoWriter

    if not face.is_synthtalk:
        raise LipMemError(
            "the ground-truth renderer draws SynthTalk identities only: choose an example identity, "
            "or pick a LipMem checkpoint to animate your own image or video"
        )
    phones = phones_for(speech, progress)
    n = num_frames(len(speech.audio))
    progress(0.4, f"rendering {n} frames")
    intervals = [Interval(float(r.start), float(r.end), str(r.phone)) for r in phones.itertuples()]
    mouth = mouth_trajectory(intervals, n, FPS)  # (n, 7)
    # The identity's seed also drives head drift and blinks, so a clip is reproducible.
    rng = np.random.default_rng(EXAMPLE_IDENTITIES[face.example])
    frames = render_clip(ctx.identity(face.example), mouth, rng, size=GROUND_TRUTH_SIZE)  # (n, H, W, 3)
    progress(0.8, "encoding the MP4")
    with VideoWriter(out_path, GROUND_TRUTH_SIZE, GROUND_TRUTH_SIZE, FPS, audio=speech.audio) as writer:
        writer.write(frames)
    return GeneratedClip(str(out_path), speech.audio, phones, speech.text, None, [])


def run_model(
    ctx: AppContext,
    face: Face,
    speech: Speech,
    checkpoint: str | None,
    out_path: Path,
    progress: Progress,
) -> GeneratedClip:
    """A LipMem checkpoint animates the face with the speech (TalkingFacePipeline).

    The checkpoint is the whole choice: the no-memory ablation is a checkpoint of its own
    (`<name>-nomem`), picked by name, so what is named on screen is what drew the clip."""
    pipeline = ctx.pipeline(checkpoint)
    img_size = ctx.checkpoint(checkpoint).config.img_size
    if face.is_synthtalk:
        # The example render IS the crop a SynthTalk model was trained on: skip detection.
        source, is_crop = ctx.example_face(face.example, size=img_size), True
    else:
        source, is_crop = str(face.path), False
    progress(0.1, "generating")
    result = pipeline.generate(
        source,
        speech.audio,
        out_path,
        progress=progress,
        face_is_crop=is_crop,
        max_seconds=MAX_SECONDS,
    )
    # A video with no face in any frame and silent speech are refused by the pipeline itself
    # (the same rule as the CLI). The pipeline's notices include the out-of-domain warning for real photos and videos.
    name = ctx.checkpoint_dir(checkpoint).name
    return GeneratedClip(
        str(result.out_path),
        speech.audio,
        speech.phones,
        speech.text,
        name,
        list(result.notices),
    )
