"""Every speed table of one release in one call: s/image per stage, ratio to the plain base, peak memory, goals.

    .venv/bin/python benchmarks/device_suite.py                       # CUDA: real sizes, fp16 (one call, < 8 min)
    .venv/bin/python benchmarks/device_suite.py --size tiny           # CPU smoke run: the same code, tiny models
    .venv/bin/python benchmarks/device_suite.py --size real --device cpu --rows consistentid-sd15-lcm --repeats 0

Models are built in code with random weights at the real sizes and layouts (SD1.5 + CLIP-ViT-H + the full
ConsistentID adapter; SDXL + ConsistentID-SDXL; SDXL + IdentityNet + InstantID's adapter; SD1.5 + IP-Adapter-
FaceID-PlusV2), directly on the device; nothing is downloaded (the cost does not depend on the weights). Each
row builds its own pipeline so the peak memory is that row's alone.

Identity preparation runs where the models run (``--faces torch``, the default): insightface-pack stand-ins of the
real architectures (benchmarks/face_nets.py: an SCRFD-10G-like detector and IResNet-50, IResNet-100 for InstantID's
antelopev2, exported to ONNX with random weights) through the torch backend (`insightface-torch`), a random-weight
BiSeNet, and the region images and CLIP preprocessing on the device. ``--faces dlib`` runs the offline dlib analysis
on the CPU instead (the earlier tables).

One image per call, one fresh identity per timed call (identity preparation included): stages face = face
analysis, parse = face parsing, enc = text/image encoders and ConsistentID's projector and FacialEncoder, unet = UNet
(+ IdentityNet) over all steps, dec = VAE decode, rest = everything else (scheduler, image pre/post-processing,
InstantID's Resampler...); prep = the method's ``prepare`` (detect, embed, parse, region CLIP); total = wall time
of prepare + generate; gen = the ``generate`` call alone (ConsistentID's ID tokens included); first = the first,
cold call of the row (compilation and CUDA-graph capture included for compiled rows). Rows ending in "(cached id)"
reuse the prepared identity (a returning user): total = gen. ratio = gen / gen of the plain row with the same
base, steps, accelerator and compile mode (the ID conditioning overhead). Rows marked ``[reduce-overhead]`` run
the UNet (and ControlNet) through ``torch.compile(mode="reduce-overhead")``: CUDA graphs, static shapes.
Timings are the fastest of ``--repeats`` calls after the first (``--repeats 0``: the first, cold call only). CUDA
is synchronised around every stage; peak = ``torch.cuda.max_memory_allocated`` over the row's calls (the first
included: a compiled row's peak holds its compilation). Rows run in order of importance and
print as they are measured; no new row starts after ``--deadline`` seconds. The goals of the speed round are
checked at the end: met, missed, or not measured.
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

import numpy as np
import torch
from real_sizes import CLIP_BIGG_TEXT, CLIP_L_TEXT, CLIP_VIT_H, VAE

from idportrait.adapters.consistentid.keymap import UNET_CONFIGS

FACE_PACKS = {"consistentid": "buffalo_l", "ipadapter-faceid": "buffalo_l", "instantid": "antelopev2"}
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
    prep: float = 0.0
    first: float | None = None
    compile: str | None = None
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
    compile: str | None = None
    landmarks: str = "68"
    faces: str = "torch"
    stage_times: dict[str, float] = field(default_factory=dict)

    @property
    def id_dim(self) -> int:
        """Face embedding size: ArcFace's 512 (torch faces) or dlib's 128."""
        return 512 if self.faces == "torch" else 128


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
    """Count every forward of ``module`` in ``stage`` (hooks; nested timed modules are not double counted).

    The hooks run outside compiled code (``torch.compiler.disable``): a compiled module's body stays one graph.
    """
    started: list[float] = []

    @torch.compiler.disable
    def before(*_: Any) -> None:
        sync(setting.device)
        started.append(time.perf_counter())

    @torch.compiler.disable
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


def face_models(setting: Setting, method: str) -> tuple[Any, Any]:
    """(face analyzer, parser) of a method's rows: the torch insightface backend on a random pack stand-in (or dlib on
    the CPU), and a random-weight BiSeNet on the device at real size (landmark parsing for tiny dlib runs)."""
    from safetensors.torch import save_file

    from idportrait.faces import get_face_parser
    from idportrait.faces.analyzer import FaceAnalyzer
    from idportrait.faces.bisenet import BiSeNet

    if setting.faces == "torch":
        from face_nets import write_random_pack

        from idportrait.demo import demo_photo
        from idportrait.faces.insightface_torch import InsightFaceTorchBackend

        pack = FACE_PACKS[method]
        folder = setting.tmp / "packs" / pack
        if not folder.is_dir():
            write_random_pack(folder, pack, photo_rgb=np.asarray(demo_photo()), tiny=setting.size == "tiny", passing=1)
        backend = InsightFaceTorchBackend(pack, folder, device=setting.device, cache_dir=setting.tmp / "onnx")
        analyzer = FaceAnalyzer(f"insightface-torch:{pack}", backend)
    else:
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
def build_method(
    setting: Setting, name: str, accelerator: str | None, fused: bool, offload: bool, compile: str | None
) -> tuple:
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
        adapter = {"cross_attention_dim": cross, "clip_dim": clip_dim, "id_dim": setting.id_dim, "rank": 128}
        adapter = (
            dict(adapter, full_size=True)
            if real
            else dict(TINY_ADAPTER, cross_attention_dim=cross, id_dim=setting.id_dim)
        )
        unet = parts["unet"]
        facial_encoder, image_proj, _ = random_consistentid(unet, **adapter)
        unet.to(setting.device, setting.dtype)
        cls = ConsistentIDSDXLPipeline if sdxl else ConsistentIDPipeline
        extra = {} if sdxl else {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls(**parts, **extra)
        pipe.set_consistentid(facial_encoder, image_proj, {"image_proj_shortcut": sdxl, "id_dim": setting.id_dim})
        analyzer, parser = face_models(setting, "consistentid")
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
        dims = (
            {"dim": 1280, "heads": 20, "embedding_dim": setting.id_dim} if real else {"embedding_dim": setting.id_dim}
        )
        pipe.load_ip_adapter(random_instantid_checkpoint(parts["unet"], **dims), subfolder="", weight_name="",
                             image_encoder_folder=None, low_cpu_mem_usage=False)  # fmt: skip
        analyzer = face_models(setting, "instantid")[0]
        method = InstantIDMethod(pipe, detect=analyzer.detect, size=(setting.sdxl_pixels,) * 2)
    else:  # ipadapter-faceid: the PlusV2 variant (CLIP on the face crop + shortcut), LoRA rank 128
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, requires_safety_checker=False)
        state = random_faceid_checkpoint(parts["unet"], setting.id_dim, clip_dim, heads=12 if real else 1,
                                         lora_rank=128 if real else 4)  # fmt: skip
        pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)
        analyzer = face_models(setting, "ipadapter-faceid")[0]
        method = IPAdapterFaceIDMethod(pipe, detect=analyzer.detect, variant="faceid-plusv2")
    pipe.to(setting.device, setting.dtype)
    pipe.set_progress_bar_config(disable=True)
    weights = None
    if accelerator is not None:
        weights = random_accelerator_lora(pipe.unet, setting.tmp / f"{accelerator}-{name}.safetensors")
    recipe = apply_speed_options(pipe, accelerator, weights, compile=compile or setting.compile or False)
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
            compile: str | None = None, cached: bool = False, label: str | None = None) -> list[Row]:  # fmt: skip
    """Build one row's method; time its first call, then ``repeats`` new-identity calls (and, with ``cached``,
    ``repeats`` calls that reuse the prepared identity: a second row)."""
    from idportrait.demo import demo_photo

    method, options, pixels = build_method(setting, name, accelerator, fused, offload, compile)
    if setting.device.startswith("cuda"):  # peak of the timed calls: the resident models + what they allocate
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    face_clocks(setting, method)
    photo = demo_photo()

    def portrait(prepared: Any = None) -> tuple[float, float, float, dict[str, float], Any]:
        """One portrait: (total, prepare, generate seconds, stages, prepared); a new identity unless ``prepared``."""
        setting.stage_times = {}
        sync(setting.device)
        start = time.perf_counter()
        if prepared is None:
            if hasattr(method, "_prepared"):
                method._prepared.clear()
            prepared = method.prepare(photo)
        sync(setting.device)
        prep = time.perf_counter() - start
        method.generate(prepared, [PROMPT], [0], **options)
        sync(setting.device)
        total = time.perf_counter() - start
        stages = dict(setting.stage_times)
        return total, prep, total - prep, stages | {"rest": total - sum(stages.values())}, prepared

    def best(calls: list[tuple]) -> tuple:
        return min(calls, key=lambda c: c[0])

    first = portrait()
    fresh = best([portrait() for _ in range(setting.repeats)]) if setting.repeats > 0 else first
    peak = torch.cuda.max_memory_allocated() / 2**30 if setting.device.startswith("cuda") else None
    base = "sdxl" if name in ("plain-sdxl", "consistentid-sdxl", "instantid") else "sd15"
    mode = compile or setting.compile
    label = (label or name) + (f" [{mode}]" if mode else "")
    common = {"base": base, "steps": options["num_inference_steps"], "pixels": pixels, "accelerator": accelerator,
              "peak_gb": peak, "compile": mode}  # fmt: skip
    total, prep, generate, stages, prepared = fresh
    rows = [Row(label, stages=stages, total=total, generate=generate, prep=prep, first=first[0], **common)]
    if cached:
        portrait(prepared)  # the identity's tokens are computed once here, then cached
        total, _, _, stages, _ = best([portrait(prepared) for _ in range(max(setting.repeats, 1))])
        rows.append(Row(f"{label} (cached id)", stages=stages, total=total, generate=total, **common))
    return rows


RO = "reduce-overhead"


def rows_to_run(setting: Setting) -> list[dict[str, Any]]:
    """The suite in order of importance: every method eager (with InstantID's offload row), then compiled (SD1.5
    first), then the other offload rows and the unfused LoRA; plain bases before their methods for the ratios."""
    cuda = setting.device.startswith("cuda")
    sd15 = [
        {"name": "plain-sd15"},
        {"name": "consistentid-sd15", "cached": True},
        {"name": "plain-sd15", "accelerator": "lcm", "label": "plain-sd15-lcm"},
        {"name": "consistentid-sd15", "accelerator": "lcm", "label": "consistentid-sd15-lcm", "cached": True},
    ]
    others = [
        {"name": "ipadapter-faceid"},
        {"name": "plain-sdxl"},
        {"name": "consistentid-sdxl"},
        {"name": "instantid"},
    ]
    rows = sd15 + others
    if cuda:
        rows.append({"name": "instantid", "offload": True, "label": "instantid --offload"})
    rows += [dict(spec, compile=RO) for spec in sd15 + others]
    if cuda:
        rows += [
            {"name": "consistentid-sdxl", "offload": True, "label": "consistentid-sdxl --offload"},
            {"name": "consistentid-sd15", "offload": True, "label": "consistentid-sd15 --offload"},
        ]
    rows.append({"name": "consistentid-sd15", "label": "consistentid-sd15 (LoRA unfused)", "fused": False})
    return rows


def add_ratios(rows: list[Row]) -> None:
    """ratio = generate seconds / those of the plain row with the same base, steps, accelerator and compile mode."""
    plain = {(r.base, r.steps, r.accelerator, r.compile): r.generate for r in rows if r.name.startswith("plain")}
    for r in rows:
        base = plain.get((r.base, r.steps, r.accelerator, r.compile))
        r.ratio = r.generate / base if base else None


@dataclass
class Goal:
    """One goal of the speed round: the rows it reads, what it compares, and the limit."""

    text: str
    rows: tuple[str, ...]
    value: Callable[[Row], float | None]
    limit: float
    unit: str = "s"


def goals() -> list[Goal]:
    """The issue's goals (H100, float16); a goal over several rows takes the best of them (eager or compiled)."""
    cid, lcm = "consistentid-sd15", "consistentid-sd15-lcm"
    total = lambda r: r.total  # noqa: E731
    out = [
        Goal("ConsistentID SD1.5 512 px, 30 steps, new photo", (cid, f"{cid} [{RO}]"), total, 0.6),
        Goal("ConsistentID SD1.5 512 px, 4 LCM steps, new photo", (lcm, f"{lcm} [{RO}]"), total, 0.2),
        Goal(
            "ConsistentID SD1.5, 30 steps, cached identity",
            (f"{cid} (cached id)", f"{cid} [{RO}] (cached id)"),
            total,
            0.5,
        ),
        Goal(
            "ConsistentID SD1.5, 4 LCM steps, cached identity",
            (f"{lcm} (cached id)", f"{lcm} [{RO}] (cached id)"),
            total,
            0.12,
        ),
        Goal("per-identity preparation on the device", (cid, f"{cid} [{RO}]"), lambda r: r.prep, 0.06),
        Goal("ConsistentID SDXL 1024 px, 30 steps", ("consistentid-sdxl", f"consistentid-sdxl [{RO}]"), total, 2.0),
        Goal("InstantID 1024 px, 30 steps", ("instantid", f"instantid [{RO}]"), total, 3.0),
    ]
    for method in ("consistentid-sd15", "consistentid-sd15-lcm", "ipadapter-faceid", "consistentid-sdxl", "instantid"):
        out.append(Goal(f"{method} eager vs plain", (method,), lambda r: r.ratio, 1.10, "x"))
        out.append(Goal(f"{method} compiled vs plain", (f"{method} [{RO}]",), lambda r: r.ratio, 1.03, "x"))
    peak = lambda r: r.peak_gb  # noqa: E731
    out.append(Goal("peak memory SD1.5 (ConsistentID)", (cid, f"{cid} [{RO}]"), peak, 5.0, "GB"))
    out.append(Goal("peak memory SDXL (ConsistentID-SDXL)", ("consistentid-sdxl",), peak, 12.0, "GB"))
    out.append(Goal("peak memory InstantID", ("instantid",), peak, 12.0, "GB"))
    return out


def goal_lines(rows: list[Row]) -> list[str]:
    """One line per goal: the best measured value, its row, and met / missed / not measured."""
    by_name = {r.name: r for r in rows}
    lines = []
    for goal in goals():
        found = [(v, name) for name in goal.rows if name in by_name and (v := goal.value(by_name[name])) is not None]
        if not found:
            lines.append(f"{goal.text:<52} {'-':>9}  <= {goal.limit:<6g} {goal.unit:<3} not measured")
            continue
        value, name = min(found)
        verdict = "met" if value <= goal.limit else "missed"
        lines.append(f"{goal.text:<52} {value:>9.3f}  <= {goal.limit:<6g} {goal.unit:<3} {verdict:<7} ({name})")
    return lines


COLUMNS = (*STAGES, "prep s", "total s", "gen s", "first s", "ratio", "peak GB")


def print_table(rows: list[Row], setting: Setting) -> None:
    dtype = str(setting.dtype).removeprefix("torch.")
    print(f"device {setting.device} ({device_name(setting.device)}), {dtype}, {setting.size} models, {setting.faces} "
          f"face analysis, 1 image per call, identity preparation included unless the row says cached id")  # fmt: skip
    header = f"{'row':<46} {'steps':>5} {'px':>5} " + " ".join(f"{c:>7}" for c in COLUMNS)
    print(header)
    print("-" * len(header))
    for r in rows:
        print(row_line(r))
    print()
    print(f"goals (set for an H100 in float16; this run: {device_name(setting.device)}, {dtype})")
    for line in goal_lines(rows):
        print(line)


def row_line(r: Row) -> str:
    """One table line: stage seconds, prep, total, generate, first call, ratio and peak GB (``-`` where unknown)."""

    def cell(value: float | None, digits: int = 3) -> str:
        return f"{value:>7.{digits}f}" if value is not None else f"{'-':>7}"

    stages = " ".join(cell(r.stages.get(s, 0.0)) for s in STAGES)
    tail = " ".join([cell(r.prep), cell(r.total), cell(r.generate), cell(r.first), cell(r.ratio), cell(r.peak_gb, 2)])
    return f"{r.name:<46} {r.steps:>5} {r.pixels:>5} {stages} {tail}"


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
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row after the first (0: first only)")
    parser.add_argument("--rows", nargs="*", default=None, help="only the rows with these labels (without [mode])")
    parser.add_argument("--eager", action="store_true", help="skip the compiled rows")
    parser.add_argument("--compile", choices=["default", RO, "max-autotune"], default=None,
                        help="compile every row in this mode (the rows' own mode otherwise)")  # fmt: skip
    parser.add_argument("--faces", choices=["torch", "dlib"], default="torch", help="face analysis (see above)")
    parser.add_argument("--deadline", type=float, default=330.0, help="seconds after which no new row starts")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--landmarks", choices=["68", "5"], default="68", help="dlib landmark model (5: 9 MB file)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    size = args.size or ("real" if device.startswith("cuda") else "tiny")
    dtype = getattr(torch, args.dtype or ("float16" if device.startswith("cuda") else "float32"))
    real = size == "real"
    started = time.perf_counter()
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
            faces=args.faces,
        )
        rows: list[Row] = []
        for spec in rows_to_run(setting):
            label = spec.get("label", spec["name"])
            if (args.rows is not None and label not in args.rows) or (args.eager and spec.get("compile")):
                continue
            if args.compile and spec.get("compile"):
                continue  # every row is compiled already
            if time.perf_counter() - started > args.deadline:
                print(f"  skipped {label} {spec.get('compile') or ''} (past the {args.deadline:.0f} s deadline)")
                continue
            try:
                for row in measure(setting, **spec):
                    rows.append(row)
                    print(f"  measured {row_line(row)}", flush=True)
            except Exception:  # one broken row must not cost the other rows of a one-call run
                print(f"  FAILED {label}:\n{traceback.format_exc()}", flush=True)
            gc.collect()  # the row's models go before the next row is built
            if device.startswith("cuda"):
                torch._dynamo.reset()
                torch.cuda.empty_cache()
    add_ratios(rows)
    print_table(rows, setting)
    print(f"suite wall time {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    main()
