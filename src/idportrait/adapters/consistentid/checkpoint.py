"""Load, check, build and save ConsistentID checkpoints (release ``.bin`` pickles or our safetensors).

    weights, metadata = load_consistentid_weights("ConsistentID-v1.bin")     # strict layout check
    facial_encoder, image_proj, config = build_consistentid(weights)
    processors = install_consistentid_processors(unet, rank=config["rank"], num_tokens=config["num_tokens"])
    load_adapter_modules(processors, weights)                                # strict, CheckpointError on mismatch
    convert_checkpoint("ConsistentID-v1.bin", "consistentid-sd15.safetensors")

Pickles are read only with ``torch.load(weights_only=True)``. Our safetensors metadata (all strings): ``format``,
``format_version``, ``variant`` (sd15/sdxl/custom), ``cross_attention_dim``, ``num_processors``, ``rank``,
``num_tokens``, ``image_proj_shortcut``, module sizes, ``pairing`` and ``pairing_description``, ``caption``, ``source``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from idportrait.adapters.consistentid.facial_encoder import FacialEncoder
from idportrait.adapters.consistentid.image_proj import ProjPlusModel
from idportrait.adapters.consistentid.keymap import (
    ADAPTER_PARAMS,
    CROSS_DIM_VARIANTS,
    FORMAT_NAME,
    FORMAT_VERSION,
    GROUPS,
    PREFIX_GROUPS,
    RELEASE_GROUPS,
    RELEASE_NAMES,
    UNET_CONFIGS,
    flatten,
    flatten_release,
    identify,
    unflatten,
)
from idportrait.adapters.consistentid.text import (
    FACIAL_CAPTION,
    RELEASE_FORMATS,
    RELEASE_PAIRING,
    SD15_FORMAT,
    TOKEN_PAIRING,
)
from idportrait.errors import CheckpointError
from idportrait.hub import first_line, read_torch_file

RELEASE_DIM_HEAD = 64
PAIRING_DESCRIPTIONS = {
    RELEASE_PAIRING: "k-th region (Face, Eye, Ear, Nose, Lip) -> k-th class token (face, ears, eyes, nose, mouth): "
    "the ears token receives the eye crop and the eyes token the ear crop",
    TOKEN_PAIRING: "each class token (face, ears, eyes, nose, mouth) receives its own region's crop",
}
_LIST_LIMIT = 8


@dataclass
class ConsistentIDConfig:
    """Architecture and conventions of one checkpoint (stored as safetensors metadata)."""

    variant: str
    cross_attention_dim: int
    clip_dim: int
    id_dim: int
    num_tokens: int
    rank: int
    num_processors: int
    image_proj_depth: int
    image_proj_heads: int
    image_proj_dim_head: int
    image_proj_shortcut: bool
    facial_latent_dim: int
    facial_depth: int
    facial_heads: int
    facial_dim_head: int
    pairing: str = RELEASE_PAIRING
    caption: str = FACIAL_CAPTION

    def to_metadata(self) -> dict[str, str]:
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
        meta.update({k: json.dumps(v) if isinstance(v, bool) else str(v) for k, v in asdict(self).items()})
        meta["pairing_description"] = PAIRING_DESCRIPTIONS.get(self.pairing, self.pairing)
        return meta


@dataclass
class ConsistentIDWeights:
    """The three state dicts of a checkpoint (release sub-dict names) and its config."""

    facial_encoder: dict[str, torch.Tensor]
    image_proj: dict[str, torch.Tensor]
    adapter_modules: dict[str, torch.Tensor]
    config: ConsistentIDConfig

    def groups(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"facial_encoder": self.facial_encoder, "image_proj": self.image_proj, "adapter": self.adapter_modules}


# ---------------------------------------------------------------------------------------------------- reading
def _fail(path: Path, message: str) -> CheckpointError:
    return CheckpointError(f"not a usable ConsistentID checkpoint: {message}", path)


def _short(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return f"[{shown}{', ...' if len(keys) > _LIST_LIMIT else ''}] ({len(keys)})"


def _read_pickle(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    state = read_torch_file(path, "ConsistentID checkpoint")
    return _release_groups(state, path), {}


def _release_groups(state: object, path: Path) -> dict[str, dict]:
    """Release nested dict -> our groups, naming wrong/missing top-level keys or another method's checkpoint."""
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        what = identify(state) if isinstance(state, dict) else None
        raise _fail(
            path, f"it is {what}" if what else "expected a dict of state dicts (FacialEncoder, image_proj, ...)"
        )
    top = list(state)
    unknown = [k for k in top if k not in RELEASE_GROUPS]
    if unknown:
        what = identify(state)
        if what:
            raise _fail(path, f"it is {what}")
        raise _fail(
            path,
            f"unexpected top-level keys {_short([str(k) for k in unknown])}; expected "
            "'FacialEncoder', 'image_proj' (or 'image_proj_model') and 'adapter_modules'",
        )
    if "image_proj" in state and "image_proj_model" in state:
        raise _fail(path, "both 'image_proj' and 'image_proj_model' present; expected one")
    groups = {RELEASE_GROUPS[k]: v for k, v in state.items()}
    missing = [RELEASE_NAMES[g] for g in GROUPS if g not in groups]
    if missing:
        raise _fail(path, f"missing top-level keys {missing} (has {top})")
    return groups


def _read_safetensors(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            flat = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError) as err:
        raise _fail(path, f"unreadable safetensors file ({err})") from None
    fmt = metadata.get("format")
    groups, stray, prefixes = unflatten(flat)
    if fmt not in (None, FORMAT_NAME) or stray:
        what = identify(flat)
        detail = f"it is {what}" if what else f"keys without a {'/'.join(GROUPS)} prefix {_short(stray)}"
        raise _fail(path, detail if fmt in (None, FORMAT_NAME) else f"format {fmt!r}; {detail}")
    for group in GROUPS:
        mixed = [p for p in prefixes if PREFIX_GROUPS[p] == group]
        if len(mixed) > 1:
            raise _fail(path, f"keys under both {' and '.join(repr(p) for p in mixed)}; expected one of them")
    missing = [g for g in GROUPS if not groups[g]]
    if missing:
        raise _fail(path, f"no tensors for {missing}")
    if metadata.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise _fail(path, f"format_version {metadata['format_version']!r}; this version reads {FORMAT_VERSION!r}")
    return groups, metadata


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := rx.fullmatch(k))})


def _heads(prefix: str, inner: int) -> dict[str, int]:
    """Release convention for a width without metadata: 64-d heads (one head when narrower)."""
    heads = max(inner // RELEASE_DIM_HEAD, 1)
    return {f"{prefix}_heads": heads, f"{prefix}_dim_head": inner // heads}


def _infer_config(groups: dict[str, dict], metadata: dict[str, str], path: Path) -> ConsistentIDConfig:
    """Config from metadata when present, else from tensor shapes with the release conventions (64-d heads)."""
    fe, ip, ad = groups["facial_encoder"], groups["image_proj"], groups["adapter"]
    needed = {
        "image_proj": [
            "norm.weight",
            "proj.0.weight",
            "proj.2.weight",
            "perceiver_resampler.proj_in.weight",
            "perceiver_resampler.layers.0.0.to_q.weight",
        ],
        "facial_encoder": [
            "visual_projection.latents",
            "visual_projection.proj_in.weight",
            "visual_projection.layers.0.0.to_q.weight",
        ],
        "adapter": ["0.to_q_lora.down.weight"],
    }
    for group, keys in needed.items():
        absent = [k for k in keys if k not in groups[group]]
        if absent:
            raise _fail(path, f"{RELEASE_NAMES[group]}: missing keys {_short(absent)}")
    cross = ip["norm.weight"].shape[0]
    variant = CROSS_DIM_VARIANTS.get(cross, "custom")
    stored = {f.name: metadata[f.name] for f in fields(ConsistentIDConfig) if f.name in metadata}
    inferred = {
        "variant": variant,
        "cross_attention_dim": cross,
        "clip_dim": ip["perceiver_resampler.proj_in.weight"].shape[1],
        "id_dim": ip["proj.0.weight"].shape[1],
        "num_tokens": ip["proj.2.weight"].shape[0] // cross,
        "rank": ad["0.to_q_lora.down.weight"].shape[0],
        "num_processors": _count(ad, r"(\d+)\..*"),
        "image_proj_depth": _count(ip, r"perceiver_resampler\.layers\.(\d+)\..*"),
        **_heads("image_proj", ip["perceiver_resampler.layers.0.0.to_q.weight"].shape[0]),
        "image_proj_shortcut": variant == "sdxl",
        "facial_latent_dim": fe["visual_projection.latents"].shape[-1],
        "facial_depth": _count(fe, r"visual_projection\.layers\.(\d+)\..*"),
        **_heads("facial", fe["visual_projection.layers.0.0.to_q.weight"].shape[0]),
        "caption": RELEASE_FORMATS.get(variant, SD15_FORMAT).caption,
    }
    values = {}
    for f in fields(ConsistentIDConfig):
        if f.name in stored:
            raw = stored[f.name]
            values[f.name] = json.loads(raw) if f.type == "bool" else int(raw) if f.type == "int" else raw
        elif f.name in inferred:
            values[f.name] = inferred[f.name]
    return ConsistentIDConfig(**values)


# ---------------------------------------------------------------------------------------------------- layout
def _modules(config: ConsistentIDConfig) -> tuple[FacialEncoder, ProjPlusModel]:
    facial_encoder = FacialEncoder(
        embed_dim=config.cross_attention_dim,
        clip_dim=config.clip_dim,
        latent_dim=config.facial_latent_dim,
        depth=config.facial_depth,
        dim_head=config.facial_dim_head,
        heads=config.facial_heads,
    )
    image_proj = ProjPlusModel(
        cross_attention_dim=config.cross_attention_dim,
        id_embeddings_dim=config.id_dim,
        clip_embeddings_dim=config.clip_dim,
        num_tokens=config.num_tokens,
        depth=config.image_proj_depth,
        dim_head=config.image_proj_dim_head,
        heads=config.image_proj_heads,
    )
    return facial_encoder, image_proj


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@functools.lru_cache(maxsize=4)
def release_adapter_layout(variant: str, rank: int) -> dict[str, tuple[int, ...]]:
    """``adapter_modules`` keys and shapes for the base UNet of ``variant`` (sd15, sdxl); built on the meta device."""
    from diffusers import UNet2DConditionModel

    from idportrait.adapters.consistentid.attention import install_consistentid_processors

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNET_CONFIGS[variant])
    return _shapes(install_consistentid_processors(unet, rank=rank))


def _check_group(name: str, state: dict, expected: dict[str, tuple[int, ...]]) -> list[str]:
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    if missing:
        problems.append(f"{name}: missing keys {_short(missing)}")
    if unexpected:
        problems.append(f"{name}: unexpected keys {_short(unexpected)}")
    if wrong:
        problems.append(f"{name}: shape mismatches {_short(wrong)}")
    return problems


def expected_layouts(
    config: ConsistentIDConfig, release_unet: bool = True
) -> dict[str, dict[str, tuple[int, ...]] | None]:
    """Keys (in module order) and shapes per group; the adapter's only for sd15/sdxl (else it depends on the UNet)
    and with ``release_unet`` (False: the adapter is checked against the UNet it is loaded into instead)."""
    with torch.device("meta"):
        facial_encoder, image_proj = _modules(config)
    known = release_unet and config.variant in UNET_CONFIGS
    adapter = release_adapter_layout(config.variant, config.rank) if known else None
    return {"facial_encoder": _shapes(facial_encoder), "image_proj": _shapes(image_proj), "adapter": adapter}


def check_layout(weights: ConsistentIDWeights, path: str | Path = "<weights>", release_unet: bool = True) -> None:
    """Raise `CheckpointError` listing every missing/unexpected key and shape mismatch, per sub-dict.

    ``release_unet=False`` leaves ``adapter_modules`` to `load_adapter_modules` (another UNet than the release's).
    """
    problems = []
    for group, expected in expected_layouts(weights.config, release_unet).items():
        if expected is not None:
            problems += _check_group(RELEASE_NAMES[group], weights.groups()[group], expected)
    if problems:
        raise _fail(Path(path), "; ".join(problems))


def _in_module_order(weights: ConsistentIDWeights, release_unet: bool = True) -> ConsistentIDWeights:
    """The same tensors with keys in ``state_dict()`` order (safetensors files store them sorted)."""
    layouts = expected_layouts(weights.config, release_unet)
    fe = {k: weights.facial_encoder[k] for k in layouts["facial_encoder"]}
    ip = {k: weights.image_proj[k] for k in layouts["image_proj"]}
    rank = {name: i for i, name in enumerate(ADAPTER_PARAMS)}
    adapter_keys = sorted(weights.adapter_modules, key=lambda k: (int(k.split(".")[0]), rank.get(k.partition(".")[2])))
    adapter = {k: weights.adapter_modules[k] for k in (layouts["adapter"] or adapter_keys)}
    return ConsistentIDWeights(fe, ip, adapter, weights.config)


def load_consistentid_weights(
    path: str | Path, check_release_unet: bool = True
) -> tuple[ConsistentIDWeights, dict[str, str]]:
    """Read a release ``.bin``/``.pt`` pickle or our ``.safetensors``, check its layout strictly.

    ``check_release_unet=False``: ``adapter_modules`` is not compared with the release base's UNet (see
    `check_layout`). Returns the weights (CPU tensors) and the metadata (ours as stored, or derived for a release
    pickle).
    Raises `CheckpointError` (naming the file) for unreadable files, other methods' checkpoints, wrong keys or shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("ConsistentID checkpoint not found", path)
    groups, metadata = _read_safetensors(path) if path.suffix == ".safetensors" else _read_pickle(path)
    weights = _checked_weights(groups, metadata, path, check_release_unet)
    return weights, {**weights.config.to_metadata(), "source": metadata.get("source", path.name)}


def weights_from_release_state(
    state: dict, name: str = "<state dict>", check_release_unet: bool = True
) -> ConsistentIDWeights:
    """In-memory release layout (``{"FacialEncoder": ..., "image_proj": ..., "adapter_modules": ...}``), checked."""
    return _checked_weights(_release_groups(state, Path(name)), {}, Path(name), check_release_unet)


def _checked_weights(
    groups: dict[str, dict], metadata: dict[str, str], path: Path, release_unet: bool = True
) -> ConsistentIDWeights:
    config = _infer_config(groups, metadata, path)
    weights = ConsistentIDWeights(groups["facial_encoder"], groups["image_proj"], groups["adapter"], config)
    check_layout(weights, path, release_unet)
    return _in_module_order(weights, release_unet)


# ---------------------------------------------------------------------------------------------------- building
def build_consistentid(
    weights: ConsistentIDWeights, path: str | Path = "<weights>"
) -> tuple[FacialEncoder, ProjPlusModel, dict]:
    """FacialEncoder and ID projector with the checkpoint's weights (strict), and the config as a dict.

    The modules are allocated without a random initialisation (the SDXL projector and FacialEncoder hold 342M
    parameters), then filled with the checkpoint's tensors.
    """
    with torch.device("meta"):
        facial_encoder, image_proj = _modules(weights.config)
    facial_encoder.to_empty(device="cpu")
    image_proj.to_empty(device="cpu")
    try:
        facial_encoder.load_state_dict(weights.facial_encoder, strict=True)
        image_proj.load_state_dict(weights.image_proj, strict=True)
    except RuntimeError as err:
        raise _fail(Path(path), first_line(err, 300)) from None
    return facial_encoder.eval(), image_proj.eval(), asdict(weights.config)


def load_adapter_modules(
    processors: nn.ModuleList, weights: ConsistentIDWeights, path: str | Path = "<weights>"
) -> None:
    """Strictly load ``adapter_modules`` into installed processors; `CheckpointError` listing mismatches."""
    expected = _shapes(processors)
    problems = _check_group("adapter_modules", weights.adapter_modules, expected)
    if problems:
        raise _fail(Path(path), "; ".join(problems) + f" (the UNet has {len(processors)} attention processors)")
    processors.load_state_dict(weights.adapter_modules, strict=True)


# ---------------------------------------------------------------------------------------------------- writing
def config_from_modules(
    facial_encoder: FacialEncoder,
    image_proj: ProjPlusModel,
    processors: nn.ModuleList,
    image_proj_shortcut: bool | None = None,
    pairing: str = RELEASE_PAIRING,
    caption: str | None = None,
) -> ConsistentIDConfig:
    """The config of built modules (``image_proj_shortcut`` and ``caption`` default to the variant's release:
    shortcut on for SDXL only, SDXL's "and a mouth." caption)."""
    proj_attn = image_proj.perceiver_resampler.layers[0][0]
    face_attn = facial_encoder.visual_projection.layers[0][0]
    cross = image_proj.cross_attention_dim
    variant = CROSS_DIM_VARIANTS.get(cross, "custom")
    return ConsistentIDConfig(
        variant=variant,
        cross_attention_dim=cross,
        clip_dim=image_proj.perceiver_resampler.proj_in.in_features,
        id_dim=image_proj.proj[0].in_features,
        num_tokens=image_proj.num_tokens,
        rank=processors[0].to_q_lora.down.out_features,
        num_processors=len(processors),
        image_proj_depth=len(image_proj.perceiver_resampler.layers),
        image_proj_heads=proj_attn.heads,
        image_proj_dim_head=proj_attn.dim_head,
        image_proj_shortcut=variant == "sdxl" if image_proj_shortcut is None else image_proj_shortcut,
        facial_latent_dim=facial_encoder.visual_projection.latents.shape[-1],
        facial_depth=len(facial_encoder.visual_projection.layers),
        facial_heads=face_attn.heads,
        facial_dim_head=face_attn.dim_head,
        pairing=pairing,
        caption=RELEASE_FORMATS.get(variant, SD15_FORMAT).caption if caption is None else caption,
    )


LAYOUTS = ("ours", "release")
"""Safetensors key layouts `save_consistentid_weights` writes (see `keymap`)."""


def save_consistentid_weights(
    path: str | Path, weights: ConsistentIDWeights, source: str = "", layout: str = "ours"
) -> Path:
    """Write a safetensors checkpoint with our metadata, atomically: our layout (``facial_encoder.*``,
    ``image_proj.*``, ``adapter.*``) or ``layout="release"`` (``FacialEncoder.*``, ``image_proj_model.*``,
    ``adapter_modules.*``: what the release's SDXL loader reads from a safetensors file)."""
    from idportrait.imageio import write_safetensors

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    path = Path(path)
    groups = weights.groups()
    flat = flatten(groups) if layout == "ours" else flatten_release(groups)
    tensors = {k: v.detach().cpu().contiguous() for k, v in flat.items()}
    metadata = weights.config.to_metadata()
    if source:
        metadata["source"] = source
    return write_safetensors(path, tensors, metadata)


def save_consistentid_safetensors(
    path: str | Path,
    facial_encoder: FacialEncoder,
    image_proj: ProjPlusModel,
    processors: nn.ModuleList,
    **config_overrides,
) -> Path:
    """Save built modules (e.g. after training) in our safetensors layout; see :func:`config_from_modules`."""
    weights = ConsistentIDWeights(
        facial_encoder=facial_encoder.state_dict(),
        image_proj=image_proj.state_dict(),
        adapter_modules=processors.state_dict(),
        config=config_from_modules(facial_encoder, image_proj, processors, **config_overrides),
    )
    return save_consistentid_weights(path, weights)


def convert_checkpoint(src: str | Path, dst: str | Path, layout: str = "ours") -> tuple[Path, dict[str, str]]:
    """Release ``.bin`` (or a safetensors checkpoint) -> safetensors at ``dst`` in our key layout or the release's
    (`save_consistentid_weights`); returns the path and its metadata."""
    weights, metadata = load_consistentid_weights(src)
    out = save_consistentid_weights(dst, weights, source=metadata["source"], layout=layout)
    return out, {**weights.config.to_metadata(), "source": metadata["source"]}
