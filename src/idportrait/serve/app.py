"""The web demo (`idportrait serve`): upload a photo, pick a method and a style, get a grid of portraits; or
repaint the person's face into another photo (inpainting), optionally through a ControlNet.

Data flow of one click: `check_upload` (type, size, decodable) -> ``method.prepare(photo)`` (raises
`NoFaceError` when there is no face) -> ``method.generate`` one image at a time under a progress bar ->
PNGs with their seed in the metadata for download. With a photo to repaint (ConsistentID methods) the
images of `repaint_images` go along: that photo, its mask (uploaded, or the largest face found in it) and a
control image. Styles are the ConsistentID release's templates (`idportrait.serve.styles`). Every `UserError`
becomes a friendly line in the status box; nothing else is swallowed. An upload writes its own status line
at once (`describe_upload`), so a visitor (and the browser test) sees when the server has the photo. The app
only needs objects with ``prepare`` / ``generate``, so tests run it on tiny models.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from idportrait.errors import ImageError, NoFaceError, UserError
from idportrait.imageio import IMAGE_SUFFIXES, load_image
from idportrait.methods.base import Method
from idportrait.serve.styles import DEFAULT_STYLE, NO_STYLE, STYLES, apply_style

MAX_UPLOAD_MB = 15.0
MAX_UPLOAD_PIXELS = 40_000_000
MAX_IMAGES = 8
MAX_SEED = 2**32 - 1
"""Largest first seed the page takes (the seeds of one click count up from it)."""

REPAINT_NAMES = {"init_image": "the photo to repaint", "mask_image": "The mask", "control_image": "The control image"}
"""How the status line names the repainting images."""


@dataclass
class Demo:
    """The demo's state: how to get each method (loaded on first use, then kept) and an optional parser.

    load: method name -> method; parse: photo -> `Parsing` for the mask view (None hides the option).
    """

    methods: list[str]
    load: Callable[[str], Method]
    parse: Callable[[Image.Image], Any] | None = None
    out_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="idportrait-serve-")))
    _loaded: dict[str, Method] = field(default_factory=dict)

    def method(self, name: str) -> Method:
        if name not in self._loaded:
            self._loaded[name] = self.load(name)
        return self._loaded[name]


def check_upload(path: str | Path | None) -> Image.Image:
    """The uploaded file as RGB, or `ImageError` with a message a visitor understands."""
    if not path:
        raise ImageError("Please upload a photo first.")
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"'{path.suffix or path.name}' is not a supported photo type; use JPG, PNG or WebP.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise ImageError(f"The photo is {size_mb:.1f} MB; the limit is {MAX_UPLOAD_MB:.0f} MB.")
    try:
        return load_image(path, max_pixels=MAX_UPLOAD_PIXELS)
    except ImageError as err:
        raise ImageError(f"This file could not be read as a photo ({str(err).split(': ', 1)[-1]}).") from None


def describe_upload(path: str | None) -> str:
    """The status line written as soon as the photo changes: name and size, what is wrong, or "" once cleared."""
    if not path:
        return ""
    try:
        photo = check_upload(path)
    except ImageError as err:
        return f"⚠️ {friendly(err)}"
    return f"Photo ready: {Path(path).name} ({photo.width}x{photo.height}). Press Generate."


def check_seed(seed: float | None) -> int:
    """The seed box's value as an int, or `UserError` for an empty, fractional, negative or huge one."""
    if seed is None or not math.isfinite(seed) or seed != int(seed) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"The seed must be a whole number from 0 to {MAX_SEED}.")
    return int(seed)


def friendly(err: UserError) -> str:
    """One status line for the page."""
    if isinstance(err, NoFaceError):
        return "No face found in this photo. Please upload a clear photo where one face is visible."
    return str(err)


def repaint_images(
    method: Method, target: str | None, mask: str | None, control: str | None, strength: float | None
) -> dict[str, Any]:
    """``method.generate`` options for repainting ``target`` (uploaded paths, checked like the photo): the photo,
    its mask (the largest face in it when there is no mask), a control image, the strength. {} without uploads."""
    if not (target or mask or control):
        return {}
    if not callable(getattr(method, "mode_images", None)):
        raise UserError("Repainting a photo and control images need a ConsistentID method.")
    if mask and not target:
        raise UserError("Upload the photo to repaint as well: the mask belongs to it.")
    if control and getattr(method, "controlnet", None) is None:
        raise UserError("This demo has no ControlNet: start it with --controlnet canny (or openpose, a folder).")
    from idportrait.methods.image_inputs import FACE_MASK, ImageInputs, check_image_inputs

    inputs = ImageInputs(
        init_image=check_upload(target) if target else None,
        mask_image=check_upload(mask) if mask else FACE_MASK if target else None,
        control_image=check_upload(control) if control else None,
        source="the photo to repaint",
    )
    check_image_inputs(inputs, REPAINT_NAMES)
    images = method.mode_images(inputs.init_image, inputs.mask_image, inputs.control_image)
    return images if strength is None or not target else {**images, "strength": float(strength)}


def repaint_overlay(photo: Image.Image, mask: Image.Image) -> Image.Image:
    """The photo with the area to repaint (white in ``mask``) tinted red."""
    base = np.asarray(photo.convert("RGB"), dtype=np.float32)
    alpha = 0.5 * (np.asarray(mask.convert("L").resize(photo.size), dtype=np.float32)[..., None] / 255.0)
    return Image.fromarray((base * (1 - alpha) + np.array([230.0, 25.0, 75.0]) * alpha).astype(np.uint8))


def mask_overlay(photo: Image.Image, parsing: Any) -> Image.Image:
    """The photo with each parsed region tinted in its own colour (for the mask view)."""
    colours = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48]], np.float32)
    base = np.asarray(photo.resize(parsing.shape[::-1]), dtype=np.float32)
    out = base.copy()
    for colour, mask in zip(colours, parsing.regions.values(), strict=False):
        out[mask] = 0.45 * base[mask] + 0.55 * colour
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def run(
    demo: Demo,
    upload: str | None,
    method_name: str,
    prompt: str,
    style: str,
    count: int,
    seed: float | None,
    show_masks: bool,
    show_attention: bool = False,
    progress: Callable[..., Any] = lambda *a, **k: None,
    target: str | None = None,
    repaint_mask: str | None = None,
    strength: float | None = None,
    control: str | None = None,
) -> tuple[list[Image.Image], list[str], Image.Image | None, Image.Image | None, str]:
    """One click: (gallery images, downloadable PNG paths, mask view, attention view, status line).

    The attention view (facial tokens' cross-attention over the first image) needs a ConsistentID method.
    ``target`` / ``repaint_mask`` / ``strength`` / ``control``: `repaint_images`; the mask view then shows the
    area repainted.
    """
    from idportrait.generate.batch import save_with_seed
    from idportrait.serve.attention_view import generate_with_attention, heatmap_strip, supports_attention

    try:
        photo = check_upload(upload)
        seed = check_seed(seed)
        progress(0.0, desc="Finding the face")
        method = demo.method(method_name)
        prepared = method.prepare(photo)
        repaint = repaint_images(method, target, repaint_mask, control, strength)
        masks = mask_overlay(photo, demo.parse(photo)) if show_masks and demo.parse else None
        if "mask_image" in repaint:
            masks = repaint_overlay(repaint["init_image"], repaint["mask_image"])
        text, negative = apply_style(STYLES.get(style, STYLES[NO_STYLE]), prompt.strip() or "a portrait of a person")
        options = {"negative_prompt": negative, **repaint}
        count = max(1, min(int(count), MAX_IMAGES))
        images, files, attention, note = [], [], None, ""
        demo.out_dir.mkdir(parents=True, exist_ok=True)
        click_dir = Path(tempfile.mkdtemp(prefix=f"{method_name}-", dir=demo.out_dir))
        for i in range(count):
            progress(i / count, desc=f"Generating image {i + 1} of {count}")
            if i == 0 and show_attention and supports_attention(method):
                image, heats = generate_with_attention(method, prepared, text, seed, **options)
                attention = heatmap_strip(image, heats)
                note = " Attention: " + ", ".join(word for word, _ in heats) + "."
            else:
                image = method.generate(prepared, [text], [seed + i], **options)[0]
            path = click_dir / f"{i:02d}-seed{seed + i}.png"
            save_with_seed(path, image, seed=seed + i, prompt=text, method=method_name)
            images.append(image)
            files.append(str(path))
        if show_attention and attention is None:
            note = " Attention maps are shown for ConsistentID methods only."
        what = ", repainted into the photo" if "mask_image" in repaint else ""
        progress(1.0, desc="Done")
        return images, files, masks, attention, f"Done: {count} image(s) with {method_name}{what}.{note}"
    except UserError as err:
        return [], [], None, None, f"⚠️ {friendly(err)}"


def build_app(demo: Demo) -> Any:
    """The gradio Blocks UI over `run`."""
    import gradio as gr

    def picture(label: str, elem_id: str) -> Any:
        return gr.Image(label=label, type="filepath", image_mode=None, sources=["upload"], height=220, elem_id=elem_id)

    with gr.Blocks(title="idportrait") as app:
        gr.Markdown("# idportrait\nUpload a photo of one person, choose a method and a style, and generate.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Photo (JPG, PNG, WebP)", type="filepath", elem_id="upload")
                method = gr.Dropdown(demo.methods, value=demo.methods[0], label="Method", elem_id="method")
                prompt = gr.Textbox(label="Prompt", value="a portrait of a person, smiling", elem_id="prompt")
                style = gr.Dropdown(list(STYLES), value=DEFAULT_STYLE, label="Style", elem_id="style")
                with gr.Row():
                    count = gr.Slider(1, MAX_IMAGES, value=2, step=1, label="Images", elem_id="count")
                    seed = gr.Number(value=42, precision=0, label="Seed", elem_id="seed")
                with gr.Accordion("Repaint the face into a photo (ConsistentID)", open=False, elem_id="repaint"):
                    with gr.Row():
                        target = picture("Photo to repaint", "target")
                        repaint_mask = picture("Mask, white = repaint (none: the face)", "repaint-mask")
                        control = picture("Control image (ControlNet)", "control")
                    strength = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Strength", elem_id="strength")
                show_masks = gr.Checkbox(
                    label="Show the face-parsing masks", value=False, visible=demo.parse is not None
                )
                show_attention = gr.Checkbox(label="Show the facial tokens' attention maps (ConsistentID)", value=False)
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                gallery = gr.Gallery(label="Portraits", columns=2, elem_id="gallery")
                files = gr.File(label="Download", file_count="multiple", elem_id="download")
                masks = gr.Image(label="Masks (face parsing, or the area repainted)", type="pil", elem_id="masks")
                attention = gr.Image(
                    label="Attention of face, ears, eyes, nose, mouth", type="pil", elem_id="attention"
                )

        def on_click(
            upload, method, prompt, style, count, seed, show_masks, show_attention, target, repaint_mask, strength,
            control, progress=gr.Progress(),
        ):  # fmt: skip
            return run(
                demo, upload, method, prompt, style, count, seed, show_masks, show_attention, progress,
                target=target, repaint_mask=repaint_mask, strength=strength, control=control,
            )  # fmt: skip

        upload.change(describe_upload, inputs=upload, outputs=status)
        inputs = [upload, method, prompt, style, count, seed, show_masks, show_attention]
        button.click(
            on_click,
            inputs=[*inputs, target, repaint_mask, strength, control],
            outputs=[gallery, files, masks, attention, status],
        )
    return app
