"""LipMem: a research app for SyncTalkFace's Audio-Lip Memory (Gradio wiring only).

`import app` builds nothing and sets no thread count: `python app.py` builds the UI with
`build_demo(AppContext())`, sets the thread count and serves it; `gradio app.py` reads
`app.demo`, built on first access. Neither loads a model: the first request that needs one
loads it once and every later request reuses it. Host and port come from
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT. Handlers live in
lipmem_app/ (plain functions); the science lives in lipmem_core/ and analysis/.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import gradio as gr

from lipmem_app import compare_view
from lipmem_app.components import face_image as face_image_input
from lipmem_app.context import CACHE_MAX_AGE_S, CACHE_SWEEP_S, EXAMPLE_IDENTITIES, AppContext
from lipmem_app.generate_view import GROUND_TRUTH, GROUND_TRUTH_LABEL
from lipmem_app.handlers import Handlers
from lipmem_app.inputs import FACE_SOURCES, SPEECH_SOURCES
from lipmem_app.limits import LIMITS_MARKDOWN, MAX_UPLOAD_MB
from lipmem_app.memory_views import ALIGNERS, ANALYSIS_SOURCES, LEVELS, STATISTICS
from lipmem_app.slot_views import DEFAULT_FRAMES_PER_STEP, GALLERY_ORDERS, LAYOUTS, MEMORIES

EXAMPLES_DIR = Path(__file__).resolve().parent / "assets" / "examples"
CONCURRENCY = 2  # requests processed at once (the rest wait in the queue, up to 32)

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
        f"**No trained checkpoint found** in `{handlers.ctx.checkpoints_root}`. The *ground-truth renderer* "
        "(SynthTalk's ground truth) still works; model tabs say what is missing."
    )


def _generate_tab(
    h: Handlers, generators: list[str], examples: list[str], clip_state: gr.State
) -> tuple[gr.Dropdown, gr.Image]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            face_source = gr.Radio(list(FACE_SOURCES), value="example", label="Face")
            example = gr.Dropdown(examples, value=examples[0], label="Example SynthTalk identity")
            preview = gr.Image(label="Identity", height=180, interactive=False, show_label=False)
            face_image = face_image_input(label="Face image", visible=False)
            face_video = gr.Video(label="Face video", visible=False)
            speech_source = gr.Radio(list(SPEECH_SOURCES), value="text", label="Speech")
            text = gr.Textbox(
                value="The quick brown fox jumps over the lazy dog.",
                label="Text to speak (espeak-ng)",
                lines=2,
            )
            voices = h.voices()
            voice = gr.Dropdown(voices, value=voices[0], label="Voice")
            audio = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label="Speech audio", visible=False
            )
            renderers = [(name, name) for name in generators] + [(GROUND_TRUTH_LABEL, GROUND_TRUTH)]
            checkpoint = gr.Dropdown(
                renderers,
                value=renderers[0][1],
                label="Renderer",
                info="A checkpoint draws with its memory as trained; `…-nomem` is the no-memory ablation.",
            )
            run = gr.Button("Generate", variant="primary")
            gr.Markdown(LIMITS_MARKDOWN, elem_classes="lm-status")
        with gr.Column(scale=6):
            video_out = gr.Video(label="Talking face", autoplay=True, height=360, elem_id="generate-video")
            notices = gr.Markdown(elem_classes="lm-notice")
            timeline = gr.Plot(label="Memory addressing over time", elem_id="generate-timeline")
    renderer = generators[0] if generators else GROUND_TRUTH
    # Not cached: examples run on demand (a few seconds each), so start-up stays fast.
    gr.Examples(
        examples=[
            [
                "example",
                examples[0],
                None,
                "text",
                "Bob made a big map of Maui.",
                None,
                renderer,
            ],
            [
                "example",
                examples[2],
                None,
                "text",
                "Five very fine violins.",
                None,
                renderer,
            ],
            [
                "example",
                examples[4],
                None,
                "text",
                "We all see the moon, Ruth.",
                None,
                GROUND_TRUTH,
            ],
            [
                "example",
                examples[1],
                None,
                "audio",
                "",
                str(EXAMPLES_DIR / "hello.wav"),
                renderer,
            ],
            [
                "image",
                examples[0],
                str(EXAMPLES_DIR / "astronaut.jpg"),
                "text",
                "A real photo is outside SynthTalk's domain.",
                None,
                renderer,
            ],
        ],  # fmt: skip
        inputs=[face_source, example, face_image, speech_source, text, audio, checkpoint],
        label="Examples (click one, then Generate)",
        cache_examples=False,
    )
    face_source.change(
        h.face_source_visibility,
        face_source,
        [example, preview, face_image, face_video],
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
    example.change(h.example_face, example, preview, api_name="example_face")
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
        ],
        [video_out, timeline, notices, clip_state],
        api_name="generate",
    )
    return example, preview


def _checkpoint_dropdown(names: list[str]) -> gr.Dropdown:
    """A checkpoint picker: the given checkpoint names, the first (the default) preselected."""
    return gr.Dropdown(names, value=names[0] if names else None, label="Checkpoint")


def _tab_intro(text: str) -> gr.State:
    """A view's explanation on screen, and the state its Export button reads."""
    gr.Markdown(text)
    return gr.State(None)


def _export_row(h: Handlers, export_state: gr.State, name: str) -> None:
    """An Export button and the files it writes: the view's figure as self-contained HTML,
    its table as CSV (and images as PNG), each naming the checkpoint and data it shows."""
    with gr.Row():
        button = gr.Button("Export figure + table", size="sm", scale=1)
        # hidden until there is something to download: an empty file box is a large blank area
        files = gr.File(label="Exported files", file_count="multiple", interactive=False, scale=4,
                        visible=False, elem_id=f"{name}-exports")  # fmt: skip
    button.click(h.export, export_state, files, api_name=f"export_{name}")


def _compare_tab(h: Handlers, examples: list[str], voices: list[str]) -> None:
    memory_default, ablation_default = compare_view.default_pair(h.ctx)
    names = h.ctx.list_checkpoints()
    export_state = _tab_intro(
        "One input drawn three ways: the **ground truth** (SynthTalk's renderer driven by the exact "
        "phones), the **memory model** and the **ablation** without memory. The strip shows the mouth "
        "crops over time; the curves show how open, closed and rounded the mouth model *reads* each "
        "rendering (the mouth oracle, a CNN trained on SynthTalk renders). The closer a line follows "
        "the thick black ground truth, the better that model speaks this input."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            identity = gr.Dropdown(examples, value=examples[0], label="Identity")
            speech_source = gr.Radio(list(SPEECH_SOURCES), value="text", label="Speech")
            text = gr.Textbox(value="Bob made a big map of Maui.", label="Text to speak (espeak-ng)", lines=2)
            voice = gr.Dropdown(voices, value=voices[0], label="Voice")
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech audio",
                             visible=False)  # fmt: skip
            memory = gr.Dropdown(names, value=memory_default, label="Memory model")
            ablation = gr.Dropdown(names, value=ablation_default, label="Ablation (no memory)")
            run = gr.Button("Compare", variant="primary")
            notices = gr.Markdown(elem_classes="lm-notice", elem_id="compare-notices")
        with gr.Column(scale=5):
            video = gr.Video(label="Ground truth | memory model | ablation", autoplay=True,
                             elem_id="compare-video")  # fmt: skip
            errors = gr.Dataframe(label="Mean |difference| from the ground truth, as the oracle reads it",
                                  interactive=False, elem_id="compare-errors")  # fmt: skip
    strip = gr.Image(label="Mouth crops over time (rows: ground truth, memory model, ablation)",
                     interactive=False, height=230, elem_id="compare-strip")  # fmt: skip
    curves = gr.Plot(label="Jaw, closure and rounding over time", elem_id="compare-curves")
    _export_row(h, export_state, "compare")
    speech_source.change(
        h.speech_source_visibility, speech_source, [text, voice, audio],
        api_name="compare_speech_visibility", api_visibility="private", queue=False,
    )  # fmt: skip
    run.click(
        h.compare,
        [identity, speech_source, text, voice, audio, memory, ablation],
        [video, strip, curves, errors, notices, export_state],
        api_name="compare",
    )


def _memory_tab(h: Handlers, generators: list[str], examples: list[str], clip_state: gr.State) -> None:
    analysis_state = gr.State(None)
    export_state = _tab_intro(
        "Which phonemes does each slot answer to? Frames are labelled with the phone at their centre; "
        "each frame's *argmax slot* of A_aud is its unit. **PNMI** = I(phone; slot) / H(phone): 1 when "
        "slots determine phones, 0 when independent. Pick a second checkpoint to see two recipes side "
        "by side on the same data and statistic."
    )
    memory_models = [n for n in generators if compare_view.has_memory(h.ctx, n)]
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            source = gr.Radio(list(ANALYSIS_SOURCES), value="clip", label="Analyse")
            checkpoint = _checkpoint_dropdown(memory_models)
            other = gr.Dropdown(memory_models, value=None, label="Second checkpoint, side by side (optional)")
            with gr.Group(visible=False) as upload_group:
                upload = gr.File(label="Audio or video clip", file_types=["audio", "video"], type="filepath")
                aligner = gr.Radio(list(ALIGNERS), value="pocketsphinx", label="Phone alignment")
                transcript = gr.Textbox(label="Transcript (optional: recognised when empty)")
                textgrid = gr.File(
                    label="TextGrid (words + phones tiers)", file_types=[".TextGrid"], type="filepath"
                )
            statistic = gr.Radio(list(STATISTICS), value="p_label_given_slot", label="Heatmap statistic")
            level = gr.Radio(list(LEVELS), value=LEVELS[0], label="Level")
            show_all = gr.Checkbox(value=False, label="Show unused slots too", elem_id="show-all-slots")
            run = gr.Button("Analyse", variant="primary")
        with gr.Column(scale=5):
            stats_note = gr.Markdown(elem_classes="lm-notice", elem_id="analysis-note")
            stats = gr.Dataframe(
                label="Memory statistics", interactive=False, wrap=True, elem_id="analysis-stats"
            )
            heatmap = gr.Plot(label="Slot x phone", elem_id="analysis-heatmap")
            heatmap2 = gr.Plot(
                label="Slot x phone, second checkpoint", visible=False, elem_id="analysis-heatmap-2"
            )
            timeline = gr.Plot(label="Timeline", elem_id="analysis-timeline")
    _export_row(h, export_state, "analysis")
    gr.Markdown("#### Inspect a slot (of the first checkpoint)")
    with gr.Row(equal_height=False):
        slot = gr.Number(value=0, precision=0, minimum=0, label="Slot", scale=1)
        identity = gr.Dropdown(examples, value=examples[0], label="Identity", scale=1)
        show = gr.Button("Show slot", scale=1)
        lips = gr.Image(
            label="Lips of this slot's value", height=180, interactive=False, scale=1, elem_id="slot-lips"
        )
        top = gr.Dataframe(label="Phones it answers to", interactive=False, scale=3, elem_id="slot-phones")
    source.change(
        h.analysis_source_visibility,
        source,
        upload_group,
        api_name="analysis_source_visibility",
        api_visibility="private",
        queue=False,
    )
    run.click(
        h.analyse,
        [
            source,
            clip_state,
            checkpoint,
            other,
            upload,
            aligner,
            transcript,
            textgrid,
            statistic,
            level,
            show_all,
        ],
        [heatmap, heatmap2, stats, stats_note, timeline, analysis_state, slot, lips, top, export_state],
        api_name="analyse",
    )
    gr.on(
        [statistic.change, level.change, show_all.change],
        h.heatmap,
        [analysis_state, statistic, level, show_all],
        [heatmap, heatmap2, export_state],
        api_name="heatmap",
    )
    show.click(h.slot_details, [analysis_state, slot, identity], [lips, top], api_name="slot_details")


def _slot_map_tab(h: Handlers, generators: list[str]) -> None:
    export_state = _tab_intro(
        "Each diamond is one slot: its value row of **V** (what it draws) or key row of **K** (what "
        "audio calls it), laid out by UMAP (cosine) or PCA: slots close together store similar vectors. "
        "Colour = the phone (or viseme class) that most often picks the slot on a probe set of synthetic "
        "sentences with exact phones; the legend names each colour, grey slots are never picked. Hover "
        "a slot for its viseme and top phones."
    )
    with gr.Row():
        checkpoint = _checkpoint_dropdown(generators)
        memory = gr.Radio(list(MEMORIES), value=MEMORIES[0], label="Memory")
        colour = gr.Radio(["viseme", "phone"], value="viseme", label="Colour by")
        layout = gr.Radio(list(LAYOUTS), value="umap", label="Layout")
        run = gr.Button("Draw slot map", variant="primary")
    plot = gr.Plot(label="Slot map", elem_id="slot-map")
    _export_row(h, export_state, "slot_map")
    gr.on(
        [run.click, memory.change, colour.change, layout.change],
        h.slot_map,
        [checkpoint, memory, colour, layout],
        [plot, export_state],
        api_name="slot_map",
    )


def _gallery_tab(h: Handlers, generators: list[str], examples: list[str]) -> None:
    export_state = _tab_intro(
        "What each slot stores: its value decoded alone (a one-hot address, silent audio feature) "
        "on one identity, shown as the **mouth region, enlarged**. Slots are grouped under the viseme "
        "class of the phone that picks them most on the probe set; tile labels give the slot and its "
        "top phones (hover for shares). Slots never picked are listed under the montage."
    )
    with gr.Row():
        checkpoint = _checkpoint_dropdown(generators)
        identity = gr.Dropdown(examples, value=examples[0], label="Identity")
        order = gr.Radio(list(GALLERY_ORDERS), value="viseme", label="Order")
        show_unused = gr.Checkbox(value=False, label="Show unused slots too")
        run = gr.Button("Decode all slots", variant="primary")
    gallery = gr.Plot(label="Slot gallery", elem_id="slot-gallery")
    _export_row(h, export_state, "gallery")
    run.click(
        h.gallery, [checkpoint, identity, order, show_unused], [gallery, export_state], api_name="gallery"
    )


def _playground_tab(h: Handlers, generators: list[str], examples: list[str]) -> None:
    export_state = _tab_intro(
        "Steer the lips through the memory. Write slots (`12 40 7`) or ARPAbet phones (`M AA P`: "
        "each becomes its most likely slot), optionally with a length in frames (`AA*8`). Consecutive "
        "steps cross-fade over 2 frames; the audio feature is that of silence."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            checkpoint = _checkpoint_dropdown(generators)
            identity = gr.Dropdown(examples, value=examples[0], label="Identity")
            sequence = gr.Textbox(value="sil M AA P sil F UW sil", label="Sequence of slots or phones")
            frames = gr.Slider(1, 25, value=DEFAULT_FRAMES_PER_STEP, step=1, label="Frames per step (25 fps)")
            run = gr.Button("Render", variant="primary")
        with gr.Column(scale=3):
            video = gr.Video(label="Steered lips", autoplay=True, height=300, elem_id="playground-video")
            strip = gr.Image(label="One frame per step", interactive=False)
            steps = gr.Dataframe(label="Steps", interactive=False)
    _export_row(h, export_state, "playground")
    run.click(
        h.playground,
        [checkpoint, identity, sequence, frames],
        [video, strip, steps, export_state],
        api_name="playground",
    )


def build_demo(ctx: AppContext | None = None) -> gr.Blocks:
    """The whole UI around `ctx` (checkpoints, analysis assets, request folders; the default
    reads LIPMEM_CHECKPOINTS or ./checkpoints). Loads no model: the first request that needs
    one loads it into `ctx` once."""
    ctx = ctx if ctx is not None else AppContext()
    h = Handlers(ctx)
    generators = ctx.list_checkpoints()
    examples = list(EXAMPLE_IDENTITIES)

    # Uploads and outputs expire (context.CACHE_MAX_AGE_S): the cache never grows without bound.
    with gr.Blocks(
        title="LipMem: Audio-Lip Memory explorer", delete_cache=(CACHE_SWEEP_S, CACHE_MAX_AGE_S)
    ) as demo:
        clip_state = gr.State(None)
        with gr.Column(elem_classes="lm-header"):
            gr.Markdown(INTRO)
            gr.Markdown(_status_markdown(h), elem_classes="lm-status")
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                example, preview = _generate_tab(h, generators, examples, clip_state)
            with gr.Tab("Compare", id="compare"):
                _compare_tab(h, examples, h.voices())
            with gr.Tab("Phonemes ↔ slots", id="phonemes"):
                _memory_tab(h, generators, examples, clip_state)
            with gr.Tab("Slot map", id="slot_map"):
                _slot_map_tab(h, generators)
            with gr.Tab("Slot gallery", id="gallery"):
                _gallery_tab(h, generators, examples)
            with gr.Tab("Memory playground", id="playground"):
                _playground_tab(h, generators, examples)
            with gr.Tab("Model card", id="card"):
                card_checkpoint = _checkpoint_dropdown(generators)
                card = gr.Markdown(h.model_card(generators[0] if generators else None), elem_id="model-card")
                card_checkpoint.change(h.model_card, card_checkpoint, card, api_name="model_card")
        # Unqueued: the preview must not wait behind long generations of other users.
        demo.load(h.example_face, example, preview, api_name="initial_example_face", queue=False)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=32)
    return demo


def set_threads(threads: int = max(1, (os.cpu_count() or 1) // CONCURRENCY)) -> None:
    """Intra-op threads per request, set when the app is launched (never on import). The
    queue runs CONCURRENCY requests at once; giving each cores / CONCURRENCY threads keeps the
    CPU busy without oversubscription (docs/ARCHITECTURE.md "Measured figures")."""
    import torch

    torch.set_num_threads(threads)


# The default theme's fonts are served by Gradio itself: the page makes no outside request.
LAUNCH_KWARGS = {
    "css": CSS,
    "max_file_size": f"{MAX_UPLOAD_MB}mb",
    "theme": gr.themes.Default(primary_hue="indigo", secondary_hue="pink"),
}


def __getattr__(name: str) -> gr.Blocks:
    """`app.demo`, built on first access (Gradio's `gradio app.py` reads it), not on import."""
    if name != "demo":
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    global demo
    demo = build_demo()
    return demo


if __name__ == "__main__":
    set_threads()
    context = AppContext()
    demo = build_demo(context)
    # The first user should not pay for loading the model, the probe set and UMAP's JIT.
    threading.Thread(target=Handlers(context).warm_up, name="lipmem-warm-up", daemon=True).start()
    # launch() reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT itself when they are set.
    demo.launch(**LAUNCH_KWARGS)
