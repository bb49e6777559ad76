"""LipMem: a research app for SyncTalkFace's Audio-Lip Memory (Gradio wiring only).

`demo = build_demo()` is built at import but loads no model: the first request that needs one
loads it once and every later request reuses it. `python app.py` and `gradio app.py` both
serve it; host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT. Handlers live in
lipmem_app/ (plain functions); the science lives in lipmem_core/ and analysis/.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from lipmem_app.context import EXAMPLE_IDENTITIES, AppContext
from lipmem_app.generate import ORACLE
from lipmem_app.handlers import Handlers
from lipmem_app.inputs import FACE_SOURCES, SPEECH_SOURCES
from lipmem_app.limits import LIMITS_MARKDOWN, MAX_UPLOAD_MB

CSS = """
.lm-header h1 {margin-bottom: 0.1em;}
.lm-status {font-size: 0.92em; opacity: 0.85;}
.lm-notice {border-left: 4px solid var(--color-accent); padding-left: 0.6em;}
"""

INTRO = """# LipMem
An open implementation of **SyncTalkFace** (Park et al., AAAI 2022): a talking-face generator whose
**Audio-Lip Memory** stores lip shapes in *slots* that the audio learns to address. Generate a clip,
then look inside the memory: which phonemes each slot answers to, what each slot draws, and how
a hand-made slot sequence moves the lips."""


def _status_markdown(handlers: Handlers) -> str:
    names = handlers.ctx.list_checkpoints()
    if names:
        return f"Checkpoints found: {', '.join(f'`{n}`' for n in names)}."
    return (
        f"**No trained checkpoint found** in `{handlers.ctx.checkpoints_root}`. The *oracle renderer* "
        "(SynthTalk's ground truth) still works; model tabs say what is missing."
    )


def build_demo(checkpoint_dir: str | Path | None = None, analysis_dir: str | Path | None = None) -> gr.Blocks:
    """The whole UI. `checkpoint_dir` overrides LIPMEM_CHECKPOINTS / ./checkpoints (tests use it)."""
    ctx = AppContext()
    if checkpoint_dir is not None:
        ctx.checkpoints_root = Path(checkpoint_dir)
    if analysis_dir is not None:
        ctx.analysis_dir = Path(analysis_dir)
    h = Handlers(ctx)
    generators = ctx.list_checkpoints()
    examples = list(EXAMPLE_IDENTITIES)

    with gr.Blocks(title="LipMem: Audio-Lip Memory explorer") as demo:
        clip_state = gr.State(None)
        with gr.Column(elem_classes="lm-header"):
            gr.Markdown(INTRO)
            gr.Markdown(_status_markdown(h), elem_classes="lm-status")

        with gr.Tabs():
            # ---------------------------------------------------------------- Generate
            with gr.Tab("Generate", id="generate"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        face_source = gr.Radio(list(FACE_SOURCES), value=FACE_SOURCES[0], label="Face")
                        example = gr.Dropdown(examples, value=examples[0], label="Example SynthTalk identity")
                        example_preview = gr.Image(
                            value=None, label="Identity", height=180, interactive=False, show_label=False
                        )
                        face_image = gr.Image(type="filepath", label="Face image", visible=False)
                        face_video = gr.Video(label="Face video", visible=False)
                        speech_source = gr.Radio(
                            list(SPEECH_SOURCES), value=SPEECH_SOURCES[0], label="Speech"
                        )
                        text = gr.Textbox(
                            value="The quick brown fox jumps over the lazy dog.",
                            label="Text to speak (espeak-ng)",
                            lines=2,
                        )
                        voice = gr.Dropdown(h.voices(), value=h.voices()[0], label="Voice")
                        audio = gr.Audio(
                            sources=["upload", "microphone"],
                            type="filepath",
                            label="Speech audio",
                            visible=False,
                        )
                        with gr.Row():
                            checkpoint = gr.Dropdown(
                                generators + [ORACLE],
                                value=(generators + [ORACLE])[0],
                                label="Renderer",
                                scale=3,
                            )
                            use_memory = gr.Checkbox(value=True, label="Audio-Lip Memory on", scale=1)
                        run = gr.Button("Generate", variant="primary")
                        gr.Markdown(LIMITS_MARKDOWN, elem_classes="lm-status")
                    with gr.Column(scale=6):
                        video_out = gr.Video(label="Talking face", autoplay=True, height=360)
                        notices = gr.Markdown(elem_classes="lm-notice")
                        timeline = gr.Plot(label="Memory addressing over time")
                gr.Examples(
                    examples=[
                        ["Example identity", examples[0], "Text", "Bob made a big map of Maui.", ORACLE],
                        ["Example identity", examples[2], "Text", "Five very fine violins.", ORACLE],
                        ["Example identity", examples[4], "Text", "We all see the moon, Ruth.", ORACLE],
                    ],
                    inputs=[face_source, example, speech_source, text, checkpoint],
                    label="Examples (click one, then Generate)",
                )

            # ---------------------------------------------------------------- Model card
            with gr.Tab("Model card", id="card"):
                card_checkpoint = gr.Dropdown(
                    generators, value=generators[0] if generators else None, label="Checkpoint"
                )
                card = gr.Markdown(h.model_card(generators[0] if generators else None))
                card_checkpoint.change(h.model_card, card_checkpoint, card, api_name="model_card")

        face_source.change(
            h.face_source_visibility,
            face_source,
            [example, example_preview, face_image, face_video],
            api_name="face_source_visibility",
            api_visibility="private",
            queue=False,
        )
        speech_source.change(
            h.speech_source_visibility,
            speech_source,
            [text, voice, audio],
            api_name="speech_source_visibility",
            api_visibility="private",
            queue=False,
        )
        example.change(h.example_face, example, example_preview, api_name="example_face")
        demo.load(h.example_face, example, example_preview, api_name="initial_example_face")
        run.click(
            h.generate,
            [
                face_source,
                example,
                face_image,
                face_video,
                speech_source,
                text,
                voice,
                audio,
                checkpoint,
                use_memory,
            ],
            [video_out, timeline, notices, clip_state],
            api_name="generate",
        )
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


# The default theme's fonts are served by Gradio itself: the page makes no outside request.
LAUNCH_KWARGS = {
    "css": CSS,
    "max_file_size": f"{MAX_UPLOAD_MB}mb",
    "theme": gr.themes.Default(primary_hue="indigo", secondary_hue="pink"),
}

demo = build_demo()

if __name__ == "__main__":
    # launch() reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT itself when they are set.
    demo.launch(**LAUNCH_KWARGS)
