"""The CLIP image preprocessing every adapter's vision tower expects (OpenAI CLIP, 224 px)."""

from __future__ import annotations

from transformers import CLIPImageProcessor


def clip_image_processor() -> CLIPImageProcessor:
    """The OpenAI CLIP preprocessing: shortest side 224 (bicubic), centre crop 224, OpenAI mean/std."""
    return CLIPImageProcessor(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
        do_convert_rgb=True,
    )
