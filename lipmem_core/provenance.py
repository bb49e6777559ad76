"""Provenance a reader can follow: no absolute paths of the machine that made a file.

Checkpoint metadata, results JSON and the commands in them name data and run directories.
Written as absolute paths (`/home/someone/data/synthtalk-v2`) they tell a reader about one machine's
disk, not about the data. `portable` rewrites every absolute path inside a JSON-like value:

- a path inside the project (this repository) becomes relative to it: `checkpoints/mouth-oracle`;
- a path outside it keeps its last two components behind an ellipsis: `…/data/synthtalk-v2`,
  enough to name the corpus or run, nothing about the machine.

Corpus name, seed and splits are recorded by `corpus_provenance`. Shipped files written before
this rule are rewritten in place by

    python -m lipmem_core.provenance checkpoints/*/config.json results/*.json

which changes metadata only (a checkpoint's sha256 covers its weights file, which is untouched;
every rewritten checkpoint is loaded again to prove it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ELLIPSIS = "…"
# An absolute POSIX path inside a longer string (a command line): "/" after a start, space, "=" or quote.
_ABSOLUTE = re.compile(r"(?:(?<=^)|(?<=[\s=\"']))/[^\s\"']+")


def project_path(path: str | os.PathLike) -> str:
    """`path` as a reader can follow it: relative to the project, or `…/parent/name` outside it."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = Path(os.path.normpath(p))
    try:
        return p.relative_to(PROJECT_ROOT).as_posix() or "."
    except ValueError:
        tail = p.parts[-2:] if len(p.parts) > 2 else p.parts[-1:]
        return f"{ELLIPSIS}/" + "/".join(tail)


def portable(value: Any) -> Any:
    """A copy of a JSON-like value with every absolute path (also inside commands) made portable."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, str) and "/" in value:
        return _ABSOLUTE.sub(lambda m: project_path(m.group(0)), value)
    return value


def corpus_provenance(root: str | os.PathLike) -> dict[str, Any]:
    """Name, portable path and generator seed of a corpus directory (seed from speakers.json,
    None when the corpus has none, e.g. preprocessed real videos)."""
    root = Path(root)
    seed = None
    speakers = root / "speakers.json"
    if speakers.is_file():
        try:
            seed = json.loads(speakers.read_text()).get("seed")
        except ValueError:
            seed = None  # a damaged speakers.json is reported by the corpus reader, not here
    return {"name": root.resolve().name, "path": project_path(root.resolve()), "seed": seed}


def rewrite_json(path: str | os.PathLike) -> bool:
    """Make the paths in a JSON file portable, in place (atomically); True if it changed.
    A checkpoint's config.json is loaded again afterwards, so a broken rewrite is caught."""
    path = Path(path)
    data = json.loads(path.read_text())
    fixed = portable(data)
    if fixed == data:
        return False
    if path.name == "config.json" and "config_sha256" in fixed:
        from .checkpoint import CONFIG_SHA_KEY, config_digest

        fixed[CONFIG_SHA_KEY] = config_digest(fixed)  # the hash covers the metadata just rewritten
    tmp = path.with_suffix(path.suffix + ".tmp")
    # Written as its writer wrote it: save_checkpoint sorts keys and ends without a newline,
    # save_oracle keeps insertion order, evaluate ends with a newline.
    text = json.dumps(
        fixed, indent=_indent(path), ensure_ascii=False, allow_nan=True, sort_keys=list(data) == sorted(data)
    )
    tmp.write_text(text if path.name == "config.json" else text + "\n")
    tmp.replace(path)
    if path.name == "config.json" and fixed.get("kind") in ("generator", "syncnet", "discriminator"):
        from .checkpoint import load_checkpoint

        load_checkpoint(path.parent)  # sha256 of the weights and a strict load, as every user does
    return True


def _indent(path: Path) -> int:
    """Keep a file's indentation (results use 1 space, checkpoints 2)."""
    for line in path.read_text().splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped:
            return len(line) - len(stripped)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lipmem_core.provenance", description=__doc__.splitlines()[0]
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSON files (config.json, results*.json)")
    args = parser.parse_args(argv)
    for f in args.files:
        print(f"{f}: {'rewritten' if rewrite_json(f) else 'already portable'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
