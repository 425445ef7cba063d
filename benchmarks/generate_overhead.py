"""What ConsistentID costs over the plain SD1.5 pipeline: same base UNet, same steps, same size, CFG on both.

    .venv/bin/python benchmarks/generate_overhead.py                          # tiny on CPU (+ sd15 if CUDA)
    .venv/bin/python benchmarks/generate_overhead.py --size sd15 --device cuda --dtype float16

Rows: ``tiny`` (the demo's random tiny models) and ``sd15`` (random weights at real SD1.5 / CLIP-ViT-H /
ConsistentID size; the cost does not depend on the weights). Columns: plain s/img, ConsistentID s/img (face
inputs already prepared) with its LoRA unfused and fused into the base projections (`fuse_lora`, what
``idportrait generate`` runs), their ratios to plain, and the per-identity preparation (face analysis + parsing + CLIP +
ID/region tokens) on the first call and from the cache. Face analysis uses the offline dlib backend and
the landmark parser on the packaged astronaut photo (on the CPU, also when the UNet runs on a GPU).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import dataclass

import torch
from real_sizes import CLIP_L_TEXT, CLIP_VIT_H, VAE

SD15_UNET = {"cross_attention_dim": 768, "sample_size": 64}
PROMPTS = ["a portrait photo of a person in a garden", "a person as an astronaut, digital art"]


@dataclass
class Row:
    size: str
    device: str
    dtype: str
    steps: int
    pixels: int
    plain: float
    consistentid: float
    fused: float
    prep_first: float
    prep_cached: float


def build_pipelines(size: str, device: str, dtype: torch.dtype, tokenizer_dir: str):
    """(plain StableDiffusionPipeline, ConsistentIDPipeline) sharing every weight except the UNet processors."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from idportrait.pipelines.clip_processor import clip_image_processor
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
    from idportrait.tiny import TINY_ADAPTER, clip_tokenizer_from_bpe, random_consistentid, tiny_scheduler, tiny_sd15

    torch.manual_seed(0)
    if size == "tiny":
        c = tiny_sd15(tokenizer_dir)
        unet, vae, text_encoder, image_encoder = c.unet, c.vae, c.text_encoder, c.image_encoder
        adapter = dict(TINY_ADAPTER, full_size=False)
    else:
        with torch.device(device):
            unet = UNet2DConditionModel(**SD15_UNET)
            vae = AutoencoderKL(**VAE, sample_size=512)
            text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT))
            image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_H))
        adapter = {"cross_attention_dim": 768, "clip_dim": 1280, "id_dim": 128, "rank": 128, "full_size": True}
    parts = {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": clip_tokenizer_from_bpe(tokenizer_dir),
        "scheduler": tiny_scheduler(),
        "safety_checker": None,
        "feature_extractor": clip_image_processor(),
        "requires_safety_checker": False,
    }
    plain = StableDiffusionPipeline(unet=unet, image_encoder=None, **parts).to(device, dtype)
    cid_unet = copy.deepcopy(unet)
    facial_encoder, image_proj, _ = random_consistentid(cid_unet, **adapter)
    cid = ConsistentIDPipeline(unet=cid_unet, image_encoder=image_encoder, **parts).to(device, dtype)
    cid.set_consistentid(facial_encoder, image_proj, {"image_proj_shortcut": False})
    for pipe in (plain, cid):
        pipe.set_progress_bar_config(disable=True)
    return plain, cid


def timed(fn, device: str) -> float:
    """Wall seconds of ``fn()`` (CUDA synchronised before and after)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(size: str, device: str, dtype: torch.dtype, steps: int, pixels: int, repeats: int) -> Row:
    from idportrait.adapters.consistentid.attention import fuse_lora, unfuse_lora
    from idportrait.demo import demo_photo
    from idportrait.faces import get_face_analyzer, get_face_parser
    from idportrait.methods.consistentid import ConsistentIDMethod

    with tempfile.TemporaryDirectory() as tmp:
        plain, cid = build_pipelines(size, device, dtype, tmp)
    method = ConsistentIDMethod(cid, get_face_analyzer("dlib"), get_face_parser("landmarks"))
    photo = demo_photo()

    def prepare():
        face = method.prepare(photo)
        cid.identity_tokens(face, cid._execution_device, dtype)
        return face

    prep_first = timed(prepare, device)
    prep_cached = timed(prepare, device)
    face = prepare()
    common = {"num_inference_steps": steps, "guidance_scale": 5.0, "height": pixels, "width": pixels}
    common["output_type"] = "latent"

    def run_plain():
        plain(PROMPTS, negative_prompt=[""] * len(PROMPTS), generator=torch.manual_seed(0), **common)

    def run_cid():
        cid(PROMPTS, face_inputs=face, start_merge_step=steps // 2, generator=torch.manual_seed(0), **common)

    timed(run_plain, device)  # warm-up
    timed(run_cid, device)
    plain_s, cid_s, fused_s = [], [], []
    for _ in range(repeats):  # interleaved, so drift hits all alike
        plain_s.append(timed(run_plain, device))
        for fuse, times in ((unfuse_lora, cid_s), (fuse_lora, fused_s)):
            fuse(cid.unet)
            run_cid()  # the first call after rewriting the weights runs cold: not timed
            times.append(timed(run_cid, device))
    unfuse_lora(cid.unet)
    n = len(PROMPTS)
    return Row(size, device, str(dtype).removeprefix("torch."), steps, pixels, min(plain_s) / n, min(cid_s) / n,
               min(fused_s) / n, prep_first, prep_cached)  # fmt: skip


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'size':<5} {'device':<7} {'dtype':<8} {'steps':>5} {'px':>4} {'plain s/img':>11} "
        f"{'ConsistentID s/img':>18} {'ratio':>6} {'ConsistentID fused s/img':>24} {'ratio':>6} "
        f"{'prep first s':>12} {'prep cached s':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.size:<5} {r.device:<7} {r.dtype:<8} {r.steps:>5} {r.pixels:>4} {r.plain:>11.4f} "
            f"{r.consistentid:>18.4f} {r.consistentid / r.plain:>6.3f} {r.fused:>24.4f} {r.fused / r.plain:>6.3f} "
            f"{r.prep_first:>12.4f} {r.prep_cached:>13.6f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "sd15", "all"], default=None, help="default: tiny (+ sd15 on CUDA)")
    parser.add_argument("--device", default=None, help="default: cpu for tiny, cuda for sd15")
    parser.add_argument("--dtype", default=None, help="float32 / float16 / bfloat16 (default: fp32 CPU, fp16 CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="default: 10 tiny, 30 sd15")
    parser.add_argument("--pixels", type=int, default=None, help="image side (default: 64 tiny, 512 sd15)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sizes = {"tiny": ["tiny"], "sd15": ["sd15"], "all": ["tiny", "sd15"]}.get(args.size) or (
        ["tiny", "sd15"] if torch.cuda.is_available() else ["tiny"]
    )
    rows = []
    for size in sizes:
        device = args.device or ("cpu" if size == "tiny" else "cuda")
        dtype_name = args.dtype or ("float16" if device.startswith("cuda") else "float32")
        dtype = getattr(torch, dtype_name)
        steps = args.steps or (10 if size == "tiny" else 30)
        pixels = args.pixels or (64 if size == "tiny" else 512)
        rows.append(measure(size, device, dtype, steps, pixels, args.repeats))
    print_table(rows)
    print("ratio = ConsistentID (unfused / LoRA fused) / plain per image (2 prompts per call, CFG 5, Euler);")
    print("prep = per identity.")


if __name__ == "__main__":
    main()
