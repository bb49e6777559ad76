"""Gradio event handlers: thin functions from UI values to lipmem_app / analysis calls.

Each public method is one event of app.py. LipMemError becomes gr.Error (`user_errors`);
progress goes through gr.Progress. No science here: see generate_view.py, inputs.py and analysis/.
"""

from __future__ import annotations

from functools import cache

import gradio as gr
import numpy as np

from lipmem_app import memory_views as mv
from lipmem_app import slot_views as sv
from lipmem_app.choices import values
from lipmem_app.context import AppContext
from lipmem_app.errors import user_errors
from lipmem_app.generate_view import GROUND_TRUTH, GeneratedClip, render_ground_truth, run_model
from lipmem_app.inputs import FACE_SOURCES, resolve_face, resolve_speech
from lipmem_app.memory_views import clip_timeline
from lipmem_core.errors import LipMemError

# Gradio finds progress trackers by a gr.Progress default; the tracker itself is request-local
# (a context variable), so one shared default instance serves every request.
PROGRESS = gr.Progress()


@cache
def _voices() -> tuple[str, ...]:
    from lipmem_core.data.synth.speech import list_voices

    return tuple(list_voices())


class Handlers:
    """All events of the app, sharing one AppContext (checkpoints, cached models)."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def warm_up(self) -> None:
        """Pay the one-time costs (default model, its probe set, UMAP's JIT compile) up front."""
        names = self.ctx.list_checkpoints()
        if not names:
            return
        try:
            self.ctx.pipeline(names[0])
            sv.slot_map_figure(self.ctx, names[0], "value", "viseme", "umap")
        except LipMemError:
            pass  # e.g. a checkpoint without memory: its tabs explain that when used

    # ---- Generate tab ----------------------------------------------------------------------
    def voices(self) -> list[str]:
        """Voice picker choices ('en-us', 'en-us+m3', ...)."""
        return list(_voices())

    def face_source_visibility(self, source: str):
        """Show the input that matches the chosen face source."""
        example, image, video = (source == value for value in values(FACE_SOURCES))
        return (
            gr.update(visible=example),
            gr.update(visible=example),
            gr.update(visible=image),
            gr.update(visible=video),
        )

    def speech_source_visibility(self, source: str):
        """Text + voice for typed text, the audio component otherwise."""
        typed = source == "text"
        return gr.update(visible=typed), gr.update(visible=typed), gr.update(visible=not typed)

    @user_errors
    def example_face(self, name: str) -> np.ndarray:
        """The neutral render of an example identity (256 px preview)."""
        return self.ctx.example_face(name, size=256)

    @user_errors
    def generate(
        self,
        face_source: str,
        example: str | None,
        image: str | None,
        video: str | None,
        speech_source: str,
        text: str | None,
        voice: str | None,
        audio: str | None,
        checkpoint: str | None,
        progress: gr.Progress = PROGRESS,
    ):
        """Face + speech -> (MP4 path, addressing timeline, notices markdown, GeneratedClip state).

        Sources are the values of inputs.FACE_SOURCES / SPEECH_SOURCES ("example", "text", ...);
        `checkpoint` names a checkpoint directory, or is generate_view.GROUND_TRUTH for SynthTalk's
        own renderer."""
        face = resolve_face(face_source, example, image, video)
        progress(0.02, desc="preparing the speech")
        speech = resolve_speech(speech_source, text, voice, audio)

        def report(fraction: float, desc: str) -> None:
            progress(fraction, desc=desc)

        with self.ctx.request_files() as directory:
            out_path = directory / "lipmem.mp4"
            if checkpoint == GROUND_TRUTH:
                clip = render_ground_truth(self.ctx, face, speech, out_path, report)
            else:
                clip = run_model(self.ctx, face, speech, checkpoint, out_path, report)
        progress(0.95, desc="drawing the addressing timeline")
        return clip.video, clip_timeline(self.ctx, clip), notices_markdown(clip), clip

    # ---- Phonemes <-> slots tab ------------------------------------------------------------
    def analysis_source_visibility(self, source: str):
        """The upload inputs show only for 'Upload a clip'."""
        return gr.update(visible=source == "upload")

    @user_errors
    def analyse(
        self,
        source: str,
        clip: GeneratedClip | None,
        checkpoint: str | None,
        other_checkpoint: str | None,
        upload: str | None,
        aligner: str,
        transcript: str | None,
        textgrid: str | None,
        statistic: str,
        level: str,
        show_all: bool,
        progress: gr.Progress = PROGRESS,
    ):
        """-> (heatmap, second checkpoint's heatmap, statistics table, note on the statistics,
        timeline, [Analysis] state, most used slot, cleared slot lips, cleared slot table, Export)."""
        progress(0.05, desc="addressing the memory and aligning phones")
        args = (clip, upload, aligner, transcript, textgrid)
        analyses = [mv.analysis_for(self.ctx, source, checkpoint, *args)]
        if other_checkpoint:
            progress(0.4, desc=f"addressing with {other_checkpoint}")
            analyses.append(mv.analysis_for(self.ctx, source, other_checkpoint, *args))
        progress(0.8, desc="drawing")
        first = analyses[0]
        return (
            mv.heatmap_figure(first, statistic, level, show_all),
            _second(mv.heatmap_figure(analyses[1], statistic, level, show_all) if other_checkpoint else None),
            mv.statistics_table(analyses),
            mv.statistics_note(analyses),
            mv.timeline_figure(first),
            analyses,
            int(first.frames["slot"].mode().iloc[0]),
            None,  # the slot inspector's lips and table belonged to the previous analysis
            None,
            mv.analysis_export(analyses, statistic, level, show_all),
        )

    @user_errors
    def heatmap(self, analyses: list[mv.Analysis] | None, statistic: str, level: str, show_all: bool):
        """Redraw the heatmaps of the current analysis with another statistic, level or slot set."""
        if not analyses:
            raise LipMemError("nothing analysed yet: press 'Analyse' first")
        figures = [mv.heatmap_figure(a, statistic, level, show_all) for a in analyses]
        return (
            figures[0],
            _second(figures[1] if len(figures) > 1 else None),
            mv.analysis_export(analyses, statistic, level, show_all),
        )

    @user_errors
    def slot_details(self, analyses: list[mv.Analysis] | None, slot: float | None, identity: str):
        """A slot's lip image (its value decoded for an identity) and the phones it answers to,
        for the first analysed checkpoint."""
        if not analyses:
            raise LipMemError("nothing analysed yet: press 'Analyse' first")
        if slot is None:  # the number field was cleared
            raise LipMemError("type a slot number (0 is the first slot)")
        analysis = analyses[0]
        checkpoint = analysis.checkpoint or None
        face = self._face_for(checkpoint, identity)
        image = sv.gallery_images(self.ctx, checkpoint, face, [int(slot)])[0]
        return image, mv.slot_phones_table(analysis.frames, int(slot))

    # ---- Slot map, gallery, playground -----------------------------------------------------
    def _face_for(self, checkpoint: str | None, identity: str) -> np.ndarray:
        size = self.ctx.checkpoint(checkpoint).model.cfg.img_size
        return self.ctx.example_face(identity, size=size)

    @user_errors
    def slot_map(
        self, checkpoint: str | None, memory: str, colour: str, layout: str, progress: gr.Progress = PROGRESS
    ):
        """UMAP (or PCA) of the value/key slots coloured by dominant phone or viseme."""
        progress(0.1, desc="naming slots on the probe set and embedding them (first time only)")
        return sv.slot_map_figure(self.ctx, checkpoint, memory, colour, layout)  # (figure, Export)

    @user_errors
    def gallery(
        self,
        checkpoint: str | None,
        identity: str,
        order: str,
        show_unused: bool,
        progress: gr.Progress = PROGRESS,
    ):
        """Every used slot's mouth for an identity, grouped by viseme -> (figure, Export)."""
        progress(0.1, desc="decoding one image per slot")
        face = self._face_for(checkpoint, identity)
        return sv.gallery(self.ctx, checkpoint, face, order, show_unused)

    @user_errors
    def playground(
        self,
        checkpoint: str | None,
        identity: str,
        sequence: str,
        frames_per_step: float,
        progress: gr.Progress = PROGRESS,
    ):
        """A hand-made slot (or phone) sequence -> (silent MP4, image strip, steps table, Export)."""
        from analysis.exports import Export, export_metadata

        progress(0.1, desc="decoding the steered lips")
        face = self._face_for(checkpoint, identity)
        with self.ctx.request_files() as directory:
            out = directory / "steered.mp4"
            video, strip, steps = sv.steer(self.ctx, checkpoint, face, sequence, int(frames_per_step), out)
        name = self.ctx.checkpoint_dir(checkpoint).name
        meta = export_metadata(
            "playground", name, f"{identity}, sequence '{sequence}'", slots_named_by="probe set"
        )
        return str(video), strip, steps, Export(meta, tables={"steps": steps}, images={"strip": strip})

    # ---- Compare tab -----------------------------------------------------------------------
    @user_errors
    def compare(
        self,
        example: str,
        speech_source: str,
        text: str | None,
        voice: str | None,
        audio: str | None,
        memory: str | None,
        ablation: str | None,
        progress: gr.Progress = PROGRESS,
    ):
        """One input, three renderings -> (side-by-side MP4, mouth strip, mouth-oracle curves,
        error table, notices markdown, Export state)."""
        from analysis.compare import mouth_strip
        from lipmem_app import compare_view as cv

        face = resolve_face("example", example, None, None)
        progress(0.02, desc="preparing the speech")
        speech = resolve_speech(speech_source, text, voice, audio)

        def report(fraction: float, desc: str) -> None:
            progress(fraction, desc=desc)

        comparison = cv.compare(self.ctx, face, speech, memory, ablation, report)
        progress(0.9, desc="encoding the side-by-side video")
        with self.ctx.request_files() as directory:
            video = cv.side_by_side_video(comparison, directory / "compare.mp4")
        strip = mouth_strip(comparison.renderings, scale=1.0, max_columns=20)  # fits a 1200 px page
        figure = cv.curves_figure(comparison)
        errors = cv.errors_table(comparison)
        notices = "\n".join(f"- {n}" for n in comparison.notices)
        return str(video), strip, figure, errors, notices, cv.export(comparison, example, strip, figure)

    # ---- Exports (every analysis view) -----------------------------------------------------
    @user_errors
    def export(self, export):
        """Write the view's figure (HTML), table (CSV) and images (PNG) -> the file list, shown."""
        if export is None:
            raise LipMemError("nothing to export yet: draw the view first")
        with self.ctx.request_files() as directory:
            files = export.write(directory)
        return gr.update(value=[str(p) for p in files], visible=True)

    # ---- Model card tab --------------------------------------------------------------------
    def model_card(self, checkpoint: str | None) -> str:
        """Markdown card of a checkpoint; a plain notice when there is none (never an error:
        the tab is also rendered when the UI is built)."""
        from lipmem_app.model_card import DOMAIN_CARD, model_card
        from lipmem_core.errors import LipMemError

        try:
            return model_card(self.ctx, checkpoint)
        except LipMemError as exc:
            return f"**No model card to show.** {exc}\n\n{DOMAIN_CARD}"


def _second(figure):
    """The second checkpoint's heatmap shows only when a second checkpoint was chosen."""
    return gr.update(value=figure, visible=figure is not None)


def notices_markdown(clip: GeneratedClip) -> str:
    """What the user should know about this clip, one bullet each."""
    lines = list(clip.notices)
    if clip.checkpoint is None:
        lines.insert(
            0, "Rendered by the **ground-truth renderer**: SynthTalk's ground-truth mouth motion, no model."
        )
    return "\n".join(f"- {line}" for line in lines)
