"""The web demo (`idportrait serve`): upload a photo, pick a method and a style, get a grid of portraits.

Data flow of one click: `check_upload` (type, size, decodable) -> ``method.prepare(photo)`` (raises
`NoFaceError` when there is no face) -> ``method.generate`` one image at a time under a progress bar ->
PNGs with their seed in the metadata for download. Every `UserError` becomes a friendly line in the
status box; nothing else is swallowed. The app only needs objects with ``prepare`` / ``generate``,
so tests run it on tiny models.
"""

from __future__ import annotations

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

MAX_UPLOAD_MB = 15.0
MAX_UPLOAD_PIXELS = 40_000_000
MAX_IMAGES = 8

STYLES = {
    "Photo": "{prompt}, professional photograph, natural light, 50mm, highly detailed",
    "Cinematic": "{prompt}, cinematic still, dramatic lighting, film grain, shallow depth of field",
    "Watercolor": "watercolor painting of {prompt}, soft colors, paper texture",
    "Oil painting": "oil painting of {prompt}, visible brush strokes, classical portrait",
    "Anime": "anime illustration of {prompt}, clean line art, vibrant colors",
    "None": "{prompt}",
}


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


def friendly(err: UserError) -> str:
    """One status line for the page."""
    if isinstance(err, NoFaceError):
        return "No face found in this photo. Please upload a clear photo where one face is visible."
    return str(err)


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
    seed: int,
    show_masks: bool,
    show_attention: bool = False,
    progress: Callable[..., Any] = lambda *a, **k: None,
) -> tuple[list[Image.Image], list[str], Image.Image | None, Image.Image | None, str]:
    """One click: (gallery images, downloadable PNG paths, mask view, attention view, status line).

    The attention view (facial tokens' cross-attention over the first image) needs a ConsistentID method.
    """
    from idportrait.generate.batch import save_with_seed
    from idportrait.serve.attention_view import generate_with_attention, heatmap_strip, supports_attention

    try:
        photo = check_upload(upload)
        progress(0.0, desc="Finding the face")
        method = demo.method(method_name)
        prepared = method.prepare(photo)
        masks = mask_overlay(photo, demo.parse(photo)) if show_masks and demo.parse else None
        text = STYLES.get(style, "{prompt}").format(prompt=prompt.strip() or "a portrait of a person")
        count = max(1, min(int(count), MAX_IMAGES))
        images, files, attention, note = [], [], None, ""
        demo.out_dir.mkdir(parents=True, exist_ok=True)
        click_dir = Path(tempfile.mkdtemp(prefix=f"{method_name}-", dir=demo.out_dir))
        for i in range(count):
            progress(i / count, desc=f"Generating image {i + 1} of {count}")
            if i == 0 and show_attention and supports_attention(method):
                image, heats = generate_with_attention(method, prepared, text, int(seed))
                attention = heatmap_strip(image, heats)
                note = " Attention: " + ", ".join(word for word, _ in heats) + "."
            else:
                image = method.generate(prepared, [text], [int(seed) + i])[0]
            path = click_dir / f"{i:02d}-seed{int(seed) + i}.png"
            save_with_seed(path, image, seed=int(seed) + i, prompt=text, method=method_name)
            images.append(image)
            files.append(str(path))
        if show_attention and attention is None:
            note = " Attention maps are shown for ConsistentID methods only."
        progress(1.0, desc="Done")
        return images, files, masks, attention, f"Done: {count} image(s) with {method_name}.{note}"
    except UserError as err:
        return [], [], None, None, f"⚠️ {friendly(err)}"


def build_app(demo: Demo) -> Any:
    """The gradio Blocks UI over `run`."""
    import gradio as gr

    with gr.Blocks(title="idportrait") as app:
        gr.Markdown("# idportrait\nUpload a photo of one person, choose a method and a style, and generate.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Photo (JPG, PNG, WebP)", type="filepath", elem_id="upload")
                method = gr.Dropdown(demo.methods, value=demo.methods[0], label="Method", elem_id="method")
                prompt = gr.Textbox(label="Prompt", value="a portrait of a person, smiling", elem_id="prompt")
                style = gr.Dropdown(list(STYLES), value="Photo", label="Style", elem_id="style")
                with gr.Row():
                    count = gr.Slider(1, MAX_IMAGES, value=2, step=1, label="Images", elem_id="count")
                    seed = gr.Number(value=42, precision=0, label="Seed", elem_id="seed")
                show_masks = gr.Checkbox(
                    label="Show the face-parsing masks", value=False, visible=demo.parse is not None
                )
                show_attention = gr.Checkbox(label="Show the facial tokens' attention maps (ConsistentID)", value=False)
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                gallery = gr.Gallery(label="Portraits", columns=2, elem_id="gallery")
                files = gr.File(label="Download", file_count="multiple", elem_id="download")
                masks = gr.Image(label="Parsing masks", type="pil", elem_id="masks")
                attention = gr.Image(
                    label="Attention of face, ears, eyes, nose, mouth", type="pil", elem_id="attention"
                )

        def on_click(upload, method, prompt, style, count, seed, show_masks, show_attention, progress=gr.Progress()):
            return run(demo, upload, method, prompt, style, count, seed, show_masks, show_attention, progress)

        button.click(
            on_click,
            inputs=[upload, method, prompt, style, count, seed, show_masks, show_attention],
            outputs=[gallery, files, masks, attention, status],
        )
    return app
