"""Slot map, slot gallery and the memory playground: what each slot stores, and steering.

Slots are named by the phones they answer to on the checkpoint's probe set
(memory_views.probe_frames: synthetic sentences with exact phones), so these views work for
any checkpoint without a corpus on disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lipmem_app.choices import check
from lipmem_app.context import AppContext
from lipmem_app.memory_views import PROBE_SENTENCES, generator, reference_counts
from lipmem_core.config import FPS
from lipmem_core.errors import LipMemError, UnknownPhoneError

MEMORIES = ("value", "key")  # V (lip side) and K (audio side)
LAYOUTS = (("UMAP", "umap"), ("PCA", "pca"))  # PCA is linear and instant; UMAP shows neighbourhoods
GALLERY_ORDERS = (("by viseme", "viseme"), ("by slot number", "slot"))
DISPLAY_SIZE = 160  # px: lip images are upscaled for the browser
DEFAULT_FRAMES_PER_STEP = 4  # 160 ms per slot, about one phone
MAX_STEPS = 64
MAX_FRAMES = 25 * 20  # a 20 s steered clip at most
STRIP_COLUMNS = 8
GALLERY_ZOOM = 2.5  # mouth crops of 43 x 62 px at 128 px faces become about 108 x 155
GALLERY_COLUMNS = 6


def _upscale(images: np.ndarray, size: int = DISPLAY_SIZE) -> list[np.ndarray]:
    return [cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC) for im in images]


def _montage(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    """Equal-size RGB tiles -> one image, `cols` per row, white padding for the last row."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    width = min(cols, len(tiles))
    canvas = np.full((rows * h, width * w, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, width)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return canvas


def slot_info(ctx: AppContext, checkpoint: str | None) -> pd.DataFrame:
    """Per slot: frames won on the probe set, dominant phone and viseme, top phones."""
    from analysis.slots import slot_labels

    return slot_labels(reference_counts(ctx, checkpoint, "phone"))


def slot_map_figure(ctx: AppContext, checkpoint: str | None, memory: str, colour: str, layout: str = "umap"):
    """UMAP (or PCA) of the value (or key) slots coloured by dominant phone or viseme (map cached)
    -> (figure, Export of the figure and the map's table)."""
    from analysis.exports import Export, export_metadata
    from analysis.plots import map_scatter
    from analysis.slots import slot_map

    if memory not in MEMORIES:
        raise LipMemError(f"unknown memory {memory!r}; choose one of {MEMORIES}")
    check(layout, LAYOUTS, "layout")
    if colour not in ("phone", "viseme"):
        raise LipMemError(f"colour by 'phone' or 'viseme', not {colour!r}")
    name = ctx.checkpoint_dir(checkpoint).name
    counts = reference_counts(ctx, checkpoint, "phone")
    table = ctx.cached(
        ("slot_map", f"{name}/{memory}/{layout}"),
        lambda: slot_map(generator(ctx, checkpoint), counts, memory, method=layout),
    )
    symbol = "V" if memory == "value" else "K"
    n_unused = int((table["n_frames"] == 0).sum()) if "n_frames" in table else 0
    title = (
        f"{memory.capitalize()} memory {symbol} of {name}: {len(table)} slots, coloured by dominant {colour}"
        f"<br><sup>named on the probe set ({int(counts.to_numpy().sum())} frames of {PROBE_SENTENCES} espeak "
        f"sentences); {n_unused} slots never the argmax (grey)</sup>"
    )
    figure = map_scatter(table, color=colour, title=title)
    meta = export_metadata(
        "slot-map", name, f"probe set: {PROBE_SENTENCES} espeak sentences, {int(counts.to_numpy().sum())} frames",
        memory=memory, layout=layout, colour=colour,
    )  # fmt: skip
    return figure, Export(meta, figures={"slot_map": figure}, tables={"slot_map": table})


def decoding_model(ctx: AppContext, checkpoint: str | None):
    """The pipeline's inference copy of a generator with memory (BatchNorm folded, channels_last:
    the same images about twice as fast) for decoding addresses into lip images."""
    generator(ctx, checkpoint)  # a clear error for a checkpoint without memory
    return ctx.pipeline(checkpoint).model


def gallery_images(
    ctx: AppContext, checkpoint: str | None, face: np.ndarray, slots: list[int]
) -> list[np.ndarray]:
    """Lip images of the given slots (one-hot addresses decoded for `face`), upscaled for display."""
    from analysis.slots import slot_gallery

    model = decoding_model(ctx, checkpoint)
    bad = [s for s in slots if not 0 <= s < model.cfg.n_slots]
    if bad:
        raise LipMemError(f"slot {bad[0]} does not exist: this memory has slots 0..{model.cfg.n_slots - 1}")
    images, _ = slot_gallery(model, face, slots)  # (K, H, W, 3)
    return _upscale(images)


def mouth_tiles(images: np.ndarray, scale: float = GALLERY_ZOOM) -> np.ndarray:
    """The mouth region (metrics.MOUTH_BOX) of decoded faces, enlarged: (K, h, w, 3) uint8."""
    from lipmem_core.evaluation.metrics import mouth_crop

    crops = mouth_crop(np.asarray(images))  # (K, h, w, 3)
    size = (round(crops.shape[2] * scale), round(crops.shape[1] * scale))
    return np.stack([cv2.resize(c, size, interpolation=cv2.INTER_CUBIC) for c in crops])


def gallery(
    ctx: AppContext,
    checkpoint: str | None,
    face: np.ndarray,
    order: str = "viseme",
    show_unused: bool = False,
):
    """Every used slot's value V_s decoded for one identity, as enlarged mouth crops in one
    plotly montage: grouped under a header per viseme class (or in slot order), each tile
    labelled with its slot and top phones. Unused slots (never the argmax on the probe set)
    are listed in one line, or drawn as a last group with `show_unused`.

    -> (figure, Export of the figure and the per-slot table).
    """
    from analysis.exports import Export, export_metadata
    from analysis.plots import grouped_gallery_figure
    from analysis.slots import UNUSED, slot_gallery
    from lipmem_core.phones import VISEMES

    check(order, GALLERY_ORDERS, "order")
    info = slot_info(ctx, checkpoint).set_index("slot")
    used = [int(s) for s in info.index if info.at[s, "phone"] != UNUSED]
    unused = [int(s) for s in info.index if info.at[s, "phone"] == UNUSED]
    if order == "viseme":
        # one group per viseme class (in VISEMES order), the most confident slot first
        sections = [
            (f"{viseme} ({' '.join(members)})", sorted(
                (s for s in used if info.at[s, "viseme"] == viseme), key=lambda s: (-info.at[s, "share"], s)
            ))
            for viseme, members in VISEMES.items()
        ]  # fmt: skip
    else:
        sections = [("used slots, by number", used)]
    if show_unused:
        sections.append((f"unused: never the argmax on the probe set ({len(unused)} slots)", unused))
    drawn = [s for _, slots in sections for s in slots]
    if not drawn:
        raise LipMemError("no slot to draw: every slot is unused; tick 'Show unused slots' to see them")
    images, _ = slot_gallery(decoding_model(ctx, checkpoint), face, drawn)  # (K, H, W, 3)
    tiles = dict(zip(drawn, mouth_tiles(images), strict=True))

    def label(s: int) -> str:  # "12 AA/AH": the slot and its two top phones; hover has the shares
        return f"{s} " + "/".join(filter(None, (info.at[s, "phone"], info.at[s, "second_phone"])))

    def hover(s: int) -> str:
        top = info.at[s, "top_phones"] or "never the argmax"
        return f"slot {s}<br>viseme: {info.at[s, 'viseme']}<br>{top}<br>{info.at[s, 'n_frames']} probe frames"

    groups = [
        (f"{header}: {len(slots)} slot{'s' if len(slots) != 1 else ''}", np.stack([tiles[s] for s in slots]),
         [label(s) for s in slots], [hover(s) for s in slots])
        for header, slots in sections
        if slots
    ]  # fmt: skip
    footer = "" if show_unused or not unused else (
        f"{len(unused)} of {len(info)} slots unused (never the argmax on the probe set), not drawn: "
        + " ".join(str(s) for s in unused[:48]) + (" …" if len(unused) > 48 else "")
    )  # fmt: skip
    name = ctx.checkpoint_dir(checkpoint).name
    n_probe = int(info["n_frames"].sum())
    title = f"Mouths stored in the slots of {name} (value decoded alone, {len(used)} used slots)"
    figure = grouped_gallery_figure(groups, cols=GALLERY_COLUMNS, title=title, footer=footer)
    meta = export_metadata(
        "slot-gallery", name, f"probe set: {PROBE_SENTENCES} espeak sentences, {n_probe} frames",
        order=order, unused_slots="shown" if show_unused else "listed",
    )  # fmt: skip
    return figure, Export(meta, figures={"gallery": figure}, tables={"slots": info.reset_index()})


@dataclass
class Steering:
    """A parsed playground sequence: one row per step (token, slot, frames)."""

    steps: pd.DataFrame

    def segments(self) -> list[tuple[int, int]]:
        return [(int(s), int(n)) for s, n in zip(self.steps["slot"], self.steps["frames"], strict=True)]


def best_slots(ctx: AppContext, checkpoint: str | None) -> dict[str, int]:
    """Each phone's most likely slot, argmax_s P(slot | phone), on the probe set."""
    counts = reference_counts(ctx, checkpoint, "phone")
    counts = counts[counts.sum(axis=1) > 0]
    return {str(p): int(row.to_numpy().argmax()) for p, row in counts.iterrows()}


def _is_number(token: str) -> bool:
    """A slot number: ASCII digits only ('²' and other Unicode digits are not int()-able)."""
    return token.isascii() and token.isdigit()


def parse_sequence(
    text: str, n_slots: int, phone_slots: dict[str, int] | None, frames_per_step: int
) -> Steering:
    """'12 40*6 P AA M' -> steps. A token is a slot number or an ARPAbet phone (mapped to its
    best slot), optionally '*N' frames (default `frames_per_step`)."""
    from lipmem_core.phones import normalize_phone

    tokens = [t for t in re.split(r"[\s,;]+", text or "") if t]
    if not tokens:
        raise LipMemError("type a sequence of slots or phones, e.g. '12 40 7' or 'M AA P'")
    if len(tokens) > MAX_STEPS:
        raise LipMemError(f"the sequence has {len(tokens)} steps; the limit is {MAX_STEPS}")
    rows = []
    for token in tokens:
        head, _, count = token.partition("*")
        try:
            frames = int(count) if count else frames_per_step
        except ValueError:
            raise LipMemError(f"{token!r}: write a frame count as '*N', e.g. '12*6'") from None
        if not 1 <= frames <= 100:
            raise LipMemError(f"{token!r}: frames per step must be between 1 and 100")
        if _is_number(head):
            slot = int(head)
            if slot >= n_slots:
                raise LipMemError(f"slot {slot} does not exist: this memory has slots 0..{n_slots - 1}")
        else:
            try:
                phone = normalize_phone(head)
            except UnknownPhoneError:
                raise LipMemError(
                    f"{head!r} is neither a slot number nor an ARPAbet phone (e.g. AA, M, F)"
                ) from None
            if phone_slots is None or phone not in phone_slots:
                raise LipMemError(f"phone {phone} never occurs in the probe set: give a slot number instead")
            slot = phone_slots[phone]
        rows.append({"token": token, "slot": slot, "frames": frames})
    steps = pd.DataFrame(rows)
    if steps["frames"].sum() > MAX_FRAMES:
        raise LipMemError(f"the sequence lasts {steps['frames'].sum()} frames; the limit is {MAX_FRAMES}")
    return Steering(steps)


def steer(
    ctx: AppContext, checkpoint: str | None, face: np.ndarray, text: str, frames_per_step: int, out_path: Path
) -> tuple[Path, np.ndarray, pd.DataFrame]:
    """Decode a hand-made slot sequence: -> (silent MP4, image strip, steps with top phones)."""
    from analysis.slots import address_sequence
    from lipmem_core.infer.addressing import decode_addresses
    from lipmem_core.infer.video import VideoWriter

    model = decoding_model(ctx, checkpoint)
    n_slots = model.cfg.n_slots
    needs_phones = any(not _is_number(t.partition("*")[0]) for t in re.split(r"[\s,;]+", text or "") if t)
    steering = parse_sequence(
        text, n_slots, best_slots(ctx, checkpoint) if needs_phones else None, frames_per_step
    )
    track = address_sequence(steering.segments(), n_slots)  # (T, S)
    frames = decode_addresses(model, face, track)  # (T, H, W, 3)
    big = np.stack(_upscale(frames, 2 * frames.shape[1]))
    with VideoWriter(out_path, big.shape[2], big.shape[1], FPS) as writer:
        writer.write(big)
    # The strip: the middle frame of each step, in rows of STRIP_COLUMNS.
    n = steering.steps["frames"].to_numpy()
    strip = _montage(_upscale(frames[np.cumsum(n) - n // 2 - 1]), STRIP_COLUMNS)
    info = slot_info(ctx, checkpoint).set_index("slot")
    steps = steering.steps.assign(
        top_phones=[info.at[s, "top_phones"] or "unused" for s in steering.steps["slot"]]
    )
    return out_path, strip, steps
