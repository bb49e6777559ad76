"""Soak test: server RSS and temporary-file counts over many mixed requests.

    python benchmarks/soak.py [--requests 120] [--max-age 60] [--checkpoints DIR]

Starts `python app.py` on 127.0.0.1 (a free port, a fresh GRADIO_TEMP_DIR) and sends
`--requests` requests in a fixed cycle through gradio_client: generating clips of a different
length each time (new clip lengths are what grew the server's memory), a refused upload, the
playground, the gallery and the heatmap of the clip just made. Every 10 requests it prints the
server's RSS (from /proc) and the number of files under Gradio's cache (uploads, outputs and
the app's request folders). LIPMEM_CACHE_MAX_AGE_S is set to `--max-age` so that expiry is
visible within a run: the file count must level off once files reach that age. The loop is
bounded (`--requests`); nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from app_server import REPO, served_app

sys.path.insert(0, str(REPO))  # for tests.app.app_support

WORDS = [
    "bob",
    "made",
    "a",
    "big",
    "map",
    "and",
    "five",
    "fine",
    "violins",
    "play",
    "all",
    "night",
    "while",
    "we",
    "see",
    "the",
    "moon",
]


def _rss_mb(pid: int) -> float:
    """Resident set size of a process (the server), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def _text(i: int) -> str:
    """A sentence of 3..18 words: successive requests have different clip lengths."""
    n = 3 + (i * 7) % 16
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n)).capitalize() + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120, help="requests to send (at least 100)")
    parser.add_argument("--max-age", type=int, default=60, help="LIPMEM_CACHE_MAX_AGE_S for the server")
    parser.add_argument("--checkpoints", default=str(REPO / "checkpoints"))
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="lipmem-soak-"))
    not_image = cache.parent / f"{cache.name}-notes.png"
    not_image.write_text("not an image\n" * 20)
    env = dict(
        LIPMEM_CHECKPOINTS=args.checkpoints,
        LIPMEM_CACHE_MAX_AGE_S=str(args.max_age),
        GRADIO_TEMP_DIR=str(cache),
    )
    # Generous HTTP timeouts: on a loaded 2-core machine the server may answer slowly.
    served = served_app(env, download_files=False, httpx_kwargs={"timeout": 300})
    try:
        with served as app:
            _soak(args, app, cache, not_image)
    finally:
        not_image.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)


def _soak(args: argparse.Namespace, app, cache: Path, not_image: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from tests.app.app_support import generate_args

    client, server = app.client, app.server

    def generate(text: str, **overrides):
        return client.predict(*generate_args(text=text, **overrides).values(), api_name="/generate")

    kinds = ("generate", "generate", "refused upload", "playground", "generate", "heatmap", "gallery")
    counts = dict.fromkeys(kinds, 0)
    refused, failed = 0, []
    print(f"server pid {server.pid}, GRADIO_TEMP_DIR {cache}, file max age {args.max_age} s")
    print(f"{'requests':>8} {'seconds':>8} {'RSS MB':>8} {'files':>6}")
    print(f"{0:8d} {0.0:8.1f} {_rss_mb(server.pid):8.0f} {_files(cache):6d}")
    tic = time.perf_counter()
    for i in range(args.requests):
        kind = kinds[i % len(kinds)]
        counts[kind] += 1
        try:
            if kind == "generate":
                generate(_text(i))
            elif kind == "refused upload":
                generate("", face_source="image", image=handle_file(str(not_image)))
            elif kind == "playground":
                client.predict(
                    "lipmem-synthtalk", "Speaker B", f"sil M AA {i % 90} sil", 3, api_name="/playground"
                )
            elif kind == "heatmap":
                client.predict(
                    "clip", "lipmem-synthtalk", None, "pocketsphinx", "", None,
                    "p_label_given_slot", "phone", api_name="/analyse",
                )  # fmt: skip
            else:
                client.predict("lipmem-synthtalk", "Speaker C", "slot", api_name="/gallery")
        except AppError as exc:
            if kind != "refused upload":
                failed.append(f"request {i + 1} ({kind}): {exc}")
            refused += kind == "refused upload"
        if (i + 1) % 10 == 0:
            elapsed = time.perf_counter() - tic
            print(f"{i + 1:8d} {elapsed:8.1f} {_rss_mb(server.pid):8.0f} {_files(cache):6d}", flush=True)
    print("requests by kind: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"refused uploads answered with a message: {refused}; unexpected failures: {len(failed)}")
    for line in failed[:10]:
        print("  " + line)


if __name__ == "__main__":
    main()
