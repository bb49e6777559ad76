"""Gradio components whose own input checks end in a message a user can act on.

gr.Image opens every upload with Pillow before any handler runs; a file that is not an image
(or a truncated one, or a decompression bomb) then fails inside Gradio with its generic
"error" text. `face_image` wraps that check so the failure says what to do. (The instance's
preprocess is wrapped rather than gr.Image subclassed: Gradio writes a .pyi stub beside the
source of every Component subclass.)
"""

from __future__ import annotations

import functools

import gradio as gr
from PIL import Image, UnidentifiedImageError

UNREADABLE_IMAGE = (
    "The face upload is not an image that can be read (it is corrupt, truncated, too large or "
    "not an image): upload a JPEG or PNG photo of a face"
)


def face_image(**kwargs) -> gr.Image:
    """gr.Image(type="filepath", image_mode=None, **kwargs) with a readable upload error.

    image_mode=None: Gradio passes the upload's path on without decoding it (the handler's
    own checks read the header first).
    """
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    preprocess = image.preprocess

    @functools.wraps(preprocess)
    def checked(payload):
        try:
            return preprocess(payload)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            OSError,
            SyntaxError,
            ValueError,
        ) as exc:
            raise gr.Error(UNREADABLE_IMAGE, title="Video decode", print_exception=False) from exc

    image.preprocess = checked
    return image
