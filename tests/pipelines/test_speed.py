"""Compile modes: the compiled ConsistentID pipeline gives the eager images, in one graph across the delayed merge.

The whole pipeline is traced by dynamo through `speed_up` (graph breaks, recompiles, AOT functionalisation) with the
``aot_eager`` backend, since inductor's C++ build of every UNet kernel takes minutes on 2 CPU cores; inductor's own
numerics in reduce-overhead mode are checked on one ConsistentID transformer block (self-, cross- and ID attention).
"""

from __future__ import annotations

import pytest
import torch

from idportrait.errors import UserError
from idportrait.pipelines.speed import COMPILE_MODES, check_compile_with_offload, resolve_compile_mode, speed_up


def test_compile_modes_are_checked():
    assert resolve_compile_mode(False) is None and resolve_compile_mode(None) is None
    assert resolve_compile_mode(True) == "default"
    assert [resolve_compile_mode(m) for m in COMPILE_MODES] == list(COMPILE_MODES)
    with pytest.raises(
        UserError, match="unknown compile mode 'cudagraphs'; use default, reduce-overhead, max-autotune"
    ):
        resolve_compile_mode("cudagraphs")
    check_compile_with_offload(True, offload=True)  # plain compile works with offloading
    with pytest.raises(UserError, match="reduce-overhead captures CUDA graphs and cannot run with --offload"):
        check_compile_with_offload("reduce-overhead", offload=True)


def test_compile_takes_the_unet_and_the_controlnet(monkeypatch):
    from types import SimpleNamespace

    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda m, **kw: compiled.append((type(m).__name__, kw)))
    pipe = SimpleNamespace(unet=torch.nn.Conv2d(4, 4, 1), controlnet=torch.nn.Conv2d(4, 4, 3), vae=None)
    speed_up(pipe, compile="max-autotune")
    assert compiled == [
        ("Conv2d", {"mode": "max-autotune", "dynamic": False}),
        ("Conv2d", {"mode": "max-autotune", "dynamic": False}),
    ]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in (pipe.unet, pipe.controlnet))
    compiled.clear()
    speed_up(SimpleNamespace(unet=torch.nn.Conv2d(4, 4, 1)), compile=True)
    assert compiled == [("Conv2d", {"mode": None, "dynamic": False})]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch and leaves no compiled code behind."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_pipeline_equals_eager_in_one_graph_across_the_merge(fresh_pipe, astronaut_inputs, monkeypatch):
    """3 steps with CFG: steps 0-1 use the text-only context, step 2 the merged one; one graph serves both."""
    from torch._dynamo.utils import counters

    def images() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        call = {"num_inference_steps": 3, "guidance_scale": 5.0, "height": 32, "width": 32, "output_type": "pt"}
        return fresh_pipe("a photo of a person", face_inputs=astronaut_inputs, generator=generator, **call).images

    eager = images()
    requested = []
    compile_module = torch.nn.Module.compile

    def traced_only(module, *, mode=None, dynamic=None):
        requested.append((type(module).__name__, mode, dynamic))
        compile_module(module, backend="aot_eager", dynamic=dynamic)

    monkeypatch.setattr(torch.nn.Module, "compile", traced_only)
    counters.clear()
    speed_up(fresh_pipe, compile="reduce-overhead")
    compiled = images()
    assert requested == [("UNet2DConditionModel", "reduce-overhead", False)]  # static shapes, CUDA graphs
    assert not counters["graph_break"], dict(counters["graph_break"])  # the ID branch keeps the graph whole
    assert counters["stats"]["unique_graphs"] == 1  # the merge switched contexts, not graphs
    assert (compiled - eager).abs().max() < 1e-5
    assert fresh_pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_inductor_reduce_overhead_block_equals_eager(fresh_pipe):
    """One transformer block with the ConsistentID processors, compiled by inductor as `speed_up` asks."""
    from torch._dynamo.utils import counters

    from idportrait.adapters.consistentid.attention import set_id_scale

    block = fresh_pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0]
    set_id_scale(fresh_pipe.unet, 0.8)
    torch.manual_seed(0)
    x = torch.randn(2, 64, block.attn1.to_q.in_features)
    contexts = [torch.randn(2, 81, block.attn2.to_k.in_features) for _ in range(2)]
    with torch.no_grad():
        eager = [block(x, encoder_hidden_states=c) for c in contexts]
        counters.clear()
        compiled = torch.compile(block, mode="reduce-overhead", dynamic=False, fullgraph=True)
        outs = [compiled(x, encoder_hidden_states=c).clone() for c in contexts]
    assert counters["stats"]["unique_graphs"] == 1
    for e, o in zip(eager, outs, strict=True):
        assert (o - e).abs().max() < 1e-5
    assert not torch.allclose(outs[0], outs[1])  # the second context went through the same graph, not the first's
