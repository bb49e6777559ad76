"""docs/RESULTS.md from one or more results.json files written by `lipmem_core.evaluation.evaluate`.

    python -m lipmem_core.results results/memory.json results/nomemory.json --out docs/RESULTS.md

The first file's ground-truth row is the reference; each file then adds its model row and its
untrained (random-init) chance row, and its own ground-truth row when that prints differently
from the one above it (another SyncNet, oracle or set of clips measures the real frames
differently), so every model row sits below the reference it was measured against. Every
table row names the file it came from, and the exact command that produced each file is listed
under the tables, so the page can be rebuilt.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lipmem_core.errors import LipMemError

# (results key, column header, format) for the quality / sync table.
QUALITY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("psnr", "PSNR", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("psnr_mouth", "PSNR mouth", "{:.2f}"),
    ("ssim_mouth", "SSIM mouth", "{:.4f}"),
    ("mouth_mae", "mouth MAE", "{:.4f}"),
    ("lse_d", "LSE-D", "{:.3f}"),
    ("lse_c", "LSE-C", "{:.3f}"),
    ("offset_zero_share", "offset 0", "{:.0%}"),
    ("offset_mean_abs", "abs offset", "{:.2f}"),
    ("jaw_motion_ratio", "jaw motion / GT", "{:.2f}"),
    ("address_agreement", "A_aud = A_lip", "{:.0%}"),
)
# (SlotStats key, header, format) for the memory table.
MEMORY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("pnmi", "PNMI", "{:.3f}"),
    ("phone_purity", "phone purity", "{:.3f}"),
    ("slot_purity", "slot purity", "{:.3f}"),
    ("viseme_purity", "viseme purity", "{:.3f}"),
    ("usage_entropy_bits", "usage H (bits)", "{:.2f}"),
    ("usage_entropy_norm", "usage H / log2 S", "{:.3f}"),
    ("used_slots", "used slots", "{:d}"),
    ("dead_slots", "dead slots", "{:d}"),
)


def from_json_value(v: Any) -> Any:
    """Undo `evaluate.json_safe`: the strings "inf"/"-inf" back to floats."""
    if v == "inf":
        return math.inf
    if v == "-inf":
        return -math.inf
    return v


def load_results(path: str | Path) -> dict[str, Any]:
    """Read one results.json; raises LipMemError if it is not an evaluate output."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LipMemError(f"cannot read results file {p}: {e}") from e
    if not isinstance(data, dict) or "rows" not in data or "command" not in data:
        raise LipMemError(f"{p} is not a results.json from `python -m lipmem_core.evaluate`")
    data["_path"] = str(p)
    return data


def _mouth_table(rows: list[dict[str, Any]], key: str) -> list[str]:
    """Per-parameter MAE (and % of std) of `row[key]` (an oracle.mouth_error dict), plus the mean."""
    params = list(rows[0][key]["mae"])

    def cells(err: dict[str, Any]) -> list[str]:
        per = [
            f"{_cell(err['mae'], p, '{:.3f}')} ({_cell(err['mae_pct_std'], p, '{:.0f}')} %)" for p in params
        ]
        return [*per, f"{_cell(err, 'mae_mean', '{:.3f}')} ({_cell(err, 'mae_pct_std_mean', '{:.0f}')} %)"]

    return _table(["row", *params, "mean"], [[r["_label"], *cells(r[key])] for r in rows])


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    v = from_json_value(row.get(key))
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return fmt.format(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _row_label(result: dict[str, Any], row: dict[str, Any]) -> str:
    """The row's label and file; model rows also name a reference other than the frame itself
    (`evaluate --reference other`), since it changes every image and mouth figure."""
    other = result.get("reference", "self") != "self" and row["name"] == "model"
    return f"{row['label']}{', reference: ' + result['reference'] if other else ''} ({Path(result['_path']).name})"


def render_markdown(results: Sequence[dict[str, Any]], figures: Sequence[str] = ()) -> str:
    """The RESULTS.md text: a quality/sync table, a memory table, the figures and the commands.

    `figures`: image links relative to the page (e.g. the mouth strips of analysis.strips).
    """
    if not results:
        raise LipMemError("no results to render: pass at least one results.json")
    first = results[0]
    quality_rows: list[dict[str, Any]] = []
    memory_rows: list[tuple[str, dict[str, Any]]] = []
    reference: tuple[str, ...] = ()  # the ground-truth row last shown, as printed
    for res in results:
        for row in res["rows"]:
            if row["name"] == "ground_truth":
                printed = tuple(_cell(row, k, f) for k, _, f in QUALITY_COLUMNS)
                if printed == reference:
                    continue  # the same reference as the rows above
                reference = printed
            if row["name"] != "untrained":
                quality_rows.append({"_label": _row_label(res, row), **row})
            if row.get("memory"):
                memory_rows.append((_row_label(res, row) + ", all frames", row["memory"]))
            if row.get("memory_speech"):
                memory_rows.append((_row_label(res, row) + ", speech frames", row["memory_speech"]))

    data = first["data"]
    lines = [
        "# Results",
        "",
        "Generated by `python -m lipmem_core.results` from the results.json files listed at the",
        "end (each written by `python -m lipmem_core.evaluate`). Do not edit by hand.",
        "",
        f"Test data: `{data['root']}` split `{data['split']}`, {data['n_clips']} clips,"
        f" {data['n_frames']} frames, speakers {', '.join(data['speakers'])}.",
        "Metrics are means over clips; see docs/EVALUATION.md for definitions.",
        "",
    ]
    for res in results[1:]:
        if res["data"].get("clips") != data.get("clips"):
            lines += [
                f"**Warning:** `{Path(res['_path']).name}` was evaluated on other clips"
                f" ({res['data']['n_clips']} of `{res['data']['root']}` split `{res['data']['split']}`):"
                " its rows are not comparable with the ground-truth row.",
                "",
            ]
    lines += ["## Image quality, mouth shape and lip sync", ""]
    lines += _table(
        ["row", *(h for _, h, _ in QUALITY_COLUMNS)],
        [[r["_label"], *(_cell(r, k, f) for k, _, f in QUALITY_COLUMNS)] for r in quality_rows],
    )
    mouth_rows = [r for r in quality_rows if r.get("mouth")]
    if mouth_rows:
        lines += [
            "",
            "## Mouth shape per parameter (oracle MAE; % of the ground truth's std)",
            "",
            "Against the corpus's exact parameters. The ground-truth row is the oracle's own error:",
            "a perfect generator scores exactly that.",
            "",
        ]
        lines += _mouth_table(mouth_rows, "mouth")
    read_rows = [r for r in quality_rows if r.get("mouth_vs_gt_reading")]
    if read_rows:
        lines += [
            "",
            "Against the oracle's reading of the ground-truth frames (its own bias cancels; a perfect",
            "generator scores 0; % of the exact parameters' std):",
            "",
        ]
        lines += _mouth_table(read_rows, "mouth_vs_gt_reading")
    lines += [
        "",
        "## Memory: argmax slot of A_aud against the exact phones",
        "",
        "Pooled over every frame of the test clips; 'speech frames' leaves out silence.",
        "",
    ]
    if memory_rows:
        lines += _table(
            ["row", *(h for _, h, _ in MEMORY_COLUMNS)],
            [[label, *(_cell(m, k, f) for k, _, f in MEMORY_COLUMNS)] for label, m in memory_rows],
        )
    else:
        lines.append("No row has a memory (no-memory checkpoints only).")
    if figures:
        lines += ["", "## Figures", ""]
        for link in figures:
            lines += [f"![{Path(link).stem}]({link})", ""]
    lines += ["", "## Commands", ""]
    for res in results:
        lines += [f"`{Path(res['_path']).name}` ({res.get('created', '?')}, git {res.get('git', '?')}):", ""]
        lines += ["```", res["command"], "```", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lipmem_core.results", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "results", nargs="+", type=Path, help="results.json files (first gives the reference row)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    parser.add_argument(
        "--figure", type=Path, action="append", default=[],
        help="an image to show on the page (repeatable), e.g. assets/mouth_strips.png",
    )  # fmt: skip
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.figure if not f.is_file()]
    if missing:
        parser.error(f"no such figure: {', '.join(missing)}")
    links = [os.path.relpath(f.resolve(), args.out.resolve().parent) for f in args.figure]
    text = render_markdown([load_results(p) for p in args.results], links)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out}")
