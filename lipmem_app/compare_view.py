"""The Compare tab: one input drawn by the ground truth, the memory model and the ablation.

The ground truth is SynthTalk's renderer driven by the speech's phones (the ground-truth renderer
of the Generate tab, here at the neutral pose the models draw on); the two generators animate
the same identity's neutral face with the same audio. The view shows them side by side (one
MP4), their mouth crops over time (analysis.compare.mouth_strip) and the mouth oracle's reading
of jaw, closure and rounding for all three on one figure (analysis.compare.oracle_curves).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lipmem_app.context import ABLATION_SUFFIX, AppContext
from lipmem_app.generate_view import Progress, phones_for
from lipmem_app.inputs import Face, Speech
from lipmem_app.limits import MAX_SECONDS
from lipmem_core.config import FPS
from lipmem_core.errors import CheckpointError, LipMemError

ORACLE_CHECKPOINT = "mouth-oracle"  # checkpoints/<this>: the CNN that reads mouth parameters
GROUND_TRUTH = "ground truth"
PANEL_SIZE = 256  # px of each panel of the side-by-side video


@dataclass
class Comparison:
    """What the Compare tab shows; `renderings` maps a row name to frames (n, H, W, 3) uint8."""

    renderings: dict[str, np.ndarray]
    speech: Speech
    phones: pd.DataFrame
    curves: pd.DataFrame | None  # analysis.compare.oracle_curves, None without a mouth oracle
    errors: pd.DataFrame | None  # analysis.compare.curve_errors against the ground truth
    notices: list[str]


def has_memory(ctx: AppContext, name: str) -> bool:
    """Whether checkpoint `name` has an Audio-Lip Memory (config.json only, no weights)."""
    from lipmem_core.checkpoint import read_config

    config = read_config(ctx.checkpoint_dir(name))
    return bool((config.get("model_config") or {}).get("use_memory", True))


def default_pair(ctx: AppContext) -> tuple[str | None, str | None]:
    """(memory model, ablation) to preselect: the default checkpoint and its `-nomem` sibling
    when present, else the first checkpoint with memory and the first without."""
    names = ctx.list_checkpoints()
    with_memory = [n for n in names if has_memory(ctx, n)]
    without = [n for n in names if not has_memory(ctx, n)]
    memory = with_memory[0] if with_memory else None
    sibling = f"{memory}{ABLATION_SUFFIX}" if memory else None
    ablation = sibling if sibling in without else (without[0] if without else None)
    return memory, ablation


def mouth_oracle(ctx: AppContext):
    """The mouth oracle in the checkpoint root (loaded once), or None when it is not there."""
    from lipmem_core.evaluation.oracle import load_oracle

    directory = Path(ctx.checkpoints_root) / ORACLE_CHECKPOINT
    if not (directory / "config.json").is_file():
        return None
    return ctx.cached(("oracle", str(directory)), lambda: load_oracle(directory))


def model_frames(ctx: AppContext, checkpoint: str, face_name: str, speech: Speech) -> np.ndarray:
    """The frames a generator draws for an example identity and speech: (n, img, img, 3) uint8."""
    pipeline = ctx.pipeline(checkpoint)
    face = ctx.example_face(face_name, size=ctx.checkpoint(checkpoint).config.img_size)
    return pipeline.generate(face, speech.audio, face_is_crop=True, max_seconds=MAX_SECONDS).frames


def compare(
    ctx: AppContext, face: Face, speech: Speech, memory: str | None, ablation: str | None, progress: Progress
) -> Comparison:
    """Render the input three ways and read their mouths with the oracle."""
    from analysis.compare import curve_errors, ground_truth_frames, oracle_curves

    if not face.is_synthtalk:
        raise LipMemError("the comparison draws SynthTalk identities only (the ground truth needs one)")
    if not memory or not ablation:
        raise CheckpointError("choose a memory model and an ablation to compare")
    if not has_memory(ctx, memory):
        raise CheckpointError(f"{memory!r} has no Audio-Lip Memory: choose a memory model on the left")
    if memory == ablation:
        raise CheckpointError("the memory model and the ablation are the same checkpoint: choose two")
    phones = phones_for(speech, progress)
    progress(0.2, f"drawing with {memory}")
    made = {f"memory: {memory}": model_frames(ctx, memory, face.example, speech)}
    progress(0.45, f"drawing with {ablation}")
    made[f"ablation: {ablation}"] = model_frames(ctx, ablation, face.example, speech)
    n = len(next(iter(made.values())))
    size = next(iter(made.values())).shape[1]
    progress(0.65, "rendering the ground truth")
    truth, _ = ground_truth_frames(ctx.identity(face.example), phones, n, size=size)
    renderings = {GROUND_TRUTH: truth, **made}
    notices = []
    if not has_memory(ctx, ablation):
        notices.append(f"`{ablation}` is the no-memory ablation: its decoder gets the audio feature alone.")
    else:
        notices.append(f"`{ablation}` has a memory too: this compares two memory models.")
    oracle = mouth_oracle(ctx)
    curves = errors = None
    if oracle is None:
        notices.append(
            f"No mouth oracle in `{ctx.checkpoints_root}/{ORACLE_CHECKPOINT}`: the curves need one "
            "(`python -m lipmem_core.oracle --out checkpoints/mouth-oracle`)."
        )
    else:
        progress(0.8, "reading the mouths with the oracle")
        curves = oracle_curves(oracle, renderings)
        errors = curve_errors(curves, GROUND_TRUTH)
    return Comparison(renderings, speech, phones, curves, errors, notices)


def side_by_side_video(comparison: Comparison, out_path: Path) -> Path:
    """The three renderings as one MP4 with the speech, each panel titled."""
    from lipmem_core.infer.video import VideoWriter

    panels = []
    for name, frames in comparison.renderings.items():
        big = np.stack(
            [cv2.resize(f, (PANEL_SIZE, PANEL_SIZE), interpolation=cv2.INTER_CUBIC) for f in frames]
        )
        for f in big:  # the title is drawn into the frames: a video has no caption of its own
            cv2.rectangle(f, (0, 0), (PANEL_SIZE, 20), (0, 0, 0), -1)
            cv2.putText(
                f, name[:34], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA
            )
        panels.append(big)
    video = np.concatenate(panels, axis=2)  # (n, 256, 768, 3)
    with VideoWriter(out_path, video.shape[2], video.shape[1], FPS, audio=comparison.speech.audio) as writer:
        writer.write(video)
    return out_path


def curves_figure(comparison: Comparison):
    """Jaw, closure and rounding read by the oracle, all three renderings on one figure."""
    from analysis.plots import mouth_curves

    if comparison.curves is None:
        return None
    text = comparison.speech.text
    title = "Mouth read by the oracle" + (f": '{text}'" if text else "")
    return mouth_curves(comparison.curves, comparison.phones, title=title)


def errors_table(comparison: Comparison) -> pd.DataFrame:
    """Each generator's mean absolute difference from the ground truth, as the oracle reads them."""
    if comparison.errors is None:
        return pd.DataFrame({"source": [], "note": []})
    table = comparison.errors.copy()
    for col in table.columns[1:]:
        table[col] = table[col].map(lambda v: f"{v:.3f}")
    n = len(next(iter(comparison.renderings.values())))
    table.insert(1, "frames", n)
    return table


def export(comparison: Comparison, identity: str, strip: np.ndarray, figure):
    """The Compare view's export: the curves (figure and table), the strip and the error table."""
    from analysis.exports import Export, export_metadata

    names = list(comparison.renderings)
    text = comparison.speech.text or "an uploaded recording"
    meta = export_metadata(
        "compare",
        " vs ".join(n.split(": ", 1)[-1] for n in names[1:]),
        f"{identity} speaking '{text}' ({len(comparison.phones)} phone intervals)",
        frames=len(comparison.renderings[names[0]]),
        rows=", ".join(names),
    )
    out = Export(meta, images={"mouth_strip": strip})
    if figure is not None:
        out.figures["oracle_curves"] = figure
        out.tables["oracle_curves"] = comparison.curves
        out.tables["errors"] = comparison.errors
    return out
