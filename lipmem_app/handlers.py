"""Gradio event handlers: thin functions from UI values to lipmem_app / analysis calls.

Each public method is one event of app.py. LipMemError becomes gr.Error (`user_errors`);
progress goes through gr.Progress. No science here: see generate.py, inputs.py and analysis/.
"""

from __future__ import annotations

from functools import cache

import gradio as gr
import numpy as np

from lipmem_app.context import AppContext
from lipmem_app.errors import user_errors
from lipmem_app.generate import ORACLE, Clip, render_oracle, run_model
from lipmem_app.inputs import FACE_SOURCES, SPEECH_SOURCES, resolve_face, resolve_speech


@cache
def _voices() -> tuple[str, ...]:
    from lipmem_core.data.speech import list_voices

    return tuple(list_voices())


class Handlers:
    """All events of the app, sharing one AppContext (checkpoints, cached models)."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    # ---- Generate tab ----------------------------------------------------------------------
    def voices(self) -> list[str]:
        """Voice picker choices ('en-us', 'en-us+m3', ...)."""
        return list(_voices())

    def face_source_visibility(self, source: str):
        """Show the input that matches the chosen face source."""
        example, image, video = (source == s for s in FACE_SOURCES)
        return (
            gr.update(visible=example),
            gr.update(visible=example),
            gr.update(visible=image),
            gr.update(visible=video),
        )

    def speech_source_visibility(self, source: str):
        """Text + voice for typed text, the audio component otherwise."""
        typed = source == SPEECH_SOURCES[0]
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
        use_memory: bool,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ):
        """Face + speech -> (MP4 path, addressing timeline, notices markdown, Clip state)."""
        face = resolve_face(face_source, example, image, video)
        progress(0.02, desc="preparing the speech")
        speech = resolve_speech(speech_source, text, voice, audio)
        out_path = self.ctx.request_dir() / "lipmem.mp4"

        def report(fraction: float, desc: str) -> None:
            progress(fraction, desc=desc)

        if checkpoint == ORACLE:
            clip = render_oracle(self.ctx, face, speech, out_path, report)
        else:
            clip = run_model(self.ctx, face, speech, checkpoint, use_memory, out_path, report)
        return clip.video, None, notices_markdown(clip), clip

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


def notices_markdown(clip: Clip) -> str:
    """What the user should know about this clip, one bullet each."""
    lines = list(clip.notices)
    if clip.checkpoint is None:
        lines.insert(
            0, "Rendered by the **oracle renderer**: SynthTalk's ground-truth mouth motion, no model."
        )
    return "\n".join(f"- {line}" for line in lines)
