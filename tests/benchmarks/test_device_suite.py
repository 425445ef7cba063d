"""benchmarks/device_suite.py runs its GPU code path on the CPU at tiny size (every row, one cold call each)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parents[2] / "benchmarks" / "device_suite.py"


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.syspath_prepend(str(SUITE.parent))  # as `python benchmarks/device_suite.py` would: its sibling modules
    spec = importlib.util.spec_from_file_location("device_suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_suite", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


TINY = ["--size", "tiny", "--device", "cpu", "--repeats", "0", "--steps", "1", "--sd15-pixels", "32",
        "--sdxl-pixels", "32", "--deadline", "1e9"]  # fmt: skip


@pytest.mark.slow
def test_device_suite_smoke_run_on_tiny_models(suite, capsys, one_torch_thread):
    rows = suite.main([*TINY, "--eager"])
    table = capsys.readouterr().out
    assert "FAILED" not in table
    assert [r.name for r in rows] == [
        "plain-sd15",
        "consistentid-sd15",
        "consistentid-sd15 (cached id)",
        "plain-sd15-lcm",
        "consistentid-sd15-lcm",
        "consistentid-sd15-lcm (cached id)",
        "ipadapter-faceid",
        "plain-sdxl",
        "consistentid-sdxl",
        "instantid",
        "consistentid-sd15 (LoRA unfused)",
    ]  # fmt: skip (the offload rows need CUDA)
    by_name = {r.name: r for r in rows}
    assert by_name["plain-sd15"].ratio == 1.0 and by_name["consistentid-sd15"].ratio > 0
    assert by_name["consistentid-sd15-lcm"].steps == 4 and by_name["consistentid-sd15"].steps == 1
    for r in rows:
        assert 0 < r.generate <= r.total
        assert r.stages["unet"] > 0 and r.stages["dec"] > 0
        assert abs(sum(r.stages.values()) - r.total) < 1e-6  # the stages, rest included, add up to the total
    fresh, cached = by_name["consistentid-sd15"], by_name["consistentid-sd15 (cached id)"]
    assert fresh.stages["face"] > 0 and fresh.stages["parse"] > 0 and 0 < fresh.prep < fresh.total
    assert cached.stages.get("face", 0) == 0 and cached.prep == 0 and cached.total == cached.generate
    assert by_name["instantid"].stages["face"] > 0  # the torch face backend on the antelopev2 stand-in
    assert "row" in table and "peak GB" in table and "first s" in table
    assert "goals (set for an H100 in float16" in table and "missed" not in table.split("goals")[0]
    assert "InstantID 1024 px, 30 steps" in table and "not measured" in table  # no compiled row in this run


@pytest.mark.slow
def test_compiled_rows_report_first_call_and_ratios(suite, capsys, monkeypatch, one_torch_thread):
    """The compiled rows' code path, traced by dynamo only (inductor's CPU build would take minutes)."""
    import torch

    compile_module = torch.nn.Module.compile
    modes = []

    def traced_only(module, *, mode=None, dynamic=None):
        modes.append(mode)
        compile_module(module, backend="eager", dynamic=dynamic)

    monkeypatch.setattr(torch.nn.Module, "compile", traced_only)
    rows = suite.main([*TINY, "--rows", "plain-sd15", "consistentid-sd15", "--faces", "dlib"])
    table = capsys.readouterr().out
    assert "FAILED" not in table
    names = [r.name for r in rows]
    assert names[3:] == ["plain-sd15 [reduce-overhead]", "consistentid-sd15 [reduce-overhead]",
                         "consistentid-sd15 [reduce-overhead] (cached id)"]  # fmt: skip
    assert set(modes) == {"reduce-overhead"}
    compiled = {r.name: r for r in rows}["consistentid-sd15 [reduce-overhead]"]
    assert compiled.ratio is not None and compiled.first is not None and compiled.compile == "reduce-overhead"
    goals = table.split("goals (set for an H100")[1]
    assert "consistentid-sd15 compiled vs plain" in goals and "(consistentid-sd15 [reduce-overhead])" in goals
