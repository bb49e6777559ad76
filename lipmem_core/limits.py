"""Limits that keep one input from exhausting the machine, each stated once (README "Limits").

The app adds its own upload limits on top (lipmem_app/limits.py); the command lines enforce
these. Every check reads file headers, never decodes first: an 8000 x 8000 photo or a
20-minute recording is refused in milliseconds.
"""

from __future__ import annotations

MAX_IMAGE_SIDE = 4096  # px: photos and video frames larger than this on either side are refused
# px: accepted faces larger than this (long side) are downscaled while they are decoded, so a
# request's memory and encoding cost stay those of a 1080p video whatever the input's size.
WORK_SIDE = 1920
# Speech given to the inference CLI: 30 min (it streams in bounded memory and shows progress).
MAX_INFER_SECONDS = 1800.0
# Speech given to an aligner (analysis.align, analysis.report --audio): PocketSphinx's time
# grows with the utterance, so 5 min keeps an alignment to about a minute (docs/ARCHITECTURE.md "Measured figures").
MAX_ALIGN_SECONDS = 300.0
MIN_SPEECH_PEAK = 1e-3  # -60 dBFS: a recording whose peak stays below this holds no speech
