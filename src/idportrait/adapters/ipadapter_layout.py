"""The released IP-Adapter family layouts (FaceID, FaceID-Plus, InstantID share the ``ip_adapter`` part).

Released checkpoints are ``{"image_proj": {...}, "ip_adapter": {...}}``; ``ip_adapter`` indexes the UNet's
attention processors in registration order: odd (cross-attention) indices carry ``to_k_ip`` / ``to_v_ip``,
FaceID files add LoRA on every processor. These functions give each layout as key -> shape for a given UNet,
check a loaded dict against it strictly (`idportrait.tiny` fills them with random weights for tiny bases).
"""

from __future__ import annotations

from pathlib import Path

import torch

from idportrait.errors import CheckpointError

LORA_PARAMS = ("to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora")


def ip_adapter_layout(unet: torch.nn.Module, lora_rank: int | None) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released ``ip_adapter`` dict for ``unet`` (processor order = registration order).

    Odd indices (cross-attention) carry ``to_k_ip`` / ``to_v_ip`` [hidden, cross_dim]; with ``lora_rank``
    every processor carries ``{q,k,v,out}_lora.down`` [rank, in] and ``.up`` [out, rank].
    """
    layout: dict[str, tuple[int, ...]] = {}
    modules = dict(unet.named_modules())
    for i, name in enumerate(unet.attn_processors):
        attn = modules[name.removesuffix(".processor")]
        hidden, context = attn.to_q.in_features, attn.to_k.in_features
        if lora_rank:
            for param, (n_in, n_out) in zip(
                LORA_PARAMS, [(hidden, hidden), (context, hidden), (context, hidden), (hidden, hidden)], strict=True
            ):
                layout[f"{i}.{param}.down.weight"] = (lora_rank, n_in)
                layout[f"{i}.{param}.up.weight"] = (n_out, lora_rank)
        if name.endswith("attn2.processor"):
            layout[f"{i}.to_k_ip.weight"] = (hidden, context)
            layout[f"{i}.to_v_ip.weight"] = (hidden, context)
    return layout


def image_proj_layout(
    cross_dim: int, id_dim: int = 512, clip_dim: int | None = None, heads: int = 0, num_tokens: int = 4
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released ``image_proj``: MLPProjModel, or ProjPlusModel when ``clip_dim`` is set.

    MLP: ``proj.0`` [2*id, id], ``proj.2`` [tokens*cross, 2*id], ``norm`` [cross]. Plus adds the
    ``perceiver_resampler`` (depth 4, dim = cross, dim_head 64, ``heads`` (release: cross // 64), ff x4).
    """
    layout = {
        "proj.0.weight": (2 * id_dim, id_dim),
        "proj.0.bias": (2 * id_dim,),
        "proj.2.weight": (num_tokens * cross_dim, 2 * id_dim),
        "proj.2.bias": (num_tokens * cross_dim,),
        "norm.weight": (cross_dim,),
        "norm.bias": (cross_dim,),
    }
    if clip_dim is None:
        return layout
    inner, pr = 64 * heads, "perceiver_resampler."
    for name, n_in in (("proj_in", clip_dim), ("proj_out", cross_dim)):
        layout |= {f"{pr}{name}.weight": (cross_dim, n_in), f"{pr}{name}.bias": (cross_dim,)}
    layout |= {f"{pr}norm_out.weight": (cross_dim,), f"{pr}norm_out.bias": (cross_dim,)}
    for k in range(4):
        layer = f"{pr}layers.{k}."
        for norm in ("0.norm1", "0.norm2", "1.0"):
            layout |= {f"{layer}{norm}.weight": (cross_dim,), f"{layer}{norm}.bias": (cross_dim,)}
        layout |= {
            f"{layer}0.to_q.weight": (inner, cross_dim),
            f"{layer}0.to_kv.weight": (2 * inner, cross_dim),
            f"{layer}0.to_out.weight": (cross_dim, inner),
            f"{layer}1.1.weight": (4 * cross_dim, cross_dim),
            f"{layer}1.3.weight": (cross_dim, 4 * cross_dim),
        }
    return layout


def check_layout_group(state: dict, expected: dict[str, tuple[int, ...]], group: str, path: str | Path) -> None:
    """Raise `CheckpointError` naming missing/unexpected keys and wrong shapes of one checkpoint group."""
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{group} keys do not match: missing {missing[:4]} ({len(missing)}), "
            f"unexpected {unexpected[:4]} ({len(unexpected)})",
            path,
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise CheckpointError(f"{group}.{key} has shape {tuple(state[key].shape)}, expected {shape}", path)


def check_faceid_checkpoint(state: dict, unet: torch.nn.Module, path: str | Path) -> None:
    """Raise `CheckpointError` unless ``state`` is a released-layout FaceID checkpoint that fits ``unet``."""
    if not isinstance(state, dict) or set(state) != {"image_proj", "ip_adapter"}:
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"expected the dict keys ['image_proj', 'ip_adapter'], found {found}", path)
    ip, proj = state["ip_adapter"], state["image_proj"]
    down = ip.get("0.to_q_lora.down.weight")
    check_layout_group(ip, ip_adapter_layout(unet, None if down is None else down.shape[0]), "ip_adapter", path)
    if "proj.0.weight" not in proj:
        raise CheckpointError("image_proj is neither a FaceID nor a FaceID-Plus projection (no proj.0)", path)
    plus = "perceiver_resampler.proj_in.weight" in proj
    expected = image_proj_layout(
        cross_dim=unet.config.cross_attention_dim,
        id_dim=proj["proj.0.weight"].shape[1],
        clip_dim=proj["perceiver_resampler.proj_in.weight"].shape[1] if plus else None,
        heads=proj["perceiver_resampler.layers.0.0.to_q.weight"].shape[0] // 64 if plus else 0,
    )
    check_layout_group(proj, expected, "image_proj", path)
