"""Rewrite JSON files written before the portable-path rule, in place:

    python -m lipmem_core.provenance checkpoints/*/config.json results/*.json

Changes metadata only (a checkpoint's sha256 covers its weights file, which is untouched; its
config.json is re-hashed and every rewritten checkpoint is loaded again to prove it).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lipmem_core.checkpoint import CONFIG_SHA_KEY, config_digest, load_checkpoint
from lipmem_core.provenance import portable


def rewrite_json(path: str | os.PathLike) -> bool:
    """Make the paths in a JSON file portable, in place (atomically); True if it changed.
    A checkpoint's config.json is loaded again afterwards, so a broken rewrite is caught."""
    path = Path(path)
    data = json.loads(path.read_text())
    fixed = portable(data)
    if fixed == data:
        return False
    if path.name == "config.json" and "config_sha256" in fixed:
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
        prog="python -m lipmem_core.provenance", description=__doc__.splitlines()[0].rstrip(":")
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSON files (config.json, results*.json)")
    args = parser.parse_args(argv)
    for f in args.files:
        print(f"{f}: {'rewritten' if rewrite_json(f) else 'already portable'}")
    return 0
