"""benchmarks/device_suite.py runs its GPU code path on the CPU at tiny size (every row, one cold call each)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parents[2] / "benchmarks" / "device_suite.py"


@pytest.mark.slow
def test_device_suite_smoke_run_on_tiny_models(capsys, monkeypatch, one_torch_thread):
    monkeypatch.syspath_prepend(str(SUITE.parent))  # as `python benchmarks/device_suite.py` would: its sibling modules
    spec = importlib.util.spec_from_file_location("device_suite", SUITE)
    suite = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_suite", suite)  # its dataclasses look their module up
    spec.loader.exec_module(suite)

    args = ["--size", "tiny", "--device", "cpu", "--repeats", "0", "--steps", "1"]
    rows = suite.main([*args, "--sd15-pixels", "32", "--sdxl-pixels", "32"])
    table = capsys.readouterr().out
    assert "FAILED" not in table
    assert [r.name for r in rows] == [
        "plain-sd15",
        "consistentid-sd15 (LoRA unfused)",
        "consistentid-sd15",
        "ipadapter-faceid",
        "plain-sd15-lcm",
        "consistentid-sd15-lcm",
        "plain-sdxl",
        "consistentid-sdxl",
        "instantid",
    ]  # fmt: skip (the offload rows need CUDA)
    by_name = {r.name: r for r in rows}
    assert by_name["plain-sd15"].ratio == 1.0 and by_name["consistentid-sd15"].ratio > 0
    assert by_name["consistentid-sd15-lcm"].steps == 4 and by_name["consistentid-sd15"].steps == 1
    for r in rows:
        assert 0 < r.generate < r.total
        assert r.stages["unet"] > 0 and r.stages["dec"] > 0
        assert abs(sum(r.stages.values()) - r.total) < 1e-6  # the stages, rest included, add up to the total
    assert by_name["consistentid-sd15"].stages["face"] > 0 and by_name["consistentid-sd15"].stages["parse"] > 0
    assert "row" in table and "peak GB" in table and "consistentid-sd15-lcm" in table
