"""Every speed table of one release in one call: s/image per stage, ratio to the plain base, peak memory.

    .venv/bin/python benchmarks/device_suite.py                       # CUDA: real sizes, fp16 (about 5 min, H100)
    .venv/bin/python benchmarks/device_suite.py --size tiny           # CPU smoke run: the same code, tiny models
    .venv/bin/python benchmarks/device_suite.py --size real --device cpu --rows consistentid-sd15-lcm --repeats 0

Models are built in code with random weights at the real sizes and layouts (SD1.5 + CLIP-ViT-H + the full
ConsistentID adapter; SDXL + ConsistentID-SDXL; SDXL + IdentityNet + InstantID's adapter; SD1.5 + IP-Adapter-
FaceID-PlusV2), directly on the device; nothing is downloaded (the cost does not depend on the weights). Each
row builds its own pipeline so the peak memory is that row's alone.

One image per call, one fresh identity per timed call (identity preparation included, never cached): the
astronaut photo through the offline dlib face analysis (CPU) and a random-weight BiSeNet parser (on the device).
Stages: face = face analysis, parse = face parsing, enc = text/image encoders and ConsistentID's projector and
FacialEncoder, unet = UNet (+ IdentityNet) over all steps, dec = VAE decode, rest = everything else (scheduler,
image pre/post-processing, InstantID's Resampler...); total = wall time of prepare + generate.
gen = the ``generate`` call alone (identity prepared; ConsistentID's ID tokens included); ratio = gen / gen of the
plain base row with the same base, steps and accelerator (same device): the ID conditioning overhead.
Timings are the fastest of ``--repeats`` calls after one untimed warm-up call (``--repeats 0``: the first,
cold call only). CUDA is synchronised around every stage; peak = ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from real_sizes import CLIP_BIGG_TEXT, CLIP_L_TEXT, CLIP_VIT_H, VAE

from idportrait.adapters.consistentid.keymap import UNET_CONFIGS

ID_DIM = 128  # the offline dlib descriptor (ArcFace would be 512; the projector cost barely changes)
PROMPT = "a portrait photo of a person in a garden"
NEGATIVE = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"
STAGES = ("face", "parse", "enc", "unet", "dec", "rest")


@dataclass
class Row:
    name: str
    base: str
    steps: int
    pixels: int
    accelerator: str | None
    stages: dict[str, float]
    total: float
    generate: float
    peak_gb: float | None
    ratio: float | None = None


@dataclass
class Setting:
    """Where and how big: ``real`` or ``tiny`` models, device, dtype, image sides and steps per base."""

    size: str
    device: str
    dtype: torch.dtype
    sd15_pixels: int
    sdxl_pixels: int
    steps: int
    repeats: int
    tmp: Path
    compile: bool = False
    landmarks: str = "68"
    stage_times: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- timing
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@contextmanager
def stage_clock(setting: Setting, stage: str):
    """Add the wall time of the block to ``setting.stage_times[stage]`` (CUDA synchronised on both sides)."""
    sync(setting.device)
    start = time.perf_counter()
    try:
        yield
    finally:
        sync(setting.device)
        setting.stage_times[stage] = setting.stage_times.get(stage, 0.0) + time.perf_counter() - start


def time_module(setting: Setting, module: torch.nn.Module, stage: str) -> None:
    """Count every forward of ``module`` in ``stage`` (hooks; nested timed modules are not double counted)."""
    started: list[float] = []

    def before(*_: Any) -> None:
        sync(setting.device)
        started.append(time.perf_counter())

    def after(*_: Any) -> None:
        sync(setting.device)
        setting.stage_times[stage] = setting.stage_times.get(stage, 0.0) + time.perf_counter() - started.pop()

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)


def time_method(setting: Setting, owner: Any, name: str, stage: str) -> None:
    """Count every call of ``owner.name`` (a bound method, wrapped on the instance) in ``stage``."""
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with stage_clock(setting, stage):
            return inner(*args, **kwargs)

    setattr(owner, name, timed)


def time_pipeline(setting: Setting, pipe: Any) -> None:
    """Hook the stage clocks onto a diffusers pipeline's models."""
    for attr in ("text_encoder", "text_encoder_2", "image_encoder"):
        if getattr(pipe, attr, None) is not None:
            time_module(setting, getattr(pipe, attr), "enc")
    for attr in ("unet", "controlnet"):
        if getattr(pipe, attr, None) is not None:
            time_module(setting, getattr(pipe, attr), "unet")
    time_method(setting, pipe.vae, "decode", "dec")


# ---------------------------------------------------------------------------------------------- models
def on_device(setting: Setting, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """A random-weight model built on the device (fp32 init), then cast to the run dtype, in eval mode."""
    with torch.device(setting.device):
        model = build()
    return model.to(setting.dtype).eval()


def sd15_parts(setting: Setting) -> dict[str, Any]:
    """Components of an SD1.5 pipeline (+ CLIP-ViT-H image encoder) at the setting's size."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from idportrait.pipelines.clip_processor import clip_image_processor
    from idportrait.tiny import clip_tokenizer_from_bpe, tiny_image_encoder, tiny_scheduler, tiny_sd15

    torch.manual_seed(0)
    tokenizer = clip_tokenizer_from_bpe(setting.tmp / "tokenizer")
    if setting.size == "tiny":
        c = tiny_sd15(setting.tmp / "tokenizer")
        unet, vae, text_encoder = c.unet, c.vae, c.text_encoder
        image_encoder = tiny_image_encoder()
        cast = {"unet": unet, "vae": vae, "text_encoder": text_encoder, "image_encoder": image_encoder}
        unet, vae, text_encoder, image_encoder = (m.to(setting.device, setting.dtype).eval() for m in cast.values())
    else:
        unet = on_device(setting, lambda: UNet2DConditionModel(**UNET_CONFIGS["sd15"], sample_size=64))
        vae = on_device(setting, lambda: AutoencoderKL(**VAE, sample_size=512))
        text_encoder = on_device(setting, lambda: CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT)))
        image_encoder = on_device(setting, lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_H)))
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": tiny_scheduler(),
        "feature_extractor": clip_image_processor(),
        "image_encoder": image_encoder,
    }


def sdxl_parts(setting: Setting) -> dict[str, Any]:
    """Components of an SDXL pipeline (+ CLIP-ViT-H image encoder) at the setting's size."""
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from idportrait.pipelines.clip_processor import clip_image_processor
    from idportrait.tiny import save_tiny_sdxl, tiny_image_encoder, tiny_scheduler

    torch.manual_seed(0)
    if setting.size == "tiny":
        folder = setting.tmp / "tiny-sdxl"
        if not folder.is_dir():
            save_tiny_sdxl(folder)
        pipe = StableDiffusionXLPipeline.from_pretrained(folder)
        parts = {k: v for k, v in pipe.components.items() if k in SDXL_COMPONENTS}
        parts["image_encoder"] = tiny_image_encoder()
        for key, model in parts.items():
            if isinstance(model, torch.nn.Module):
                parts[key] = model.to(setting.device, setting.dtype).eval()
    else:
        from idportrait.tiny import clip_tokenizer_from_bpe

        tokenizer = clip_tokenizer_from_bpe(setting.tmp / "tokenizer")
        parts = {
            "unet": on_device(setting, lambda: UNet2DConditionModel(**UNET_CONFIGS["sdxl"])),
            "vae": on_device(setting, lambda: AutoencoderKL(**VAE, sample_size=1024, force_upcast=True)),
            "text_encoder": on_device(setting, lambda: CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT))),
            "text_encoder_2": on_device(setting, lambda: CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_BIGG_TEXT))),
            "tokenizer": tokenizer,
            "tokenizer_2": copy.deepcopy(tokenizer),
            "image_encoder": on_device(setting, lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_H))),
        }
    parts["scheduler"] = tiny_scheduler()
    parts["feature_extractor"] = clip_image_processor()
    return parts


SDXL_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")


def face_models(setting: Setting) -> tuple[Any, Any]:
    """(dlib face analyzer, parser): a random-weight BiSeNet on the device at real size, landmarks when tiny."""
    from safetensors.torch import save_file

    from idportrait.faces import get_face_parser
    from idportrait.faces.analyzer import FaceAnalyzer
    from idportrait.faces.bisenet import BiSeNet
    from idportrait.faces.dlib_backend import DlibBackend

    analyzer = FaceAnalyzer("dlib:hog", DlibBackend("hog", setting.landmarks))
    if setting.size == "tiny":
        return analyzer, get_face_parser("landmarks")
    weights = setting.tmp / "bisenet.safetensors"
    if not weights.is_file():
        torch.manual_seed(0)
        save_file({k: v.contiguous() for k, v in BiSeNet().state_dict().items()}, str(weights))
    return analyzer, get_face_parser("bisenet", weights=str(weights), device=setting.device)


def random_accelerator_lora(unet: torch.nn.Module, path: Path, rank: int = 64) -> Path:
    """A diffusers-layout LoRA (``unet.<module>.lora_A/B.weight``) on every attention and feed-forward layer."""
    from safetensors.torch import save_file

    targets = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
    state = {}
    for name, module in unet.named_modules():
        if name.endswith(targets) and isinstance(module, torch.nn.Linear) and "processor" not in name:
            state[f"unet.{name}.lora_A.weight"] = torch.randn(rank, module.in_features) / module.in_features**0.5
            state[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, rank) * 0.01
    save_file(state, str(path))
    return path


# ---------------------------------------------------------------------------------------------- rows
def build_method(setting: Setting, name: str, accelerator: str | None, fused: bool, offload: bool) -> tuple:
    """(method, call options) for one row: ``name`` in plain-sd15, plain-sdxl, consistentid-sd15,
    consistentid-sdxl, instantid, ipadapter-faceid."""
    from diffusers import ControlNetModel, StableDiffusionPipeline, StableDiffusionXLPipeline

    from idportrait.adapters.consistentid.attention import fuse_lora
    from idportrait.methods.base import apply_speed_options
    from idportrait.methods.consistentid import ConsistentIDMethod
    from idportrait.methods.instantid import InstantIDMethod
    from idportrait.methods.ipadapter_faceid import IPAdapterFaceIDMethod
    from idportrait.methods.plain_sd import PlainSDMethod
    from idportrait.pipelines.consistentid_sd15 import ConsistentIDPipeline
    from idportrait.pipelines.consistentid_sdxl import ConsistentIDSDXLPipeline
    from idportrait.pipelines.instantid_sdxl import InstantIDPipeline
    from idportrait.tiny import TINY_ADAPTER, random_consistentid, random_faceid_checkpoint, random_instantid_checkpoint

    sdxl = name in ("plain-sdxl", "consistentid-sdxl", "instantid")
    parts = sdxl_parts(setting) if sdxl else sd15_parts(setting)
    real = setting.size == "real"
    cross = parts["unet"].config.cross_attention_dim
    clip_dim = parts["image_encoder"].config.hidden_size
    if name.startswith("plain"):
        parts.pop("image_encoder")
        cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
        extra = {} if sdxl else {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls(**parts, **extra)
        method = PlainSDMethod(pipe)
    elif name.startswith("consistentid"):
        adapter = {"cross_attention_dim": cross, "clip_dim": clip_dim, "id_dim": ID_DIM, "rank": 128}
        adapter = dict(adapter, full_size=True) if real else dict(TINY_ADAPTER, cross_attention_dim=cross)
        unet = parts["unet"]
        facial_encoder, image_proj, _ = random_consistentid(unet, **adapter)
        unet.to(setting.device, setting.dtype)
        cls = ConsistentIDSDXLPipeline if sdxl else ConsistentIDPipeline
        extra = {} if sdxl else {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls(**parts, **extra)
        pipe.set_consistentid(facial_encoder, image_proj, {"image_proj_shortcut": sdxl, "id_dim": ID_DIM})
        analyzer, parser = face_models(setting)
        method = ConsistentIDMethod(pipe, analyzer, parser)
        time_module(setting, pipe.image_proj, "enc")
        for step in ("encode_regions", "fuse"):
            time_method(setting, pipe.facial_encoder, step, "enc")
    elif name == "instantid":
        parts.pop("image_encoder")
        torch.manual_seed(0)
        with torch.device(setting.device):
            shrink = {} if real else {"conditioning_embedding_out_channels": (16, 32)}  # the tiny VAE's factor 2
            controlnet = ControlNetModel.from_unet(parts["unet"], **shrink).to(setting.dtype).eval()
        pipe = InstantIDPipeline(**parts, controlnet=controlnet)
        dims = {"dim": 1280, "heads": 20, "embedding_dim": ID_DIM} if real else {"embedding_dim": ID_DIM}
        pipe.load_ip_adapter(random_instantid_checkpoint(parts["unet"], **dims), subfolder="", weight_name="",
                             image_encoder_folder=None, low_cpu_mem_usage=False)  # fmt: skip
        analyzer = face_models(setting)[0]
        method = InstantIDMethod(pipe, detect=analyzer.detect, size=(setting.sdxl_pixels,) * 2)
    else:  # ipadapter-faceid: the PlusV2 variant (CLIP on the face crop + shortcut), LoRA rank 128
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, requires_safety_checker=False)
        state = random_faceid_checkpoint(parts["unet"], ID_DIM, clip_dim, heads=12 if real else 1,
                                         lora_rank=128 if real else 4)  # fmt: skip
        pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)
        analyzer = face_models(setting)[0]
        method = IPAdapterFaceIDMethod(pipe, detect=analyzer.detect, variant="faceid-plusv2")
    pipe.to(setting.device, setting.dtype)
    pipe.set_progress_bar_config(disable=True)
    weights = None
    if accelerator is not None:
        weights = random_accelerator_lora(pipe.unet, setting.tmp / f"{accelerator}-{name}.safetensors")
    recipe = apply_speed_options(pipe, accelerator, weights, compile=setting.compile)
    if fused and name.startswith("consistentid"):
        fuse_lora(pipe.unet)
    if offload:
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=setting.device)
    pixels = setting.sdxl_pixels if sdxl else setting.sd15_pixels
    options = {"num_inference_steps": setting.steps, "guidance_scale": 5.0, **recipe}
    if name == "ipadapter-faceid":
        method.steps, method.guidance_scale = options["num_inference_steps"], options["guidance_scale"]
    if name != "instantid":
        options |= {"height": pixels, "width": pixels}
    if name != "ipadapter-faceid":
        options["negative_prompt"] = [NEGATIVE]
    time_pipeline(setting, pipe)
    return method, options, pixels


def face_clocks(setting: Setting, method: Any) -> None:
    """Hook the face-analysis and parsing clocks onto the method's face models."""
    analyzer = getattr(method, "face_analyzer", None)
    if analyzer is not None:
        time_method(setting, analyzer, "largest_face", "face")
        time_method(setting, method.face_parser, "parse", "parse")
    elif hasattr(method, "detect"):
        method.detect = timed_call(setting, method.detect, "face")


def timed_call(setting: Setting, fn: Callable, stage: str) -> Callable:
    def timed(*args: Any, **kwargs: Any) -> Any:
        with stage_clock(setting, stage):
            return fn(*args, **kwargs)

    return timed


def measure(setting: Setting, name: str, accelerator: str | None = None, fused: bool = True, offload: bool = False,
            label: str | None = None) -> Row:  # fmt: skip
    """Build one row's method, warm it up, and time ``repeats`` uncached prepare + generate calls."""
    from idportrait.demo import demo_photo

    method, options, pixels = build_method(setting, name, accelerator, fused, offload)
    if setting.device.startswith("cuda"):  # peak of the timed calls: the resident models + what they allocate
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    face_clocks(setting, method)
    photo = demo_photo()

    def portrait() -> float:
        """One portrait of a new identity (preparation never cached); returns the seconds of ``generate``."""
        if hasattr(method, "_prepared"):
            method._prepared.clear()
        prepared = method.prepare(photo)
        sync(setting.device)
        start = time.perf_counter()
        method.generate(prepared, [PROMPT], [0], **options)
        sync(setting.device)
        return time.perf_counter() - start

    best: tuple[float, float, dict[str, float]] | None = None
    for call in range(max(setting.repeats, 0) + 1):
        setting.stage_times = {}
        sync(setting.device)
        start = time.perf_counter()
        generate = portrait()
        total = time.perf_counter() - start
        if (call > 0 or setting.repeats == 0) and (best is None or total < best[0]):
            stages = dict(setting.stage_times)
            best = (total, generate, stages | {"rest": total - sum(stages.values())})
    peak = torch.cuda.max_memory_allocated() / 2**30 if setting.device.startswith("cuda") else None
    base = "sdxl" if name in ("plain-sdxl", "consistentid-sdxl", "instantid") else "sd15"
    row = Row(label or name, base, options["num_inference_steps"], pixels, accelerator, best[2], best[0], best[1], peak)
    return row


def rows_to_run(setting: Setting) -> list[dict[str, Any]]:
    """The suite: (measure keywords) per row, plain bases first so every method row gets its ratio."""
    rows = [
        {"name": "plain-sd15"},
        {"name": "consistentid-sd15", "label": "consistentid-sd15 (LoRA unfused)", "fused": False},
        {"name": "consistentid-sd15"},
        {"name": "ipadapter-faceid"},
        {"name": "plain-sd15", "accelerator": "lcm", "label": "plain-sd15-lcm"},
        {"name": "consistentid-sd15", "accelerator": "lcm", "label": "consistentid-sd15-lcm"},
        {"name": "plain-sdxl"},
        {"name": "consistentid-sdxl"},
        {"name": "instantid"},
    ]
    if setting.device.startswith("cuda"):
        rows += [
            {"name": "consistentid-sd15", "offload": True, "label": "consistentid-sd15 --offload"},
            {"name": "consistentid-sdxl", "offload": True, "label": "consistentid-sdxl --offload"},
            {"name": "instantid", "offload": True, "label": "instantid --offload"},
        ]
    return rows


def add_ratios(rows: list[Row]) -> None:
    """ratio = generate seconds / those of the plain row with the same base, steps and accelerator."""
    plain = {(r.base, r.steps, r.accelerator): r.generate for r in rows if r.name.startswith("plain")}
    for r in rows:
        base = plain.get((r.base, r.steps, r.accelerator))
        r.ratio = r.generate / base if base else None


def print_table(rows: list[Row], setting: Setting) -> None:
    dtype = str(setting.dtype).removeprefix("torch.")
    print(f"device {setting.device} ({device_name(setting.device)}), {dtype}, {setting.size} models, "
          f"1 image per call, identity preparation included and not cached")  # fmt: skip
    header = f"{'row':<34} {'steps':>5} {'px':>5} " + " ".join(f"{s:>7}" for s in STAGES)
    header += f" {'total s':>8} {'gen s':>7} {'ratio':>6} {'peak GB':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(row_line(r))


def row_line(r: Row) -> str:
    """One table line: stage seconds, total, generate, ratio and peak GB (``-`` where unknown)."""
    stages = " ".join(f"{r.stages.get(s, 0.0):>7.3f}" for s in STAGES)
    ratio = f"{r.ratio:>6.3f}" if r.ratio is not None else f"{'-':>6}"
    peak = f"{r.peak_gb:>8.2f}" if r.peak_gb is not None else f"{'-':>8}"
    return f"{r.name:<34} {r.steps:>5} {r.pixels:>5} {stages} {r.total:>8.3f} {r.generate:>7.3f} {ratio} {peak}"


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{torch.get_num_threads()} CPU threads"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["real", "tiny"], default=None, help="default: real on CUDA, tiny on CPU")
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--dtype", default=None, help="float16 / bfloat16 / float32 (default: fp16 CUDA, fp32 CPU)")
    parser.add_argument("--steps", type=int, default=None, help="non-accelerated steps (default: 30 real, 2 tiny)")
    parser.add_argument("--sd15-pixels", type=int, default=None, help="default: 512 real, 64 tiny")
    parser.add_argument("--sdxl-pixels", type=int, default=None, help="default: 1024 real, 64 tiny")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row after a warm-up (0: first call)")
    parser.add_argument("--rows", nargs="*", default=None, help="only the rows with these labels")
    parser.add_argument("--compile", action="store_true", help="torch.compile every UNet (channels_last)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--landmarks", choices=["68", "5"], default="68", help="dlib landmark model (5: 9 MB file)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    size = args.size or ("real" if device.startswith("cuda") else "tiny")
    dtype = getattr(torch, args.dtype or ("float16" if device.startswith("cuda") else "float32"))
    real = size == "real"
    with tempfile.TemporaryDirectory() as tmp:
        setting = Setting(
            size=size,
            device=device,
            dtype=dtype,
            sd15_pixels=args.sd15_pixels or (512 if real else 64),
            sdxl_pixels=args.sdxl_pixels or (1024 if real else 64),
            steps=args.steps or (30 if real else 2),
            repeats=args.repeats,
            tmp=Path(tmp),
            compile=args.compile,
            landmarks=args.landmarks,
        )
        rows = []
        for spec in rows_to_run(setting):
            label = spec.get("label", spec["name"])
            if args.rows is None or label in args.rows:
                try:
                    rows.append(measure(setting, **spec))
                    print(f"  measured {row_line(rows[-1])}", flush=True)
                except Exception:  # one broken row must not cost the other rows of a one-call run
                    print(f"  FAILED {label}:\n{traceback.format_exc()}", flush=True)
                gc.collect()  # the row's models go before the next row is built
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    add_ratios(rows)
    print_table(rows, setting)
    return rows


if __name__ == "__main__":
    main()
