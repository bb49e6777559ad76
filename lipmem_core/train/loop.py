"""The loop shared by both training CLIs: resumable state, CSV log, budget, validation, export.

A run directory holds:
  state.safetensors + state.json   weights and optimiser state of the latest step (no pickle);
                                    re-running the same command resumes from them, and a
                                    resume with another configuration starts a new stage
                                    (`record_stage`), which the exported metadata lists
  checkpoint/                      the latest exported model (checkpoint.save_checkpoint)
  log.csv                          step, time, each loss term, val metrics
A task (train.GeneratorTask, train_syncnet.SyncNetTask) supplies the models, one optimisation
step and validation; everything else lives here once.

Determinism: the data order is a function of (seed, epoch) and each sample's randomness of
(seed, epoch, index) (data/datasets.py); torch's RNG (dropout) is reseeded from
(seed, step, rank) before every step. A resumed run therefore repeats exactly what an
uninterrupted run would have done, without saving any RNG state.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from lipmem_core.config import flatten
from lipmem_core.errors import CheckpointError, CorpusError
from lipmem_core.provenance import corpus_provenance, git_commit
from lipmem_core.train.distributed import (
    DistEnv,
    ResumableSampler,
    any_rank,
    barrier,
    mean_over_ranks,
    single_blas_thread,
)

STATE_WEIGHTS, STATE_JSON, LOG_CSV, CHECKPOINT_DIR = (
    "state.safetensors",
    "state.json",
    "log.csv",
    "checkpoint",
)


class TrainTask(Protocol):
    """What a CLI plugs into `run_training`."""

    kind: str  # "generator" | "syncnet"

    def state_modules(self) -> dict[str, nn.Module]:
        """Plain (unwrapped) modules whose weights make up the resumable state."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One optimisation step on this rank's batch; returns loss terms as floats."""
        ...

    def validate(self) -> dict[str, float]:
        """Metrics on the val split (called on rank 0 only), keys prefixed "val_"."""
        ...

    def export(self, out_dir: Path, metadata: dict[str, Any]) -> None:
        """Write the model with checkpoint.save_checkpoint."""
        ...


@dataclass
class LoopConfig:
    """When to stop, log, validate and save. `minutes` bounds this invocation's wall time."""

    max_steps: int
    batch_size: int  # per process
    minutes: float | None = None
    val_every: int = 1000
    ckpt_every: int = 500
    log_every: int = 10
    workers: int = 0
    seed: int = 0


def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of one step on one rank (dropout masks)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


# ---------------------------------------------------------------- resumable state


def save_state(
    run_dir: Path, task: TrainTask, step: int, elapsed: float, stages: dict[str, Any] | None = None
) -> None:
    """Weights + optimiser state (safetensors) and their JSON description, replaced atomically.

    `stages` ({"stages": [...], "stage_config": {...}}, see `record_stage`) goes into state.json.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, module in task.state_modules().items():
        for k, v in module.state_dict().items():
            tensors[f"module/{name}/{k}"] = v.detach().cpu().contiguous().clone()
    optim_json: dict[str, Any] = {}
    for name, opt in task.optimizers().items():
        sd = opt.state_dict()
        scalars: dict[str, Any] = {}
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"optim/{name}/{pid}/{k}"] = v.detach().cpu().contiguous().clone()
                else:
                    scalars[f"{pid}/{k}"] = v
        optim_json[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    meta = {
        "kind": task.kind,
        "step": step,
        "elapsed_seconds": elapsed,
        "optimizers": optim_json,
        **(stages or {}),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(run_dir / (STATE_WEIGHTS + ".tmp")), metadata={"step": str(step)})
    (run_dir / (STATE_JSON + ".tmp")).write_text(json.dumps(meta, indent=1))
    os.replace(run_dir / (STATE_WEIGHTS + ".tmp"), run_dir / STATE_WEIGHTS)
    os.replace(run_dir / (STATE_JSON + ".tmp"), run_dir / STATE_JSON)


def load_state(
    run_dir: Path, task: TrainTask, device: torch.device
) -> tuple[int, float, dict[str, Any]] | None:
    """Restore a saved state into the task; returns (step, elapsed seconds, state.json) or None
    if fresh."""
    wpath, jpath = run_dir / STATE_WEIGHTS, run_dir / STATE_JSON
    if not wpath.exists() and not jpath.exists():
        return None
    fix = f"delete {wpath} and {jpath} to start the run over, or choose another --out"
    try:
        meta = json.loads(jpath.read_text())
        tensors = load_file(str(wpath), device=str(device))
    except Exception as exc:  # missing half, truncated file, bad JSON
        raise CheckpointError(f"cannot read the training state in {run_dir} ({exc}); {fix}") from exc
    if meta.get("kind") != task.kind:
        raise CheckpointError(f"{run_dir} holds a {meta.get('kind')!r} run, not {task.kind!r}; {fix}")
    for name, module in task.state_modules().items():
        prefix = f"module/{name}/"
        sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"the state in {run_dir} does not fit this model ({exc}); {fix}") from exc
    for name, opt in task.optimizers().items():
        info = meta["optimizers"][name]
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim/{name}/"
        for k, v in tensors.items():
            if k.startswith(prefix):
                pid, key = k[len(prefix) :].split("/", 1)
                state.setdefault(int(pid), {})[key] = v
        for k, v in info["scalars"].items():
            pid, key = k.split("/", 1)
            state.setdefault(int(pid), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    return int(meta["step"]), float(meta["elapsed_seconds"]), meta


# ---------------------------------------------------------------- training stages

# Fields that set how long and how verbosely a run goes, not what a step does: changing them
# on a resume (a longer --steps, more workers) continues the same stage.
_RUN_LENGTH_FIELDS = frozenset(
    {"max_steps", "sync_max_steps", "workers", "val_every", "log_every", "ckpt_every"}
)


def stage_config(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What a step of this run does: its model and training configuration, flattened to
    "model.kappa", "train.loss.l1_mouth", ..., without the run-length fields."""
    flat: dict[str, Any] = {}
    for section, name in (("model_config", "model"), ("train_config", "train")):
        kept = {k: v for k, v in (metadata.get(section) or {}).items() if k not in _RUN_LENGTH_FIELDS}
        flat.update(flatten(kept, f"{name}."))
    return json.loads(json.dumps(flat))  # as state.json will hold it (tuples become lists)


def record_stage(saved: Mapping[str, Any], config: dict[str, Any], step: int) -> dict[str, Any]:
    """The run's stages after (re)starting at `step` with `config` (`stage_config`).

    `saved` is the previous state.json ({} for a fresh run). A resume whose configuration
    differs from the one that saved the state (a loss added for the last steps, say) appends
    {"from_step": step, "changes": {field: [before, after]}}; the first stage is
    {"from_step": 0}. A state saved before stages were recorded starts the list at its step
    with {"from_step": step, "earlier_steps": "not recorded"}.
    """
    stages = [dict(s) for s in saved.get("stages") or []]
    before = saved.get("stage_config")
    if not stages:
        stages = [{"from_step": 0}] if step == 0 else [{"from_step": step, "earlier_steps": "not recorded"}]
    elif before is not None and before != config:
        keys = sorted(set(before) | set(config))
        changes = {k: [before.get(k), config.get(k)] for k in keys if before.get(k) != config.get(k)}
        stages.append({"from_step": step, "changes": changes})
    return {"stages": stages, "stage_config": config}


# ---------------------------------------------------------------- CSV log


class CsvLog:
    """log.csv with one row per logged step; new columns widen the file (rewritten in place).

    Opening with `keep_until=s` drops rows after step s: a resumed run re-does those steps.
    A row for the step of the previous row (the final validation) is merged into it.
    """

    def __init__(self, path: Path, keep_until: int) -> None:
        self.path = path
        self.fields: list[str] = ["step", "time"]
        self.rows: list[dict[str, Any]] = []
        if path.exists():
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or self.fields)
                self.rows = [r for r in reader if int(r["step"]) <= keep_until]
            self._rewrite()

    def write(self, row: dict[str, Any]) -> None:
        """Append a row; a second row for the same step (final validation) merges into it."""
        new = [k for k in row if k not in self.fields]
        if self.rows and str(self.rows[-1]["step"]) == str(row["step"]):
            self.rows[-1].update(row)
            self.fields += new
            self._rewrite()
            return
        self.rows.append(row)
        if new:
            self.fields += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow(row)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)


# ---------------------------------------------------------------- metadata


def corpus_summary(root: Path) -> dict[str, Any]:
    """Name, portable path and seed of a corpus; clips, speakers, frames and hours per split."""
    from lipmem_core.data.corpus import read_manifest

    m = read_manifest(root)
    out: dict[str, Any] = corpus_provenance(root)
    for split, g in m.groupby("split"):
        out[str(split)] = {
            "clips": len(g),
            "speakers": int(g["speaker"].nunique()),
            "frames": int(g["frames"].sum()),
            "hours": round(float(g["seconds"].sum()) / 3600, 4),
        }
    return out


def command_line(module: str, argv: Sequence[str] | None) -> list[str]:
    """The command that reproduces this run: `python -m module args...`."""
    return ["python", "-m", module, *(sys.argv[1:] if argv is None else argv)]


def run_metadata(
    data: Path, step: int, elapsed: float, metrics: dict[str, float], **extra: Any
) -> dict[str, Any]:
    """What a checkpoint says about its training: data, steps, wall time, metrics, commit + `extra`."""
    return {
        "training_data": corpus_summary(data),
        "steps": step,
        "wall_time_seconds": round(elapsed, 1),
        "final_metrics": metrics,
        "git_commit": git_commit(),
        **extra,
    }


# ---------------------------------------------------------------- the loop


def run_training(
    task: TrainTask,
    dataset: Dataset,
    loop: LoopConfig,
    run_dir: Path,
    env: DistEnv,
    data: Path,
    metadata: dict[str, Any],
) -> dict[str, float]:
    """Train until `loop.max_steps` or the time budget, resuming from `run_dir` if it has a state.

    Returns the final validation metrics (on rank 0; other ranks get an empty dict). The
    exported checkpoint's metadata is `metadata` + the training corpus `data`, steps, wall
    time and final metrics.
    """
    resumed = load_state(run_dir, task, env.device)
    step, elapsed_before, saved = resumed or (0, 0.0, {})
    stages = record_stage(saved, stage_config(metadata), step)
    # one stage from step 0 is every plain run: the metadata lists stages only when there are more
    staged = len(stages["stages"]) > 1 or stages["stages"][0]["from_step"] > 0
    sampler = ResumableSampler(dataset, env, seed=loop.seed)
    steps_per_epoch = sampler.num_samples // loop.batch_size
    if steps_per_epoch == 0:
        raise CorpusError(
            f"{len(dataset)} training windows cannot fill a batch of {loop.batch_size} on each of "
            f"{env.world_size} process(es): lower --batch-size or use a larger corpus"
        )
    log = CsvLog(run_dir / LOG_CSV, keep_until=step) if env.is_main else None
    t0 = time.monotonic()
    bar = tqdm(
        total=loop.max_steps, initial=step, disable=not env.is_main, desc=task.kind, dynamic_ncols=True
    )
    pending: list[dict[str, float]] = []
    metrics: dict[str, float] = {}

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - t0

    def checkpoint(final: bool) -> None:
        nonlocal metrics
        if env.is_main:
            save_state(run_dir, task, step, elapsed(), stages)
            if final:
                metrics = task.validate()
            extra = {**metadata, "stages": stages["stages"]} if staged else metadata
            meta = run_metadata(data, step, elapsed(), metrics, **extra)
            task.export(run_dir / CHECKPOINT_DIR, meta)
        barrier(env)

    stop = step >= loop.max_steps
    while not stop:
        epoch, within = divmod(step, steps_per_epoch)
        sampler.set_position(epoch, within * loop.batch_size)
        loader = DataLoader(
            dataset,
            batch_size=loop.batch_size,
            sampler=sampler,
            num_workers=loop.workers,
            drop_last=True,
            pin_memory=env.device.type == "cuda",
            generator=torch.Generator().manual_seed(loop.seed),  # keeps the global RNG untouched
            worker_init_fn=single_blas_thread,
        )
        for batch in loader:
            torch.manual_seed(step_seed(loop.seed, step, env.rank))
            logs = task.train_step(batch, step)
            step += 1
            bar.update(1)
            pending.append(logs)
            out_of_time = loop.minutes is not None and time.monotonic() - t0 > loop.minutes * 60
            stop = any_rank(out_of_time, env) or step >= loop.max_steps  # a collective: every step
            validate = step % loop.val_every == 0 and not stop  # the last step gets the final one
            if step % loop.log_every == 0 or validate or stop:
                # keys of the last step: the same on every rank (a GAN term may start mid-interval)
                means = {k: float(np.mean([p[k] for p in pending if k in p])) for k in pending[-1]}
                row = mean_over_ranks(means, env)
                pending = []
                if validate and env.is_main:
                    row.update(task.validate())
                if log is not None:
                    log.write({"step": step, "time": round(elapsed(), 2), **row})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(row.items())[:4]})
            if stop:
                break
            if step % loop.ckpt_every == 0:
                checkpoint(final=False)
    bar.close()
    checkpoint(final=True)
    if env.is_main and metrics and log is not None:
        log.write({"step": step, "time": round(elapsed(), 2), **metrics})
    return metrics
