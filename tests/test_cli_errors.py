"""Every subcommand given bad options or bad input: exit code 2, no traceback, and either typer's usage
block (usage errors) or exactly one line on stderr naming the problem. Every case fails before a model loads.

The cases run in two Python processes, each running ``idportrait.cli`` as ``python -m`` does, case after case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image

USAGE = "usage"
LINE = "line"

CASES: dict[str, tuple[list[str], str, str]] = {
    # id: (arguments, USAGE or LINE, text the message must contain); {photo} {bad_yaml} ...: paths (`case_argv`)
    "no-such-subcommand": (["paint"], USAGE, "No such command 'paint'"),
    "generate-steps-0": (["generate", "-p", "x", "--steps", "0"], USAGE, "Invalid value for '--steps'"),
    "generate-n-negative": (["generate", "-p", "x", "--n", "-1"], USAGE, "Invalid value for '--n'"),
    "generate-seed-abc": (["generate", "-p", "x", "--seed", "abc"], USAGE, "Invalid value for '--seed'"),
    "generate-missing-prompt": (["generate", "--face", "{photo}"], USAGE, "Missing option '--prompt'"),
    "generate-unknown-option": (["generate", "-p", "x", "--colour", "red"], USAGE, "No such option: --colour"),
    "generate-face-missing": (["generate", "-p", "x", "--face", "{missing}"], LINE, "missing.jpg: file not found"),
    "generate-face-folder": (["generate", "-p", "x", "--face", "{dir}"], LINE, "is a folder, not an image file"),
    "generate-face-not-image": (["generate", "-p", "x", "--face", "{text}"], LINE, "not a readable image file"),
    "generate-guidance-nan": (["generate", "-p", "x", "--face", "{photo}", "--guidance", "nan"], LINE,
                              "--guidance nan: must be a finite number"),
    "generate-id-scale-inf": (["generate", "-p", "x", "--face", "{photo}", "--id-scale", "inf"], LINE,
                              "--id-scale inf: must be a finite number"),
    "generate-height-63": (["generate", "-p", "x", "--face", "{photo}", "--height", "63"], LINE,
                           "--height 63: must be a positive multiple of 8"),
    "generate-height-0": (["generate", "-p", "x", "--face", "{photo}", "--height", "0"], LINE,
                          "--height 0: must be a positive multiple of 8"),
    "generate-out-is-a-file": (["generate", "-p", "x", "--face", "{photo}", "--out", "{text}"], LINE,
                               "--out must be a folder"),
    "generate-unknown-face-backend": (["generate", "-p", "x", "--face", "{photo}", "--face-backend", "mtcnn"], LINE,
                                      "unknown face analyzer 'mtcnn'"),
    "generate-unknown-parser": (["generate", "-p", "x", "--face", "{photo}", "--parser", "segformer"], LINE,
                                "unknown face parser 'segformer'"),
    "generate-unknown-method": (["generate", "-p", "x", "--face", "{photo}", "--method", "photomaker"], LINE,
                                "unknown method 'photomaker'"),
    "generate-device-cuda": (["generate", "-p", "x", "--face", "{photo}", "--device", "cuda"], LINE,
                             "--device cuda: this machine has no CUDA GPU"),
    "generate-device-unknown": (["generate", "-p", "x", "--face", "{photo}", "--device", "gpu"], LINE,
                                "--device gpu: not a device name"),
    "generate-dtype-unknown": (["generate", "-p", "x", "--face", "{photo}", "--dtype", "float8"], LINE,
                               "unknown dtype 'float8'"),
    "generate-set-size-63": (["generate", "-p", "x", "--face", "{photo}", "--set", "size=[63,64]"], LINE,
                             "--set size=[63,64]: width 63 must be a positive multiple of 8 (e.g. 64)"),
    "generate-set-size-not-json": (["generate", "-p", "x", "--face", "{photo}", "--set", "size=[[["], LINE,
                                   "--set size=[[[: must be [WIDTH, HEIGHT] in pixels"),
    "generate-set-size-negative": (["generate", "-p", "x", "--face", "{photo}", "--set", "size=[0,-8]"], LINE,
                                   "--set size=[0,-8]: width 0 must be a positive multiple of 8"),
    "generate-set-unknown-key": (["generate", "-p", "x", "--face", "{photo}", "--set", "frob=1"], LINE,
                                 "--set frob=1: consistentid has no option 'frob'; --set takes "),
    "generate-set-own-option": (["generate", "-p", "x", "--face", "{photo}", "--set", "id_scale=2"], LINE,
                                "--set id_scale=2: use --id-scale"),
    "generate-set-not-a-bool": (["generate", "-p", "x", "--face", "{photo}", "--method", "ipadapter-faceid",
                                 "--set", "sdxl=yes"], LINE, "--set sdxl=yes: must be true or false"),
    "generate-set-not-finite": (["generate", "-p", "x", "--face", "{photo}", "--method", "ipadapter-faceid",
                                 "--set", "lora_scale=nan"], LINE, "--set lora_scale=nan: must be a finite number"),
    "generate-set-face-backend": (["generate", "-p", "x", "--face", "{photo}", "--set", "face_backend=mtcnn"], LINE,
                                  "--set face_backend=mtcnn: unknown face analyzer 'mtcnn'"),
    "generate-set-not-settable": (["generate", "-p", "x", "--face", "{photo}", "--method", "instantid",
                                   "--set", "detect=x"], LINE, "--set detect=x: detect cannot be set"),
    "generate-other-run-in-out": (["generate", "-p", "x", "--face", "{photo}", "--out", "{earlier_run}"], LINE,
                                  "holds images made with other settings"),
    "generate-batch-n-0": (["generate-batch", "--faces", "{dir}", "-p", "x", "--n", "0"], USAGE,
                           "Invalid value for '--n'"),
    "generate-batch-missing-faces": (["generate-batch", "-p", "x"], USAGE, "Missing option '--faces'"),
    "generate-batch-faces-missing": (["generate-batch", "--faces", "{missing}", "-p", "x"], LINE, "missing.jpg"),
    "generate-batch-out-is-a-file": (["generate-batch", "--faces", "{dir}", "-p", "x", "--out", "{text}"], LINE,
                                     "--out must be a folder"),
    "generate-batch-guidance-inf": (["generate-batch", "--faces", "{dir}", "-p", "x", "--guidance", "inf"], LINE,
                                    "--guidance inf: must be a finite number"),
    "generate-batch-unknown-face-backend": (["generate-batch", "--faces", "{dir}", "-p", "x", "--face-backend",
                                             "mtcnn"], LINE, "unknown face analyzer 'mtcnn'"),
    "generate-batch-set-size-63": (["generate-batch", "--faces", "{photo}", "-p", "x", "--set", "size=[64,63]"], LINE,
                                   "--set size=[64,63]: height 63 must be a positive multiple of 8"),
    "generate-batch-set-height-63": (["generate-batch", "--faces", "{photo}", "-p", "x", "--method", "plain-sd",
                                      "--set", "height=63"], LINE, "--set height=63: height 63 must be a positive"),
    "generate-batch-set-steps": (["generate-batch", "--faces", "{photo}", "-p", "x", "--set",
                                  "num_inference_steps=3"], LINE, "--set num_inference_steps=3: use --steps"),
    "generate-batch-set-no-equals": (["generate-batch", "--faces", "{photo}", "-p", "x", "--set", "sdxl"], LINE,
                                     "--set expects KEY=VALUE, got 'sdxl'"),
    "curate-run-missing-out": (["curate", "run", "{dir}"], USAGE, "Missing option '--out'"),
    "curate-run-workers-abc": (["curate", "run", "{dir}", "--out", "{new}", "--workers", "abc"], USAGE,
                               "Invalid value for '--workers'"),
    "curate-run-input-missing": (["curate", "run", "{missing}", "--out", "{new}"], LINE, "input not found"),
    "curate-run-unknown-detector": (["curate", "run", "{dir}", "--out", "{new}", "--detector", "mtcnn"], LINE,
                                    "unknown face analyzer 'mtcnn'"),
    "curate-report-nothing-to-report": (["curate", "report", "{missing}"], LINE, "no finished shards"),
    "curate-sample-unknown-option": (["curate", "sample", "{new}", "--rows", "3"], USAGE, "No such option: --rows"),
    "annotate-missing-out": (["annotate", "{photo}"], USAGE, "Missing option '--out'"),
    "annotate-input-missing": (["annotate", "{missing}", "--out", "{new}"], LINE, "missing.jpg: input not found"),
    "annotate-unknown-face-analyzer": (["annotate", "{photo}", "--out", "{new}", "--face-analyzer", "mtcnn"], LINE,
                                       "unknown face analyzer 'mtcnn'"),
    "annotate-unknown-parser": (["annotate", "{photo}", "--out", "{new}", "--parser", "segformer"], LINE,
                                "unknown face parser 'segformer'"),
    "annotate-device-cuda": (["annotate", "{photo}", "--out", "{new}", "--device", "cuda"], LINE,
                             "--device cuda: this machine has no CUDA GPU"),
    "annotate-max-new-tokens-abc": (["annotate", "{photo}", "--out", "{new}", "--max-new-tokens", "abc"], USAGE,
                                    "Invalid value for '--max-new-tokens'"),
    "train-consistentid-batch-size-0": (["train", "consistentid", "--data", "{dir}", "--output-dir", "{new}",
                                         "--batch-size", "0"], USAGE, "Invalid value for '--batch-size'"),
    "train-ipadapter-faceid-missing-data": (["train", "ipadapter-faceid", "--output-dir", "{new}"], USAGE,
                                            "Missing option '--data'"),
    "train-ipadapter-faceid-data-missing": (["train", "ipadapter-faceid", "--data", "{missing}", "--output-dir",
                                             "{new}"], LINE, "missing.jpg: --data not found"),
    "train-ipadapter-faceid-output-dir-is-a-file": (["train", "ipadapter-faceid", "--data", "{dir}",
                                                     "--output-dir", "{text}"], LINE, "--output-dir must be a folder"),
    "train-ipadapter-faceid-mixed-precision": (["train", "ipadapter-faceid", "--data", "{dir}", "--output-dir",
                                                "{new}", "--mixed-precision", "fp8"], LINE,
                                               "--mixed-precision fp8: use one of no, fp16, bf16"),
    "train-instantid-max-steps-0": (["train", "instantid", "--data", "{dir}", "--output-dir", "{new}",
                                     "--max-steps", "0"], USAGE, "Invalid value for '--max-steps'"),
    "train-instantid-lr-abc": (["train", "instantid", "--data", "{dir}", "--output-dir", "{new}", "--lr", "abc"],
                               USAGE, "Invalid value for '--lr'"),
    "evaluate-run-missing-config": (["evaluate", "run"], USAGE, "Missing option '--config'"),
    "evaluate-run-config-missing": (["evaluate", "run", "-c", "{missing}"], LINE, "config file not found"),
    "evaluate-run-config-not-toml": (["evaluate", "run", "-c", "{bad_toml}"], LINE, "cannot parse config"),
    "evaluate-run-config-bad-yaml": (["evaluate", "run", "-c", "{bad_yaml}"], LINE,
                                     "expected the node content, but found '-' at line 2, column 3"),
    "evaluate-run-config-yaml-tag": (["evaluate", "run", "-c", "{evil_yaml}"], LINE,
                                     "could not determine a constructor for the tag"),
    "evaluate-run-config-not-utf8": (["evaluate", "run", "-c", "{latin1_yaml}"], LINE, "UnicodeDecodeError"),
    "evaluate-rate-port-99999": (["evaluate", "rate", "--generated", "{dir}", "--references", "{dir}", "--db",
                                  "{new}/ratings.db", "--port", "99999"], LINE,
                                 "--port 99999: must be a port number from 1 to 65535"),
    "evaluate-rate-host-999": (["evaluate", "rate", "--generated", "{dir}", "--references", "{dir}", "--db",
                                "{new}/ratings.db", "--host", "999.1.1.1"], LINE,
                               "--host 999.1.1.1: not a host name or address of this machine"),
    "evaluate-score-nothing-generated": (["evaluate", "score", "--generated", "{dir}", "--references", "{dir}"],
                                         LINE, "no generated images"),
    "serve-unknown-method": (["serve", "--method", "photomaker"], LINE, "unknown method(s) photomaker"),
    "serve-port-abc": (["serve", "--port", "abc"], USAGE, "Invalid value for '--port'"),
    "serve-device-cuda": (["serve", "--device", "cuda"], LINE, "--device cuda: this machine has no CUDA GPU"),
    "serve-unknown-masks": (["serve", "--masks", "segformer"], LINE, "unknown face parser 'segformer'"),
    "serve-out-is-a-file": (["serve", "--out", "{text}"], LINE, "--out must be a folder"),
    "serve-port-99999": (["serve", "--port", "99999", "--out", "{new}"], LINE, "--port 99999: must be a port number"),
    "serve-port-0": (["serve", "--port", "0", "--out", "{new}"], LINE, "--port 0: must be a port number"),
    "serve-host-999": (["serve", "--host", "999.1.1.1", "--out", "{new}"], LINE,
                       "--host 999.1.1.1: not a host name or address of this machine"),
    "serve-set-unknown-key": (["serve", "--set", "frob=1", "--out", "{new}"], LINE,
                              "--set frob=1: consistentid has no option 'frob'"),
    "demo-steps-0": (["demo", "--steps", "0"], USAGE, "Invalid value for '--steps'"),
    "demo-out-is-a-file": (["demo", "--out", "{text}"], LINE, "--out must be a folder"),
    "demo-size-63": (["demo", "--size", "63", "--out", "{new}"], LINE, "--size 63: must be a positive multiple of 8"),
    "demo-size-0": (["demo", "--size", "0", "--out", "{new}"], LINE, "--size 0: must be a positive multiple of 8"),
    "demo-size-negative": (["demo", "--size", "-16", "--out", "{new}"], LINE,
                           "--size -16: must be a positive multiple of 8"),
    "faces-detect-missing-photo": (["faces", "detect"], USAGE, "Missing argument 'photos'"),
    "faces-detect-unknown-analyzer": (["faces", "detect", "{photo}", "--analyzer", "mtcnn"], LINE,
                                      "unknown face analyzer 'mtcnn'"),
    "faces-detect-pack-missing": (["faces", "detect", "{photo}", "--model-dir", "{dir}"], LINE,
                                  "insightface model pack 'buffalo_l' not found"),
    "faces-detect-out-is-a-file": (["faces", "detect", "{photo}", "--analyzer", "dlib", "--out", "{text}"], LINE,
                                   "--out must be a folder"),
    "faces-parse-out-is-a-file": (["faces", "parse", "{photo}", "--parser", "landmarks", "--out", "{text}"], LINE,
                                  "--out must be a folder"),
    "faces-parse-unknown-parser": (["faces", "parse", "{photo}", "--parser", "segformer"], LINE,
                                   "unknown face parser 'segformer'"),
    "faces-check-models-pack-missing": (["faces", "check-models", "--model-dir", "{dir}"], LINE,
                                        "insightface model pack 'buffalo_l' not found"),
    "convert-output-not-safetensors": (["convert", "{missing}", "{new}"], USAGE, "must end in .safetensors"),
    "convert-checkpoint-missing": (["convert", "{missing}", "{new}.safetensors"], LINE, "checkpoint not found"),
    "convert-not-a-checkpoint": (["convert", "{text}", "{new}.safetensors"], LINE,
                                 "not a usable ConsistentID checkpoint"),
    "convert-malicious-pickle": (["convert", "{evil_pickle}", "{new}.safetensors"], LINE,
                                 "it holds a reference to posix.system, not plain data; refused without loading it"),
}  # fmt: skip

NEEDS_NO_CUDA = {name for name in CASES if "device-cuda" in name}

RUN_CASES = """
import contextlib, io, json, runpy, sys, traceback

results = {}
for name, argv in json.loads(sys.argv[1]).items():
    sys.argv, stderr, code = ["idportrait", *argv], io.StringIO(), 0
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_module("idportrait.cli", run_name="__main__")  # what `python -m idportrait.cli` runs
        except SystemExit as exit_:
            code = exit_.code
        except BaseException:
            traceback.print_exc()
            code = None
    results[name] = [code, stderr.getvalue()]
print(json.dumps(results))
"""
"""Runs many command lines in one process, so the imports (torch) are paid once per process, not per case."""


class CodeOnLoad:
    """Pickles as a call of ``os.system``: what a malicious checkpoint holds (never unpickled here)."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_errors")
    Image.new("RGB", (16, 16), "gray").save(root / "photo.png")
    (root / "text.png").write_text("not an image")
    (root / "dir").mkdir()
    (root / "bad.toml").write_text("metrics = [")
    (root / "bad.yaml").write_text("methods: [\n  - a\n")
    (root / "evil.yaml").write_text('output: !!python/object/apply:os.system ["touch pwned"]\n')
    (root / "latin1.yaml").write_bytes("output: caf\xe9\n".encode("latin-1"))
    torch.save({"weights": CodeOnLoad()}, root / "evil.bin")
    (root / "earlier").mkdir()
    (root / "earlier" / "settings.json").write_text(json.dumps({"method": "plain-sd", "prompts": ["y"]}))
    return {"root": root, "photo": root / "photo.png", "text": root / "text.png", "dir": root / "dir",
            "bad_toml": root / "bad.toml", "bad_yaml": root / "bad.yaml", "evil_yaml": root / "evil.yaml",
            "latin1_yaml": root / "latin1.yaml", "evil_pickle": root / "evil.bin", "earlier_run": root / "earlier",
            "new": root / "new"}  # fmt: skip


def case_argv(name: str, values: dict[str, str]) -> list[str]:
    """The case's arguments with its paths filled in; {new} and {missing} are the case's own."""
    own = {"new": f"{values['new']}/{name}", "missing": f"{values['root']}/absent/{name}/missing.jpg"}
    return [a.format(**{**values, **own}) for a in CASES[name][0]]


def cli_env(root: Path) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "HF_HOME": str(root / "hf_home")}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def results(paths) -> dict[str, tuple[int | None, str]]:
    """(exit code, stderr) of every case: two processes, each running half of the cases one after another."""
    values = {k: str(v) for k, v in paths.items()}
    argvs = {name: case_argv(name, values) for name in CASES}
    names = list(argvs)
    halves = [{n: argvs[n] for n in names[0::2]}, {n: argvs[n] for n in names[1::2]}]

    def run(cases: dict[str, list[str]]) -> dict[str, list]:
        done = subprocess.run([sys.executable, "-c", RUN_CASES, json.dumps(cases)], cwd=paths["root"],
                              env=cli_env(paths["root"]), capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    with ThreadPoolExecutor(max_workers=2) as pool:
        merged = {k: v for half in pool.map(run, halves) for k, v in half.items()}
    return {name: (merged[name][0], merged[name][1]) for name in CASES}


def check(name: str, code: int | None, stderr: str) -> None:
    _, kind, text = CASES[name]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert code == 2, stderr
    if kind == USAGE:
        assert lines[0].startswith("Usage: idportrait ")
        assert lines[1].startswith("Try 'idportrait ") and lines[1].endswith("--help' for help.")
        assert text in stderr
    else:
        assert len(lines) == 1, stderr
        assert lines[0].startswith("error: ") and text in lines[0], lines[0]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_options_and_inputs_exit_2_without_traceback(results, name):
    if name in NEEDS_NO_CUDA and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    check(name, *results[name])


@pytest.mark.parametrize("name", ["generate-steps-0", "generate-guidance-nan"])
def test_the_console_entry_point_itself(paths, name):
    """The same through ``python -m idportrait.cli`` in its own process (the cases above share one)."""
    argv = case_argv(name, {k: str(v) for k, v in paths.items()})
    done = subprocess.run([sys.executable, "-m", "idportrait.cli", *argv], cwd=paths["root"],
                          env=cli_env(paths["root"]), capture_output=True, text=True, timeout=120)  # fmt: skip
    check(name, done.returncode, done.stderr)


def test_refused_cases_create_nothing_and_run_nothing(results, paths):
    """A refused start-up leaves no folder or ratings file behind; a refused pickle neither runs its code nor quotes
    torch's advice to load it with weights_only=False."""
    for name in ("evaluate-rate-port-99999", "evaluate-rate-host-999", "serve-port-99999", "serve-host-999",
                 "demo-size-63", "generate-set-size-63"):  # fmt: skip
        assert results[name][0] == 2 and not (paths["new"] / name).exists(), name
    assert "weights_only" not in results["convert-malicious-pickle"][1]
    assert not (paths["root"] / "pwned").exists()
    assert json.loads((paths["earlier_run"] / "settings.json").read_text()) == {"method": "plain-sd", "prompts": ["y"]}
