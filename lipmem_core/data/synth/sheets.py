"""Contact sheets of the SynthTalk renderer for the README.

    python -m lipmem_core.data.sheets [--out assets] [--seed 0] [--size 128]

writes `identities.png` (24 sampled speakers, mid-speech) and `visemes.png` (rows = a few
speakers, columns = one representative mouth per viseme class of phones.VISEMES, labelled).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from lipmem_core.data.synth.face_render import FaceRenderer, Identity
from lipmem_core.data.synth.mouth import PHONE_TARGETS
from lipmem_core.phones import VISEMES

# The phone whose target stands for each viseme class on the sheet.
REPRESENTATIVE = {
    "bilabial": "M",
    "labiodental": "F",
    "dental": "TH",
    "alveolar": "L",
    "postalveolar": "SH",
    "velar": "K",
    "rounded": "UW",
    "spread": "IY",
    "open": "AA",
    "silence": "sil",
}
_SPEECH = ("AH", "EH", "OW", "IY", "AE", "UH", "AA", "F", "TH", "AY", "M", "ER")
_INK, _PAPER = (40, 40, 40), (250, 250, 250)


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float, bold: bool = False) -> None:
    """Centred Hershey text at (x, y) baseline."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = 2 if bold else 1
    (w, _), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(img, text, (x - w // 2, y), font, scale, _INK, thick, cv2.LINE_AA)


def identities_sheet(seed: int = 0, size: int = 128, cols: int = 6, rows: int = 4) -> np.ndarray:
    """(rows * size, cols * size, 3) uint8 RGB: sampled identities, each mid-way through a phone."""
    rng = np.random.default_rng(seed)
    tiles = [
        FaceRenderer(Identity.sample(rng), size).render(PHONE_TARGETS[_SPEECH[i % len(_SPEECH)]])
        for i in range(rows * cols)
    ]
    return np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])


def visemes_sheet(seed: int = 1, size: int = 128, n_identities: int = 4) -> np.ndarray:
    """Labelled grid: a header row of viseme classes (with their phones), then one row per
    identity showing the mouth target of each class's representative phone (size x size
    tiles cropped from eyes to chin)."""
    rng = np.random.default_rng(seed)
    classes = list(VISEMES)
    header = np.full((44, size * len(classes), 3), _PAPER, np.uint8)
    for c, name in enumerate(classes):
        x = c * size + size // 2
        _text(header, name, x, 18, 0.45, bold=True)
        members = " ".join(VISEMES[name])
        phones = members if len(members) <= 18 else " ".join(VISEMES[name][:5]) + " .."
        _text(header, f"{phones}   [{REPRESENTATIVE[name]}]", x, 36, 0.33)
    rows = [header]
    # render larger and keep the middle of the face (eyes to chin), so mouths read clearly
    big = round(size / 0.7)
    y0, x0 = round(0.27 * big), round(0.15 * big)
    for _ in range(n_identities):
        renderer = FaceRenderer(Identity.sample(rng), big)
        tiles = [renderer.render(PHONE_TARGETS[REPRESENTATIVE[v]]) for v in classes]
        rows.append(np.hstack([t[y0 : y0 + size, x0 : x0 + size] for t in tiles]))
    return np.vstack(rows)


def _save(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}; check that the directory is writable")
    print(f"wrote {path} ({rgb.shape[1]}x{rgb.shape[0]}, {path.stat().st_size / 1024:.0f} KiB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lipmem_core.data.sheets",
        description="Write the SynthTalk identity and viseme sheets.",
    )
    parser.add_argument("--out", type=Path, default=Path("assets"), help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128, help="pixels per face")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    _save(args.out / "identities.png", identities_sheet(args.seed, args.size))
    _save(args.out / "visemes.png", visemes_sheet(args.seed + 1, args.size))
