"""LipMem: SyncTalkFace's Audio-Lip Memory, its training, evaluation and inference.

The names a notebook needs, importable from here (each loaded on first use, so
`import lipmem_core` stays cheap):

    import lipmem_core as lm
    ckpt = lm.load_checkpoint("checkpoints/lipmem-synthtalk", kind="generator")  # or "owner/name@COMMIT"
    made = lm.TalkingFacePipeline(ckpt).generate("assets/examples/astronaut.jpg", "assets/examples/hello.wav")
    made.frames, made.addressing                          # (N, H, W, 3) uint8 RGB, A_aud (N, S)
    lip = lm.decode_slot(ckpt.model, made.crops[0], slot=int(made.addressing[0].argmax()))

`generate(..., out_path="talk.mp4")` writes an MP4 instead of keeping the frames;
`address_audio(model, audio)` gives A_aud (N, S) without drawing anything. The layout of the
package and the data flow are in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from lipmem_core.lazy import lazy_exports

_EXPORTS = {
    "load_checkpoint": "lipmem_core.checkpoint",
    "read_config": "lipmem_core.checkpoint",
    "LoadedCheckpoint": "lipmem_core.checkpoint",
    "TalkingFacePipeline": "lipmem_core.infer.pipeline",
    "GenerationResult": "lipmem_core.infer.pipeline",
    "address_audio": "lipmem_core.infer.addressing",
    "decode_addresses": "lipmem_core.infer.addressing",
    "decode_slot": "lipmem_core.infer.addressing",
    "load_audio": "lipmem_core.audio",
    "ModelConfig": "lipmem_core.config",
    "LipMemGenerator": "lipmem_core.model.generator",
    "LipMemError": "lipmem_core.errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
