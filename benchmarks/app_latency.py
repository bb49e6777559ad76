"""App latency through gradio_client against `python app.py` in a subprocess.

    python benchmarks/app_latency.py [--checkpoints DIR] [--runs 3]

Prints: cold start to first response (process start -> first answered request), generating a
~5 s clip from text, the Phonemes<->slots heatmap, slot map, gallery and Compare tab on the
example (medians of --runs after one warm-up call), and 4 concurrent generate requests (each
output must have the frame count of its own text: no cross-talk). Peak RSS of the server process
(resource.getrusage of the finished child). With no --checkpoints and no checkpoints/ shipped,
a tiny random-init checkpoint is made in a temp dir (the figures then say so), since every
memory tab needs a generator with memory (checkpoints/lipmem-synthtalk).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app_server import REPO, served_app

TEXT_5S = "The quick brown fox jumps over the lazy dog, and seven brave men play fine violins."
CONCURRENT_TEXTS = (
    "Bob made a map.",
    "Five very fine violins play all night.",
    "We see the moon.",
    "Ruth sang.",
)


def _checkpoints(arg: str | None) -> tuple[Path, str]:
    if arg:
        return Path(arg), "given"
    shipped = REPO / "checkpoints"
    if (shipped / "lipmem-synthtalk" / "config.json").is_file():  # the memory model every tab needs
        return shipped, "shipped"
    sys.path.insert(0, str(REPO))
    from tests.app.app_support import make_checkpoint_root

    return make_checkpoint_root(
        Path(tempfile.mkdtemp(prefix="lipmem_bench_"))
    ), "tiny random-init (none shipped)"


def _median(fn, runs: int) -> float:
    fn()  # warm-up: model load, probe set, JIT
    times = []
    for _ in range(runs):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def _frames(video: str | dict) -> int:
    """Frames of a returned video (gradio_client gives a path, or a dict holding one)."""
    import av

    video = video["video"] if isinstance(video, dict) else video
    with av.open(video) as c:
        return sum(1 for _ in c.decode(video=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root, which = _checkpoints(args.checkpoints)
    from gradio_client import Client

    sys.path.insert(0, str(REPO))
    from lipmem_app.compare_view import default_pair
    from lipmem_app.context import AppContext
    from tests.app.app_support import generate_args

    checkpoint = AppContext(checkpoints_root=root).list_checkpoints()[0]
    memory, ablation = default_pair(AppContext(checkpoints_root=root))
    with served_app({"LIPMEM_CHECKPOINTS": str(root)}) as app:
        client = app.client
        client.predict("Speaker A", api_name="/example_face")
        cold = time.perf_counter() - app.started

        def generate(text: str = TEXT_5S, c: Client = client):
            return c.predict(*generate_args(text=text, checkpoint=checkpoint).values(), api_name="/generate")

        seconds = _frames(generate()[0]) / 25
        t_generate = _median(generate, args.runs)
        t_heatmap = _median(
            lambda: client.predict(
                "clip", checkpoint, None, None, "pocketsphinx", "", None, "p_label_given_slot", "phone",
                False, api_name="/analyse",
            ),
            args.runs,
        )  # fmt: skip
        t_redraw = _median(lambda: client.predict("counts", "viseme", False, api_name="/heatmap"), args.runs)
        t_map = _median(
            lambda: client.predict(checkpoint, "value", "viseme", "umap", api_name="/slot_map"), args.runs
        )
        t_compare = None
        if memory and ablation:  # the Compare tab needs both (and draws curves with a mouth oracle)
            t_compare = _median(
                lambda: client.predict(
                    "Speaker A", "text", "Bob made a big map of Maui.", "en-us", None, memory, ablation,
                    api_name="/compare",
                ),
                args.runs,
            )  # fmt: skip
        t_gallery = _median(
            lambda: client.predict(checkpoint, "Speaker A", "viseme", False, api_name="/gallery"),
            args.runs,
        )

        from lipmem_core.audio import num_frames
        from lipmem_core.data.synth.speech import synthesize

        expected = [num_frames(len(synthesize(t).audio)) for t in CONCURRENT_TEXTS]
        clients = [Client(app.url, verbose=False) for _ in CONCURRENT_TEXTS]
        tic = time.perf_counter()
        with ThreadPoolExecutor(len(clients)) as pool:
            outs = list(
                pool.map(lambda ct: generate(ct[1], ct[0]), zip(clients, CONCURRENT_TEXTS, strict=True))
            )
        t_concurrent = time.perf_counter() - tic
        got = [_frames(o[0]) for o in outs]
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"checkpoint: {checkpoint} ({which}, {root})")
    print(f"cold start to first response: {cold:.1f} s (target <= 20 s)")
    print(
        f"generate {seconds:.1f} s clip from text: {t_generate:.2f} s median of {args.runs} (target <= 5 s)"
    )
    print(f"analyse clip (addressing + heatmap + timeline): {t_heatmap:.2f} s")
    print(f"heatmap redraw: {t_redraw:.2f} s (target <= 1 s)")
    print(f"slot map (UMAP, cached after first): {t_map:.2f} s (target <= 1 s)")
    print(f"slot gallery: {t_gallery:.2f} s (target <= 1 s)")
    if t_compare is not None:
        print(f"compare (1.9 s sentence, three renderings + oracle curves): {t_compare:.2f} s")
    ok = got == expected
    print(
        f"4 concurrent generates: {t_concurrent:.1f} s wall; frames {got} vs expected {expected}: "
        f"{'all succeeded, no cross-talk' if ok else 'MISMATCH'}"
    )
    print(f"server peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
