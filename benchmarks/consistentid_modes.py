"""What ConsistentID costs in each diffusers mode: diffusers' own pipeline of the mode against the same pipeline run
with ConsistentID's contexts, step callback and processors (`idportrait.pipelines.consistentid_modes`).

    .venv/bin/python benchmarks/consistentid_modes.py                          # tiny models on the CPU (seconds)
    .venv/bin/python benchmarks/consistentid_modes.py --size sd15 --pixels 128 --steps 4 --threads 2
    .venv/bin/python benchmarks/consistentid_modes.py --size sd15 --device cuda --dtype float16 --pixels 512 --steps 30

Models: `generate_overhead.build_pipelines` (random weights, tiny or at real SD1.5 / CLIP-ViT-H / ConsistentID size;
the cost does not depend on the weights) and a ControlNet made from the base UNet (`ControlNetModel.from_unet`).
ConsistentID runs with its LoRA fused (what ``idportrait generate`` does), face inputs prepared once (dlib and the
landmark parser on the packaged astronaut photo). Every call makes one image with CFG; img2img and inpainting at
strength 1.0 (every step runs), inpainting with a 4-channel UNet (latent blending) and the mask of the face, whole
image (no crop). Per mode: seconds per image (fastest of ``--repeats`` after a warm-up call) and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from consistentid_attention import time_ms
from generate_overhead import build_pipelines
from PIL import Image

INPUTS = {  # mode -> the images it takes
    "text2img": (),
    "img2img": ("init_image",),
    "inpaint": ("init_image", "mask_image"),
    "controlnet": ("control_image",),
    "controlnet-img2img": ("init_image", "control_image"),
    "controlnet-inpaint": ("init_image", "mask_image", "control_image"),
}
PROMPT = "a portrait photo of a person in a garden"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--pixels", type=int, default=None, help="image side [64 tiny, 128 sd15]")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import diffusers
    from diffusers import ControlNetModel

    from idportrait.adapters.consistentid.attention import fuse_lora
    from idportrait.demo import demo_photo
    from idportrait.faces import get_face_analyzer, get_face_parser
    from idportrait.methods.image_inputs import canny_edges, face_mask
    from idportrait.pipelines.consistentid_modes import MODES as CLASSES
    from idportrait.pipelines.consistentid_modes import consistentid_generate, mode_images

    dtype = getattr(torch, args.dtype)
    pixels = args.pixels or (64 if args.size == "tiny" else 128)
    with tempfile.TemporaryDirectory() as tokenizer_dir:
        plain, cid = build_pipelines(args.size, args.device, dtype, tokenizer_dir)
    fuse_lora(cid.unet)
    controlnet = ControlNetModel.from_unet(plain.unet)
    if args.size == "tiny":  # the tiny VAE downsamples by 2: a condition embedding of the same factor
        controlnet = ControlNetModel.from_unet(plain.unet, conditioning_embedding_out_channels=(16, 32))
    controlnet = controlnet.to(args.device, dtype)

    photo = demo_photo()
    analyzer, face_parser = get_face_analyzer("dlib"), get_face_parser("landmarks")
    face = cid.prepare_face_inputs(photo, analyzer, face_parser)
    square = (pixels, pixels)
    images = {
        "init_image": photo.resize(square),
        "mask_image": face_mask(photo, analyzer, face_parser).resize(square, Image.NEAREST),
        "control_image": canny_edges(photo).resize(square),
    }
    common = {"num_inference_steps": args.steps, "guidance_scale": 5.0, "height": pixels, "width": pixels}

    device = "cuda" if args.device.startswith("cuda") else "cpu"
    print(f"device {args.device}, {args.dtype}, {args.size} models, {pixels}x{pixels} px, {args.steps} steps, CFG 5, "
          f"strength 1.0, 1 image per call, fastest of {args.repeats} after a warm-up")  # fmt: skip
    print(f"{'mode':<20} {'diffusers s/img':>16} {'ConsistentID s/img':>19} {'ratio':>6}")
    for mode, wanted in INPUTS.items():
        given = {k: images[k] for k in wanted}
        extra = {"controlnet": controlnet} if mode.startswith("controlnet") else {}
        reference = getattr(diffusers, CLASSES[mode][0])(**plain.components, **extra, requires_safety_checker=False)
        reference.set_progress_bar_config(disable=True)
        names = mode_images(mode, given.get("init_image"), given.get("mask_image"), given.get("control_image"))
        strength = {"strength": 1.0} if "init_image" in given else {}
        options = {k: v for k, v in common.items() if mode != "img2img" or k not in ("height", "width")}

        def run_plain(reference=reference, names=names, strength=strength, options=options):
            generator = torch.Generator(device).manual_seed(0)
            reference(PROMPT, generator=generator, **names, **strength, **options)

        def run_ours(given=given, strength=strength):
            generator = [torch.Generator(device).manual_seed(0)]
            consistentid_generate(
                cid, PROMPT, face, controlnet=controlnet, generator=generator, **given, **strength, **common
            )

        plain_s, ours_s = time_ms(run_plain, args.repeats) / 1000, time_ms(run_ours, args.repeats) / 1000
        print(f"{mode:<20} {plain_s:>16.3f} {ours_s:>19.3f} {ours_s / plain_s:>6.2f}")


if __name__ == "__main__":
    main()
