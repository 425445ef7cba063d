"""ConsistentID checkpoint layouts: the release's nested dict and our flat safetensors, and how to tell them apart.

Release (``ConsistentID-v1.bin``, torch pickle)::

    {"FacialEncoder": {...}, "image_proj" | "image_proj_model": {...},
     "adapter_modules": {"0.to_q_lora.down.weight": ..., ...}}

Ours (safetensors): the same tensors under ``facial_encoder.`` / ``image_proj.`` / ``adapter.`` prefixes, with string
metadata (``format`` = ``FORMAT_NAME``, see ``checkpoint.py`` for the other fields).

Release layout in safetensors (what the release's SDXL loader reads for a ``.safetensors`` weight name): the names of
its training tooling and SDXL file as prefixes, ``FacialEncoder.`` / ``image_proj_model.`` / ``adapter_modules.``;
our writer adds the same metadata, which that loader ignores. Both safetensors layouts read back through `unflatten`.
"""

from __future__ import annotations

FORMAT_NAME = "idportrait.consistentid"
FORMAT_VERSION = "1"

GROUPS = ("facial_encoder", "image_proj", "adapter")
"""Our group names, which are also the safetensors key prefixes (``"{group}.{key}"``)."""

RELEASE_GROUPS: dict[str, str] = {
    "FacialEncoder": "facial_encoder",
    "image_proj": "image_proj",
    "image_proj_model": "image_proj",
    "adapter_modules": "adapter",
}
"""Release top-level key -> our group (``image_proj_model`` is the SDXL file's and the training tooling's name)."""

RELEASE_NAMES: dict[str, str] = {
    "facial_encoder": "FacialEncoder",
    "image_proj": "image_proj",
    "adapter": "adapter_modules",
}
"""Our group -> release top-level key of the SD1.5 file (in error messages)."""
RELEASE_EXPORT_NAMES = RELEASE_NAMES | {"image_proj": "image_proj_model"}
"""Our group -> the key prefix of the release layout we write (the SDXL file's and the training tooling's names)."""


ADAPTER_PARAMS = (
    "to_q_lora.down.weight",
    "to_q_lora.up.weight",
    "to_k_lora.down.weight",
    "to_k_lora.up.weight",
    "to_v_lora.down.weight",
    "to_v_lora.up.weight",
    "to_out_lora.down.weight",
    "to_out_lora.up.weight",
    "to_k_ip.weight",
    "to_v_ip.weight",
)
"""Parameters of one processor in ``adapter_modules`` (``"{i}.{param}"``); the last two for cross-attention only."""

CROSS_DIM_VARIANTS = {768: "sd15", 2048: "sdxl"}
"""Text-embedding (cross-attention) width -> base variant."""

UNET_CONFIGS: dict[str, dict] = {
    "sd15": {"cross_attention_dim": 768},
    "sdxl": {
        "block_out_channels": [320, 640, 1280],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "transformer_layers_per_block": [1, 2, 10],
        "attention_head_dim": [5, 10, 20],
        "cross_attention_dim": 2048,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,
        "use_linear_projection": True,
        "sample_size": 128,
    },
}
"""UNet2DConditionModel configs (as differences from the diffusers defaults) that the variant's adapter fits."""


def flatten(groups: dict[str, dict]) -> dict:
    """Groups -> flat ``{"{group}.{key}": tensor}`` (our safetensors layout)."""
    return {f"{g}.{k}": v for g in GROUPS for k, v in groups[g].items()}


def flatten_release(groups: dict[str, dict]) -> dict:
    """Groups -> flat ``{"{release name}.{key}": tensor}`` (the release layout in safetensors)."""
    return {f"{RELEASE_EXPORT_NAMES[g]}.{k}": v for g in GROUPS for k, v in groups[g].items()}


PREFIX_GROUPS = {g: g for g in GROUPS} | RELEASE_GROUPS
"""Every key prefix a safetensors checkpoint may use (ours and the release's) -> our group."""


def unflatten(flat: dict) -> tuple[dict[str, dict], list[str], list[str]]:
    """Flat safetensors dict (our prefixes or the release's) -> groups, keys without a known prefix, and the
    prefixes used (more than one for a group is an error for the caller to report)."""
    groups: dict[str, dict] = {g: {} for g in GROUPS}
    stray = []
    prefixes: list[str] = []
    for key, value in flat.items():
        prefix, _, rest = key.partition(".")
        if prefix in PREFIX_GROUPS and rest:
            groups[PREFIX_GROUPS[prefix]][rest] = value
            if prefix not in prefixes:
                prefixes.append(prefix)
        else:
            stray.append(key)
    return groups, stray, prefixes


def identify(state: dict) -> str | None:
    """Name the method a non-ConsistentID checkpoint belongs to, from its keys (None when unknown).

    ``state`` is the loaded object: a nested dict (pickles) or a flat ``{key: tensor}`` (safetensors).
    """
    top = set(state)
    if {"image_proj", "ip_adapter"} <= top:
        proj = state["image_proj"] if isinstance(state["image_proj"], dict) else {}
        if "latents" in proj and getattr(proj.get("proj_in.weight"), "shape", (0, 0))[1] == 512:
            return "an InstantID IP-Adapter checkpoint (image_proj = face-embedding Resampler, ip_adapter)"
        if any(k.startswith("perceiver_resampler.") for k in proj):
            return "an IP-Adapter-FaceID-Plus checkpoint (image_proj, ip_adapter)"
        if "proj.0.weight" in proj:
            return "an IP-Adapter-FaceID checkpoint (image_proj, ip_adapter)"
        return "an IP-Adapter checkpoint (image_proj, ip_adapter)"
    if {"id_encoder", "lora_weights"} <= top:
        return "a PhotoMaker checkpoint (id_encoder, lora_weights)"
    keys = [k for k in top if isinstance(k, str)]
    if any(k.startswith(("image_proj.", "ip_adapter.")) for k in keys):
        return "an IP-Adapter checkpoint in safetensors layout (image_proj.*, ip_adapter.*)"
    if any(k.startswith("controlnet_cond_embedding.") for k in keys):
        return "a ControlNet checkpoint (e.g. InstantID's IdentityNet)"
    if any("lora" in k.lower() for k in keys) and not any(k.startswith(GROUPS) for k in keys):
        return "a LoRA checkpoint (diffusers/kohya layout)"
    if any(k.startswith(("model.diffusion_model.", "down_blocks.", "conv_in.")) for k in keys):
        return "a Stable Diffusion model/UNet checkpoint"
    return None
