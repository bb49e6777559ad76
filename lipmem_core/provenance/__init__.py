"""Provenance a reader can follow: no absolute paths of the machine that made a file.

Checkpoint metadata, results JSON and the commands in them name data and run directories.
Written as absolute paths (from the root of one user's disk) they tell a reader about one machine's
disk, not about the data. `portable` rewrites every absolute path inside a JSON-like value:

- a path inside the project (this repository) becomes relative to it: `checkpoints/mouth-oracle`;
- a path outside it keeps its last two components behind an ellipsis: `…/data/synthtalk-v2`,
  enough to name the corpus or run, nothing about the machine.

Corpus name, seed and splits are recorded by `corpus_provenance`. Shipped files written before
this rule are rewritten in place by `python -m lipmem_core.provenance` (provenance/rewrite.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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
    """Name, portable path, kind and generator seed of a corpus directory, from its speakers.json.

    kind: "synthtalk" (written by lipmem_core.data.synth, which records its seed), "real"
    (videos preprocessed by lipmem_core.data.preprocess) or None when speakers.json says
    neither. seed: None when the corpus has none.
    """
    root = Path(root)
    meta: dict[str, Any] = {}
    speakers = root / "speakers.json"
    if speakers.is_file():
        try:
            meta = json.loads(speakers.read_text())
        except ValueError:
            meta = {}  # a damaged speakers.json is reported by the corpus reader, not here
    seed = meta.get("seed")
    kind = "real" if meta.get("source") == "preprocess" else "synthtalk" if seed is not None else None
    return {"name": root.resolve().name, "path": project_path(root.resolve()), "kind": kind, "seed": seed}


def git_commit() -> str | None:
    """The commit of the LipMem source tree (with "+dirty" when it has local changes), if any."""
    here = PROJECT_ROOT
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
