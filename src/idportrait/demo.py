"""``idportrait demo``: a real end-to-end ConsistentID generation, offline, on CPU, in seconds.

Nothing is downloaded. The demo

1. builds a tiny random SD1.5-shaped base (`idportrait.tiny.save_tiny_sd15`) and a tiny random ConsistentID
   adapter, and writes both to disk in their real formats (diffusers folder; our safetensors layout);
2. loads them back through the same loaders `idportrait generate` uses;
3. analyses a photo packaged with scikit-image (the astronaut) with the offline face backend (dlib: HOG
   detector, 68 landmarks, 128-D face descriptor; the real model uses 512-D ArcFace from insightface) and
   the landmark face parser;
4. generates a few prompts x seeds and writes PNGs, ``settings.json``, the reference photo, its parsing
   map and its region images, then prints where they went.

With random weights the portraits are noise-like; the point is that every stage of the real data flow runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

DEMO_PROMPTS = ["a portrait photo of a person in a garden", "a person as an astronaut, digital art"]
DEMO_SEEDS = [0, 1]


def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/demo"),
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = 10,
    size: Annotated[int, typer.Option(help="Image size in pixels (a positive multiple of 8).")] = 64,
) -> None:
    """Offline end-to-end ConsistentID generation with tiny random models (CPU, seconds)."""
    from rich.console import Console

    from idportrait.errors import writing_into
    from idportrait.generate.checks import check_image_size, check_output_folder
    from idportrait.generate.outputs import quiet_library_progress

    check_output_folder(out)
    check_image_size("--size", size)
    quiet_library_progress()
    console = Console(stderr=True)
    with console.status("building tiny models"), writing_into(out / "models"):
        base, adapter = build_demo_models(out / "models")
    settings = run_demo(out, base, adapter, steps, size, console)
    console.print(f"demo outputs: {len(settings['images'])} images, settings.json, previews in {out}")
    for name in ["settings.json", "reference.png", "parsing.png", "regions.png", *settings["images"]]:
        typer.echo(str(out / name))


def build_demo_models(models_dir: Path) -> tuple[Path, Path]:
    """Write the tiny SD1.5 base folder and a tiny ConsistentID safetensors checkpoint; return their paths."""
    from idportrait.adapters.consistentid.checkpoint import save_consistentid_safetensors
    from idportrait.tiny import TINY_ADAPTER, random_consistentid, save_tiny_sd15, tiny_unet

    base = save_tiny_sd15(models_dir / "tiny-sd15")
    facial_encoder, image_proj, processors = random_consistentid(tiny_unet(), **TINY_ADAPTER)
    adapter = models_dir / "tiny-consistentid.safetensors"
    save_consistentid_safetensors(adapter, facial_encoder, image_proj, processors)
    return base, adapter


def demo_photo() -> Any:
    """The astronaut photo (Eileen Collins, public domain) packaged with scikit-image, as PIL RGB."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.astronaut())


def run_demo(out: Path, base: Path, adapter: Path, steps: int, size: int, console: Any) -> dict[str, Any]:
    """Load the tiny models through the real loaders, analyse the photo, generate, write everything."""
    from idportrait.generate.outputs import write_generations
    from idportrait.imageio import save_image
    from idportrait.methods.consistentid import load_consistentid_method

    method = load_consistentid_method(
        base=str(base), adapter=str(adapter), face_backend="dlib", parser="landmarks", device="cpu", dtype="float32"
    )
    photo = demo_photo()
    prepared = method.prepare(photo, source="skimage.data.astronaut")
    save_image(out / "reference.png", photo)
    save_parsing_previews(method, photo, out)
    options = {
        "num_inference_steps": steps,
        "guidance_scale": 5.0,
        "start_merge_step": int(steps * 0.6),
        "id_scale": 1.0,
        "negative_prompt": "lowres, blurry",
        "height": size,
        "width": size,
    }
    settings = {
        "method": "consistentid",
        "face": "skimage.data.astronaut",
        "base": str(base),
        "adapter": str(adapter),
        "face_backend": "dlib",
        "parser": "landmarks",
        "regions": prepared.region_names,
        "device": "cpu",
        "dtype": "float32",
        "prompts": DEMO_PROMPTS,
        "seeds": DEMO_SEEDS,
        "note": "tiny random weights: the images are noise-like; every stage of the real data flow runs",
        **options,
    }
    paths = write_generations(method, prepared, settings, options, out, console)
    return {**settings, "images": [p.name for p in paths]}


def save_parsing_previews(method: Any, photo: Any, out: Path) -> None:
    """``parsing.png`` (label map in colour over the photo) and ``regions.png`` (the region images, cropped
    around the face for viewing, side by side)."""
    import numpy as np
    from PIL import Image

    from idportrait.faces.parsing import region_images
    from idportrait.imageio import save_image

    face = method.face_analyzer.largest_face(photo, "demo photo")
    parsing = method.face_parser.parse(photo, face)
    palette = np.random.default_rng(0).integers(40, 255, size=(256, 3), dtype=np.uint8)
    palette[0] = 0
    labels = Image.fromarray(palette[parsing.labels]).resize(photo.size, Image.NEAREST)
    save_image(out / "parsing.png", Image.blend(photo, labels, 0.5))
    x1, y1, x2, y2 = face.bbox.tolist()
    pad = 0.3 * max(x2 - x1, y2 - y1)
    box = (int(max(x1 - pad, 0)), int(max(y1 - pad, 0)), int(x2 + pad), int(y2 + pad))
    crops = [c.crop(box).resize((128, 128)) for c in region_images(photo, parsing)]
    strip = Image.new("RGB", (128 * max(len(crops), 1), 128))
    for k, crop in enumerate(crops):
        strip.paste(crop, (128 * k, 0))
    save_image(out / "regions.png", strip)
