"""What the app holds between requests: where checkpoints live, and models loaded once.

Nothing is loaded at import or when the UI is built: the first request that needs a model
loads it, under a lock, and every later request reuses it (models are never rebuilt per
request). Per-request outputs go to fresh temporary directories so concurrent users never
share a path.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lipmem_core.errors import CheckpointError, LipMemError
from lipmem_core.provenance import PROJECT_ROOT

DEFAULT_CHECKPOINT = "lipmem-synthtalk"
ABLATION_SUFFIX = "-nomem"  # checkpoints/<name>-nomem: the no-memory ablation of <name>
# Example SynthTalk identities: fixed seeds of Identity.sample, so the gallery is stable.
EXAMPLE_IDENTITIES: dict[str, int] = {
    "Speaker A": 11,
    "Speaker B": 23,
    "Speaker C": 37,
    "Speaker D": 41,
    "Speaker E": 58,
    "Speaker F": 64,
}
# Uploads and outputs live this long after they were written: Gradio's delete_cache removes
# them (every CACHE_SWEEP_S) and request_dir() removes what is left of old request folders.
# LIPMEM_CACHE_MAX_AGE_S overrides the age (benchmarks/soak.py shortens it to show expiry).
CACHE_MAX_AGE_S = int(os.environ.get("LIPMEM_CACHE_MAX_AGE_S", "900"))
CACHE_SWEEP_S = max(1, CACHE_MAX_AGE_S // 3)
REQUEST_PREFIX = "req-"


def default_checkpoints_root() -> Path:
    """LIPMEM_CHECKPOINTS if set, else the repository's checkpoints/ directory."""
    env = os.environ.get("LIPMEM_CHECKPOINTS")
    return Path(env) if env else PROJECT_ROOT / "checkpoints"


def private_work_root() -> Path:
    """A new folder for this process's request files, private to its user (mkdtemp: mode 0700),
    inside Gradio's cache so outputs are served without a copy and expire with Gradio's
    delete_cache; removed when the process exits."""
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="lipmem-", dir=cache))
    atexit.register(shutil.rmtree, root, True)
    return root


@dataclass
class AppContext:
    """Checkpoint root, analysis assets and the caches shared by all requests."""

    checkpoints_root: Path = field(default_factory=default_checkpoints_root)
    analysis_dir: Path = PROJECT_ROOT / "assets" / "analysis"
    work_root: Path = field(default_factory=private_work_root)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _key_locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, repr=False)

    # ---- checkpoints ---------------------------------------------------------------------
    def list_checkpoints(self, kind: str = "generator") -> list[str]:
        """Names of checkpoint directories of this kind, the default first."""
        root = Path(self.checkpoints_root)
        if not root.is_dir():
            return []
        from lipmem_core.checkpoint import read_config

        names = []
        for d in sorted(root.iterdir()):
            if not (d / "config.json").is_file():
                continue
            try:
                read_config(d, kind=kind)  # verified: an edited config.json is not listed
                names.append(d.name)
            except CheckpointError:
                continue  # another kind, or broken: reported when someone selects it, not listed
        return sorted(names, key=lambda n: (n != DEFAULT_CHECKPOINT, n))

    def checkpoint_dir(self, name: str | None) -> Path:
        """The directory of checkpoint `name` (the default when None); raises if absent."""
        names = self.list_checkpoints()
        if not names:
            raise CheckpointError(
                f"no generator checkpoint found in {self.checkpoints_root}: train one "
                "(python -m lipmem_core.train, see docs/TRAINING.md) or set LIPMEM_CHECKPOINTS "
                "to a directory holding checkpoints; the ground-truth renderer needs none"
            )
        name = name or names[0]
        if name not in names:
            raise CheckpointError(
                f"checkpoint {name!r} is not in {self.checkpoints_root}; choose one of {names}"
            )
        return Path(self.checkpoints_root) / name

    def cached(self, key: tuple[str, str], build) -> Any:
        """`build()` once per key for the life of the process (models, renders, probe sets)."""
        # One lock per key: two first requests for the same model load it once, while a
        # slow build (a probe set) never blocks an unrelated one. Builds may nest (a probe
        # set loads its checkpoint), hence per-key locks rather than one global lock.
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def checkpoint(self, name: str | None):
        """The LoadedCheckpoint for `name`, loaded once per process."""
        from lipmem_core.checkpoint import load_checkpoint

        directory = self.checkpoint_dir(name)
        return self.cached(("checkpoint", str(directory)), lambda: load_checkpoint(directory))

    def pipeline(self, name: str | None):
        """The TalkingFacePipeline for `name`, built once per process around the cached model.

        The app always draws with the memory as trained; the no-memory ablation is a
        checkpoint of its own (`<name>-nomem`), chosen by name like any other.
        """
        from lipmem_core.infer.pipeline import TalkingFacePipeline

        directory = self.checkpoint_dir(name)
        loaded = self.checkpoint(name)
        return self.cached(("pipeline", str(directory)), lambda: TalkingFacePipeline(loaded))

    # ---- example identities ----------------------------------------------------------------
    def identity(self, name: str):
        """The example SynthTalk Identity called `name`."""
        from lipmem_core.data.synth.face_render import Identity

        if name not in EXAMPLE_IDENTITIES:
            raise LipMemError(f"choose an example identity: one of {', '.join(EXAMPLE_IDENTITIES)}")
        seed = EXAMPLE_IDENTITIES[name]
        return self.cached(("identity", name), lambda: Identity.sample(np.random.default_rng(seed)))

    def example_face(self, name: str, size: int = 128) -> np.ndarray:
        """A neutral (mouth at rest, eyes open, no head motion) render: (size, size, 3) uint8 RGB."""
        from lipmem_core.data.synth.face_render import neutral_face

        identity = self.identity(name)
        return self.cached(("face", f"{name}@{size}"), lambda: neutral_face(identity, size))

    # ---- per-request directories -----------------------------------------------------------
    def request_dir(self) -> Path:
        """A fresh directory for one request's files; expired ones are swept on the way.

        Request folders older than CACHE_MAX_AGE_S go (Gradio has deleted their served files
        by then), and so do cached addressing tables that old (memory_views' cache folder).
        """
        root = Path(self.work_root)
        root.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in [*root.glob(f"{REQUEST_PREFIX}*"), *root.glob("*/*.parquet")]:
            try:
                if now - old.stat().st_mtime > CACHE_MAX_AGE_S:
                    if old.is_dir():
                        shutil.rmtree(old, ignore_errors=True)
                    else:
                        old.unlink(missing_ok=True)
            except OSError:
                continue  # another request removed it first
        return Path(tempfile.mkdtemp(prefix=REQUEST_PREFIX, dir=root))

    @contextlib.contextmanager
    def request_files(self) -> Iterator[Path]:
        """`request_dir()` for one request, removed again if the request fails (a refused
        input leaves nothing behind); on success Gradio serves and later expires the files."""
        directory = self.request_dir()
        try:
            yield directory
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
