"""Exporting a view: its figure (self-contained HTML), its table (CSV) and images (PNG), each
file carrying the checkpoint name and the data it was computed on in its own metadata.

- HTML: plotly.js is embedded (the file opens offline, no CDN); the metadata is in
  `<meta name="lipmem:KEY">` tags and in a `<script type="application/json" id="lipmem-metadata">`.
  (A PNG of a plotly figure would need kaleido and a headless Chrome at run time; HTML keeps
  the figure interactive and needs neither.)
- CSV: `# KEY: VALUE` lines before the header; `pandas.read_csv(path, comment="#")` skips them.
- PNG: tEXt chunks, one per key (`PIL.Image.open(path).text`).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def export_metadata(view: str, checkpoint: str, data: str, **extra: object) -> dict[str, str]:
    """The metadata every exported file carries: view, checkpoint, data, creation time, extras."""
    meta = {"view": view, "checkpoint": checkpoint or "-", "data": data, "created": _now()}
    meta |= {k: str(v) for k, v in extra.items()}
    return meta


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def file_stem(*parts: str) -> str:
    """A safe file name from view and checkpoint names ("slot map", "lipmem-synthtalk" -> ...)."""
    text = "_".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.") or "lipmem"


def write_figure_html(fig: go.Figure, path: str | Path, metadata: dict[str, str]) -> Path:
    """The figure as one HTML file that opens offline, with `metadata` in its head."""
    path = Path(path)
    title = f"{metadata.get('view', 'LipMem')}: {metadata.get('checkpoint', '')}"
    body = fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    tags = "\n".join(
        f'<meta name="lipmem:{html.escape(k)}" content="{html.escape(v)}">' for k, v in metadata.items()
    )
    blob = json.dumps(metadata, indent=1).replace("</", "<\\/")  # never closes the script early
    caption = " · ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in metadata.items())
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>\n{tags}\n"
        f"<script type='application/json' id='lipmem-metadata'>{blob}</script></head>"
        f"<body style='font-family:sans-serif'><p style='color:#555;font-size:12px'>{caption}</p>\n"
        f"{body}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path


def write_table_csv(table: pd.DataFrame, path: str | Path, metadata: dict[str, str]) -> Path:
    """The table as CSV preceded by `# key: value` metadata lines (read back with comment="#")."""
    path = Path(path)
    lines = [f"# {k}: {v}".replace("\n", " ") for k, v in metadata.items()]
    index = not isinstance(table.index, pd.RangeIndex)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
        table.to_csv(f, index=index)
    return path


def write_image_png(image: np.ndarray, path: str | Path, metadata: dict[str, str]) -> Path:
    """An RGB uint8 image as PNG with one tEXt chunk per metadata key."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_text(f"lipmem:{key}", value)
    path = Path(path)
    Image.fromarray(np.ascontiguousarray(image)).save(path, pnginfo=info)
    return path


def read_csv_metadata(path: str | Path) -> dict[str, str]:
    """The `# key: value` lines at the top of a CSV written by `write_table_csv`."""
    meta = {}
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.startswith("# "):
                break
            key, _, value = line[2:].rstrip("\n").partition(": ")
            meta[key] = value
    return meta


@dataclass
class Export:
    """What one view exports: named figures, tables and images, and the metadata of all."""

    metadata: dict[str, str]
    figures: dict[str, go.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)

    def write(self, directory: str | Path) -> list[Path]:
        """Write every figure (.html), table (.csv) and image (.png) into `directory`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        stem = file_stem(self.metadata.get("view", ""), self.metadata.get("checkpoint", ""))
        paths = [
            write_figure_html(f, out / f"{stem}_{n}.html", self.metadata) for n, f in self.figures.items()
        ]
        paths += [write_table_csv(t, out / f"{stem}_{n}.csv", self.metadata) for n, t in self.tables.items()]
        paths += [write_image_png(i, out / f"{stem}_{n}.png", self.metadata) for n, i in self.images.items()]
        return paths
