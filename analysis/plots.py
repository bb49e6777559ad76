"""Plotly figures of the memory analysis: tables in, `go.Figure` out (no I/O, no gradio).

- `slot_phone_heatmap`: a phone (or viseme) x slot matrix, slots in clustered order, hover
  with the count, P(slot | phone), P(phone | slot) and the slot's top phones.
- `utterance_timeline`: waveform, phone tier and A_aud (slots x time) of one utterance on a
  shared time axis, with the argmax slot traced over the heatmap.
- `map_scatter`: a 2-D slot map or frame map (analysis.slots) coloured by phone or viseme.
- `gallery_figure`: lip images of slots as one montage, hover naming each slot's phones.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lipmem_core.config import SAMPLE_RATE
from lipmem_core.phones import PHONES, SILENCE, VISEMES, viseme_of

from .addressing import weights
from .slots import UNUSED

# One colour per viseme class, fixed, so every figure of a report agrees.
VISEME_COLOURS: dict[str, str] = dict(zip(VISEMES, px.colors.qualitative.Plotly, strict=False)) | {
    "unused": "#d0d0d0"
}
PHONE_COLOURS: dict[str, str] = dict(
    zip(PHONES, px.colors.qualitative.Dark24 + px.colors.qualitative.Light24, strict=False)
) | {"unused": "#d0d0d0", "": "#d0d0d0"}
_WAVE_POINTS = 4000  # envelope points drawn for the waveform, whatever the clip length


def slot_phone_heatmap(
    matrix: pd.DataFrame,
    order: Sequence[int] | None = None,
    counts: pd.DataFrame | None = None,
    slot_info: pd.DataFrame | None = None,
    title: str = "P(phone | slot)",
    order_name: str = "clustered order",
) -> go.Figure:
    """Heatmap of a label x slot matrix (addressing.phone_slot_matrices), columns in `order`
    (only those slots: pass the used slots alone to hide unused ones).

    counts (same shape, argmax counts) adds counts and both conditionals to the hover;
    slot_info (slots.slot_labels) adds each slot's top phones and viseme.
    """
    cols = list(matrix.columns) if order is None else [int(s) for s in order]
    m = matrix[cols]
    labels = [str(i) for i in m.index]
    x = [f"s{s}" for s in cols]
    hover = np.empty(m.shape, dtype=object)
    top = {} if slot_info is None else dict(zip(slot_info["slot"], slot_info["top_phones"], strict=False))
    vis = {} if slot_info is None else dict(zip(slot_info["slot"], slot_info["viseme"], strict=False))
    c = None if counts is None else counts.reindex(index=m.index, columns=cols).fillna(0).to_numpy()
    row_sum = None if c is None else np.maximum(c.sum(axis=1, keepdims=True), 1)
    col_sum = None if c is None else np.maximum(c.sum(axis=0, keepdims=True), 1)
    values = m.to_numpy(dtype=np.float64)
    for i, label in enumerate(labels):
        for j, s in enumerate(cols):
            text = f"slot {s}<br>{matrix.index.name or 'label'} {label}<br>value {values[i, j]:.3f}"
            if c is not None:
                text += (
                    f"<br>frames {int(c[i, j])}<br>P(slot|{label}) {c[i, j] / row_sum[i, 0]:.2f}"
                    f"<br>P({label}|slot) {c[i, j] / col_sum[0, j]:.2f}"
                )
            if s in top:
                text += f"<br>slot's top: {top[s] or 'unused'}<br>slot's viseme: {vis[s]}"
            hover[i, j] = text
    fig = go.Figure(
        go.Heatmap(
            z=values, x=x, y=labels, colorscale="Viridis", hovertext=hover, hoverinfo="text", xgap=0, ygap=0
        )
    )
    fig.update_layout(
        title=title,
        # Slot numbers stay legible: up to 48 columns at 11 px, more at 8 px, always upright-rotated.
        xaxis={
            "title": f"slot ({order_name})",
            "type": "category",
            "tickfont": {"size": 11 if len(cols) <= 48 else 8},
            "tickangle": -90,
        },
        yaxis={"title": matrix.index.name or "", "autorange": "reversed", "type": "category"},
        height=max(320, 16 * len(labels) + 140),
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def _waveform_envelope(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, min, max) of `audio` in _WAVE_POINTS bins: a waveform drawn in constant time."""
    n = len(audio)
    bins = max(1, min(_WAVE_POINTS, n))
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    lo = np.minimum.reduceat(audio, edges[:-1])
    hi = np.maximum.reduceat(audio, edges[:-1])
    return edges[:-1] / SAMPLE_RATE, lo, hi


def utterance_timeline(
    frames: pd.DataFrame,
    phones: pd.DataFrame | None = None,
    audio: np.ndarray | None = None,
    order: Sequence[int] | None = None,
    title: str = "",
) -> go.Figure:
    """Waveform (if given), phone tier (if given) and A_aud slots x time of ONE utterance."""
    if frames["utterance"].nunique() > 1:
        raise ValueError("utterance_timeline draws one utterance; filter the frame table first")
    rows = [r for r, have in (("wave", audio is not None), ("phones", phones is not None)) if have] + [
        "slots"
    ]
    heights = {"wave": 0.2, "phones": 0.1, "slots": 0.7}
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[heights[r] for r in rows],
    )
    row = {name: i + 1 for i, name in enumerate(rows)}
    if audio is not None:
        t, lo, hi = _waveform_envelope(np.asarray(audio, dtype=np.float32))
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([t, t[::-1]]),
                y=np.concatenate([hi, lo[::-1]]),
                fill="toself",
                line={"width": 0.5, "color": "#555"},
                hoverinfo="skip",
                name="waveform",
            ),
            row=row["wave"],
            col=1,
        )
        fig.update_yaxes(showticklabels=False, row=row["wave"], col=1)
    if phones is not None:
        p = phones[phones["utterance"] == frames["utterance"].iloc[0]] if len(frames) else phones
        colours = [VISEME_COLOURS[viseme_of(ph)] for ph in p["phone"]]
        fig.add_trace(
            go.Bar(
                x=(p["end"] - p["start"]).to_numpy(),
                base=p["start"].to_numpy(),
                y=["phones"] * len(p),
                orientation="h",
                marker={"color": colours, "line": {"width": 0.5, "color": "white"}},
                text=[ph if ph != SILENCE else "" for ph in p["phone"]],
                textposition="inside",
                insidetextanchor="middle",
                hovertext=[
                    f"{ph} ({viseme_of(ph)})<br>{w}<br>{s:.2f}-{e:.2f} s"
                    for ph, w, s, e in zip(p["phone"], p["word"], p["start"], p["end"], strict=True)
                ],
                hoverinfo="text",
                name="phones",
            ),
            row=row["phones"],
            col=1,
        )
        fig.update_yaxes(showticklabels=False, row=row["phones"], col=1)
    w = weights(frames)  # (N, S)
    slots = list(range(w.shape[1])) if order is None else [int(s) for s in order]
    fig.add_trace(
        go.Heatmap(
            z=w[:, slots].T,  # (S, N)
            x=frames["time"].to_numpy(),
            y=[f"s{s}" for s in slots],
            colorscale="Viridis",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": "A_aud", "len": 0.6, "y": 0.3},
            hovertemplate="t %{x:.2f} s<br>%{y}<br>A_aud %{z:.3f}<extra></extra>",
        ),
        row=row["slots"],
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=frames["time"].to_numpy(),
            y=[f"s{s}" for s in frames["slot"]],
            mode="markers",
            marker={"size": 3, "color": "white", "symbol": "line-ew-open"},
            customdata=frames.get("phone"),
            hovertemplate="t %{x:.2f} s<br>argmax %{y}<br>phone %{customdata}<extra></extra>",
            name="white tick: the frame's argmax slot (its unit in the statistics)",
            showlegend=True,
        ),
        row=row["slots"],
        col=1,
    )
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[f"s{s}" for s in slots],
                     tickfont={"size": 7}, title="slot", row=row["slots"], col=1)  # fmt: skip
    fig.update_xaxes(title="time (s)", row=row["slots"], col=1)
    # Only the argmax ticks have a legend entry: it explains them inside the figure itself.
    for trace in fig.data[:-1]:
        trace.showlegend = False
    fig.update_layout(
        title=title,
        height=720,
        bargap=0,
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "bgcolor": "#444",
                "font": {"color": "white", "size": 11}},
    )  # fmt: skip
    return fig


def map_scatter(table: pd.DataFrame, color: str = "phone", title: str = "") -> go.Figure:
    """Scatter of a slot map or frame map (analysis.slots) coloured by `phone` or `viseme`.

    Frame maps draw frames as small dots and the value slots on top as labelled diamonds.
    """
    if color not in ("phone", "viseme"):
        raise ValueError(f"color must be 'phone' or 'viseme', got {color!r}")
    t = table.copy()
    if color == "viseme" and "viseme" not in t:
        t["viseme"] = [viseme_of(p) if p and p != "unused" else "unused" for p in t["phone"].fillna("")]
    palette = VISEME_COLOURS if color == "viseme" else PHONE_COLOURS
    method = str(t["method"].iloc[0]).upper() if "method" in t and len(t) else ""
    fig = go.Figure()
    points = t[t["kind"] == "frame"] if "kind" in t else t.iloc[0:0]
    for label, g in points.groupby(color, sort=True):
        fig.add_trace(
            go.Scattergl(
                x=g["x"], y=g["y"], mode="markers", name=str(label),
                marker={"size": 4, "opacity": 0.6, "color": palette.get(str(label), "#888")},
                customdata=np.stack([g["utterance"], g["frame"], g["slot"]], axis=1),
                hovertemplate=f"{label}<br>%{{customdata[0]}} frame %{{customdata[1]}}<br>slot %{{customdata[2]}}<extra></extra>",
            )
        )  # fmt: skip
    slots = t[t["kind"] == "slot"] if "kind" in t else t
    if "top_phones" in slots:  # slots named by slot_labels: coloured by their dominant label
        slots = slots.assign(**{color: slots[color].fillna(UNUSED).replace("", UNUSED)})
    else:  # unnamed slots (a frame map's overlay) are one group
        slots = slots.assign(**{color: "value slots"})
    # One trace per colour, so the legend says what each colour is; unused slots go last, grey.
    groups = sorted(slots.groupby(color, sort=False), key=lambda kv: (kv[0] == UNUSED, _label_rank(kv[0])))
    for label, g in groups:
        top = g["top_phones"] if "top_phones" in g else pd.Series([""] * len(g), index=g.index)
        visemes = g["viseme"] if "viseme" in g else pd.Series([UNUSED] * len(g), index=g.index)
        hover = [
            f"slot {s}<br>viseme: {v}"
            + (f"<br>{tp}" if isinstance(tp, str) and tp else "<br>never the argmax")
            for s, v, tp in zip(g["slot"], visemes, top, strict=True)
        ]
        name = f"{label} ({len(g)} slot{'s' if len(g) > 1 else ''})"
        fig.add_trace(
            go.Scatter(
                x=g["x"], y=g["y"], mode="markers+text", name=name, legendgroup=f"slots-{label}",
                text=[str(s) for s in g["slot"]], textposition="top center", textfont={"size": 8},
                marker={"size": 10, "symbol": "diamond", "color": palette.get(str(label), "#888"),
                        "line": {"width": 1, "color": "black"}},
                hovertext=hover, hoverinfo="text",
            )
        )  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis={"title": f"{method} 1", "showticklabels": False},
        yaxis={"title": f"{method} 2", "showticklabels": False},
        height=560,
        legend={"itemsizing": "constant", "font": {"size": 10}, "title": {"text": f"dominant {color}"}},
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig


def _label_rank(label: str) -> int:
    """Legend order: viseme classes, then ARPAbet, in their canonical order."""
    order = list(VISEMES) + list(PHONES)
    return order.index(label) if label in order else len(order)


def image_data_uri(image: np.ndarray, fmt: str = "png") -> str:
    """uint8 RGB (H, W, 3) -> "data:image/<fmt>;base64,..." for go.Image(source=...).

    "png" is lossless; "jpeg" (quality 90) is about 10x smaller for faces, for figures sent to
    a browser.
    """
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"image format must be 'png' or 'jpeg', not {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == "jpeg" else []
    ok, data = cv2.imencode(f".{fmt}", np.ascontiguousarray(image[..., ::-1]), params)  # cv2 writes BGR
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as {fmt}")
    return f"data:image/{fmt};base64," + base64.b64encode(data.tobytes()).decode("ascii")


def gallery_figure(
    images: np.ndarray,
    slots: Sequence[int],
    slot_info: pd.DataFrame | None = None,
    cols: int = 12,
    title: str = "",
    labels: Sequence[str] | None = None,
    image_format: str = "png",
) -> go.Figure:
    """Montage of lip images (K, H, W, 3) uint8, `cols` per row, each titled by its slot and
    dominant phone (or by `labels`); the montage is embedded as `image_format` (png | jpeg)."""
    images = np.asarray(images)
    k, h, w = images.shape[:3]
    n_rows = max(1, -(-k // cols))
    pad = 2
    canvas = np.full((n_rows * (h + pad), cols * (w + pad), 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    top = {} if slot_info is None else dict(zip(slot_info["slot"], slot_info["top_phones"], strict=False))
    # Tile label: the slot and its dominant phone ("12 M"), so the montage reads without hovering.
    best = {} if slot_info is None else dict(zip(slot_info["slot"], slot_info["phone"], strict=False))
    centres = [divmod(i, cols) for i in range(k)]
    # The montage travels as one image (data URI), not as a z array: 96 tiles of 128 px are
    # ~8 MB of JSON numbers against ~4 MB of PNG or ~0.4 MB of JPEG, drawn by the browser at once.
    fig = go.Figure(go.Image(source=image_data_uri(canvas, image_format), hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=[c * (w + pad) + w / 2 for _, c in centres],
            y=[r * (h + pad) + h / 2 for r, _ in centres],
            mode="markers",
            marker={"size": max(w, 10) / 2, "opacity": 0},
            hovertext=[f"slot {s}<br>{top.get(int(s)) or 'unused'}" for s in slots],
            hoverinfo="text",
        )
    )
    if labels is None:
        labels = [f"{s} {best.get(int(s), '')}".strip() for s in slots]
    font, box = {"size": 9, "color": "white"}, "rgba(0,0,0,0.5)"
    # one layout update: add_annotation per tile validates the whole layout each time (~20 ms)
    fig.update_layout(
        annotations=[
            {
                "x": c * (w + pad) + 2,
                "y": r * (h + pad) + 2,
                "text": text,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": font,
                "bgcolor": box,
            }  # fmt: skip
            for (r, c), text in zip(centres, labels, strict=True)
        ]
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        title=title,
        showlegend=False,
        height=max(200, 90 * n_rows + 60),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


# Fixed colours of the Compare view's three renderings, in every figure.
SOURCE_COLOURS = ("#222222", "#d62728", "#1f77b4", "#2ca02c", "#9467bd")
_PARAM_TITLES = {
    "jaw": "jaw opening",
    "close": "lip closure (P/B/M)",
    "round": "lip rounding (UW/OW/W)",
    "spread": "lip spread",
    "tuck": "lower-lip tuck (F/V)",
    "teeth": "teeth",
    "tongue": "tongue",
}


def mouth_curves(curves: pd.DataFrame, phones: pd.DataFrame | None = None, title: str = "") -> go.Figure:
    """The oracle-read mouth parameters of several renderings over time (analysis.compare
    `oracle_curves`): one panel per parameter, one line per source (the first source, the
    ground truth, drawn thick and dark), the phones written along the top when given."""
    params = list(dict.fromkeys(curves["param"]))
    sources = list(dict.fromkeys(curves["source"]))
    fig = make_subplots(
        rows=len(params), cols=1, shared_xaxes=True, vertical_spacing=0.06,
        subplot_titles=[_PARAM_TITLES.get(p, p) for p in params],
    )  # fmt: skip
    for i, source in enumerate(sources):
        colour = SOURCE_COLOURS[i % len(SOURCE_COLOURS)]
        for r, param in enumerate(params, start=1):
            sub = curves[(curves["source"] == source) & (curves["param"] == param)]
            fig.add_trace(
                go.Scatter(
                    x=sub["time"], y=sub["value"], mode="lines", name=source, legendgroup=source,
                    showlegend=r == 1, line={"color": colour, "width": 3 if i == 0 else 1.8},
                    hovertemplate=f"{source}<br>t %{{x:.2f}} s<br>{param} %{{y:.2f}}<extra></extra>",
                ),
                row=r, col=1,
            )  # fmt: skip
        fig.update_yaxes(range=[-0.02, 1.02], title="oracle reading", title_font={"size": 10})
    if phones is not None:
        spoken = phones[phones["phone"] != SILENCE]
        fig.add_trace(
            go.Scatter(
                x=(spoken["start"] + spoken["end"]) / 2, y=[1.0] * len(spoken), mode="text",
                text=spoken["phone"], textfont={"size": 9, "color": "#666"}, hoverinfo="skip",
                showlegend=False,
            ),
            row=1, col=1,
        )  # fmt: skip
    fig.update_xaxes(title="time (s)", row=len(params), col=1)
    fig.update_layout(
        title=title,
        height=170 * len(params) + 120,
        legend={"orientation": "h", "y": 1.08, "x": 0},
        margin={"l": 60, "r": 20, "t": 90, "b": 50},
    )
    return fig


def grouped_gallery_figure(
    groups: Sequence[tuple[str, np.ndarray, Sequence[str], Sequence[str]]],
    cols: int = 8,
    title: str = "",
    image_format: str = "jpeg",
    footer: str = "",
) -> go.Figure:
    """Images in titled groups, as one montage: groups are (header, images (K, H, W, 3) uint8,
    tile labels, hover texts), each group starting a new row under its header; `footer` is a
    line of text under the last group (e.g. the slots left out). All images share one size."""
    groups = [g for g in groups if len(g[1])]
    if not groups:
        raise ValueError("nothing to draw: every group is empty")
    h, w = groups[0][1].shape[1:3]
    pad, head = 4, 26  # px between tiles; height of a group's header band
    n_rows = [-(-len(images) // cols) for _, images, _, _ in groups]
    height = sum(head + r * (h + pad) for r in n_rows)
    canvas = np.full((height, cols * (w + pad), 3), 255, np.uint8)
    annotations, xs, ys, hovers = [], [], [], []
    y = 0
    for (header, images, labels, hover), rows in zip(groups, n_rows, strict=True):
        annotations.append(
            {"x": 0, "y": y + head - 6, "text": f"<b>{header}</b>", "showarrow": False, "xanchor": "left",
             "yanchor": "bottom", "font": {"size": 13, "color": "#222"}}
        )  # fmt: skip
        y += head
        for i, (image, label, text) in enumerate(zip(images, labels, hover, strict=True)):
            r, c = divmod(i, cols)
            top, left = y + r * (h + pad), c * (w + pad)
            canvas[top : top + h, left : left + w] = image
            annotations.append(
                {"x": left + 2, "y": top + 2, "text": label, "showarrow": False, "xanchor": "left",
                 "yanchor": "top", "font": {"size": 11, "color": "white"}, "bgcolor": "rgba(0,0,0,0.55)"}
            )  # fmt: skip
            xs.append(left + w / 2)
            ys.append(top + h / 2)
            hovers.append(text)
        y += rows * (h + pad)
    fig = go.Figure(go.Image(source=image_data_uri(canvas, image_format), hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(x=xs, y=ys, mode="markers", marker={"size": max(w, 10) / 3, "opacity": 0},
                   hovertext=hovers, hoverinfo="text")
    )  # fmt: skip
    if footer:
        annotations.append(
            {"x": 0, "y": height + 4, "text": footer, "showarrow": False, "xanchor": "left", "yanchor": "top",
             "font": {"size": 12, "color": "#555"}}
        )  # fmt: skip
    fig.update_layout(annotations=annotations)
    fig.update_xaxes(visible=False, range=[-2, canvas.shape[1] + 2])
    fig.update_yaxes(visible=False, range=[height + (30 if footer else 2), -2], scaleanchor="x")
    # Drawn at about its pixel size, so the crops stay large: the page scrolls instead.
    fig.update_layout(
        title=title,
        showlegend=False,
        height=int(min(canvas.shape[1], 1100) / canvas.shape[1] * (height + 30)) + 80,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig
