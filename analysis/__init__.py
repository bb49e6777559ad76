"""Memory analysis of a LipMem generator: phones, addressing, slot statistics and views.

One call from speech to the per-frame table every analysis starts from:

    import analysis, lipmem_core as lm
    model = lm.load_checkpoint("checkpoints/lipmem-synthtalk", kind="generator").model
    frames = analysis.address_speech(model, "assets/examples/hello.wav")  # or transcript="..."
    frames[["time", "phone", "viseme", "slot", "weight"]]

The modules and the report are described in analysis/README.md.
"""

from __future__ import annotations

from lipmem_core.lazy import lazy_exports

_EXPORTS = {
    "address_speech": "analysis.addressing",
    "clip_addressing": "analysis.addressing",
    "join_phones": "analysis.addressing",
    "slot_counts": "analysis.addressing",
    "align_pocketsphinx": "analysis.align",
    "align_espeak": "analysis.align",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
