"""The Model card tab: what a checkpoint is, what it was trained on, and how it scored.

Reads config.json only (no weights), so the card shows instantly and even for a checkpoint
whose weights fail to load. Evaluation tables come from `results*.json` files (written by
`python -m lipmem_core.evaluate`) placed in the checkpoint directory.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from lipmem_app.context import AppContext
from lipmem_core.config import ModelConfig, TrainConfig, flatten, paper_deviations

DOMAIN_CARD = (
    "**Domain.** LipMem checkpoints shipped here are trained on **SynthTalk**: rendered faces "
    "speaking espeak-ng speech. Real photos, real videos and real voices are outside that "
    "domain: the app accepts them, but expect weak or odd lip motion there. Train on a real "
    "corpus (docs/TRAINING.md, docs/REAL_VIDEO.md) for real faces."
)
_MAX_VALUE_CHARS = 160


def _rounded(value: Any) -> Any:
    """Numbers to the precision they mean: 4 significant digits (0.15658654 -> 0.1566)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = _rounded(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = " ".join(value)  # a command line reads as one
    else:
        text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _key_value_table(rows: list[tuple[str, Any]]) -> str:
    lines = ["| field | value |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines)


def evaluation_markdown(directory: Path) -> str:
    """The evaluation tables of results*.json files in the checkpoint directory, if any."""
    from lipmem_core.errors import LipMemError
    from lipmem_core.evaluation.results import load_results, render_markdown

    files = sorted(directory.glob("results*.json"))
    if not files:
        return (
            "_No evaluation stored with this checkpoint._ Run `python -m lipmem_core.evaluate "
            f"--checkpoint {directory} --data DIR --split test --out {directory}/results.json`."
        )
    try:
        text = render_markdown([load_results(f) for f in files])
    except LipMemError as exc:
        return f"_Evaluation files could not be read: {exc}_"
    # The page has its own title: drop RESULTS.md's top heading, demote the others.
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return body.replace("\n## ", "\n#### ")


def model_card(ctx: AppContext, name: str | None) -> str:
    """Markdown for checkpoint `name` (the default when None)."""
    directory = ctx.checkpoint_dir(name)
    from lipmem_core.checkpoint import read_config

    config = read_config(directory)
    metadata = config.get("metadata") or {}
    model_config = config.get("model_config") or {}
    memory = model_config.get("use_memory", True)
    weights = directory / "model.safetensors"
    size_mb = weights.stat().st_size / 2**20 if weights.is_file() else float("nan")
    summary = (
        f"### `{directory.name}`\n"
        f"Kind **{config.get('kind', '?')}**, "
        f"{'with' if memory else '**without**'} Audio-Lip Memory"
        + (f" ({model_config.get('n_slots')} slots, kappa {model_config.get('kappa')})" if memory else "")
        + f", {model_config.get('img_size', '?')} px faces, weights {size_mb:.1f} MB."
    )
    train_config = metadata.get("train_config") or {}
    steps = metadata.get("steps")
    deviations = paper_deviations(model_config, train_config, steps if isinstance(steps, int) else None)
    if deviations:
        summary += "\n\n**Deviations from the paper** (see docs/TRAINING.md): " + "; ".join(deviations) + "."
    stages = metadata.get("stages")
    if isinstance(stages, list) and stages:
        summary += (
            "\n\n**Trained in stages** (the deviations above are those of the last stage): "
            + "; ".join(_stage_text(s) for s in stages)
            + "."
        )
    parts = [
        summary,
        DOMAIN_CARD,
        "#### Evaluation",
        evaluation_markdown(directory),
        _folded(
            "Training metadata",
            _key_value_table(list(flatten(metadata).items())) if metadata else "_None stored._",
        ),
        _folded("Model configuration", _key_value_table(list(flatten(model_config).items()))),
    ]
    return "\n\n".join(parts)


@functools.cache
def _config_defaults() -> dict[str, Any]:
    """Every config field's default, keyed as the stages key them ("model.kappa",
    "train.loss.l1_mouth") and JSON-normalised as they hold them (tuples become lists)."""
    return json.loads(
        json.dumps(flatten({"model": ModelConfig().to_dict(), "train": TrainConfig().to_dict()}))
    )


def _stage_text(stage: dict) -> str:
    """One stage of the training metadata's "stages" (train.loop.record_stage) in words."""
    start = f"from step {int(stage.get('from_step', 0)):,}"
    if stage.get("earlier_steps"):
        return f"{start} (the configuration of the steps before was not recorded)"
    changes = stage.get("changes")
    if not changes:
        return start
    # A field the code gained after the earlier state was saved reads None there; at its default
    # it changes nothing the run did, so it is counted, not listed.
    defaults = _config_defaults()
    added = [k for k, (before, after) in changes.items() if before is None and after == defaults.get(k)]
    text = start + "".join(
        f", {k} {'unset' if before is None else before} -> {after}"
        for k, (before, after) in changes.items()
        if k not in added
    )
    if added:
        text += (
            f" ({len(added)} option{'s' if len(added) > 1 else ''} added to the code since, at the default)"
        )
    return text


def _folded(summary: str, body: str) -> str:
    """A section folded away under its title (HTML <details>; the blank lines let the
    Markdown table inside render)."""
    return f"<details><summary><b>{summary}</b> (click to open)</summary>\n\n{body}\n\n</details>"
