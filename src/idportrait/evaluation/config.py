"""One file drives an evaluation: which methods, which references, prompts and seeds, which metric models.

TOML, YAML or JSON, for example (TOML)::

    references = "refs/"            # one photo per identity; the file stem is the identity name
    output = "runs/eval1"
    seeds = [0, 1, 2]
    prompts = "consistentid"        # or a COCO captions JSON / our categorised JSON / a .txt file
    class_word = "person"           # fills {class_word}; per identity: [class_words] alice = "woman"
    device = "auto"

    [[methods]]
    name = "consistentid"           # a name in idportrait.methods.METHODS
    generate = { num_inference_steps = 50, guidance_scale = 5.0 }

    [[methods]]
    name = "plain-sd"

    [metrics]
    fid_features = "inception"      # or "dino" (FD_DINO) or "none"
    fid_weights = "pt_inception-2015-12-05-6726825d.pth"   # default: downloaded once
    fid_fallback = "dino"           # FD_DINO when the Inception weights cannot be had (default "none": stop)

Relative paths are resolved against the config file's folder. Every metric model field defaults to the
papers' model (`idportrait.registry`); the string "none" switches that metric off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from idportrait import registry
from idportrait.errors import UserError

NONE = "none"


@dataclass
class MethodSpec:
    """One method row: ``load_method(name, base, **options)``, then ``generate(..., **generate)``."""

    name: str
    label: str = ""
    base: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    generate: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.label or self.name
        if not self.label.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise UserError(f"method label {self.label!r} must be letters, digits, '-', '_' or '.'")


@dataclass
class MetricsSpec:
    """Metric models (hub ids or local folders/files); ``"none"`` turns a metric off."""

    clip: str = registry.CLIP_EVAL
    dino: str = registry.DINO_VIT_S16
    face_backend: str = registry.FACE_BACKEND_FACEID6M
    face_model_dir: str | None = None
    facenet_weights: str | None = None
    parser: str = "bisenet"
    parser_weights: str | None = None
    fid_features: str = "inception"
    fid_weights: str | None = None
    fid_fallback: str = NONE
    device: str = "auto"


@dataclass
class EvalConfig:
    """The whole protocol; see the module docstring for the file format."""

    references: Path
    output: Path
    methods: list[MethodSpec]
    base: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    prompts: str = "consistentid"
    prompt_limit: int | None = None
    class_word: str = "person"
    class_words: dict[str, str] = field(default_factory=dict)
    device: str = "auto"
    metrics: MetricsSpec = field(default_factory=MetricsSpec)

    def class_word_for(self, identity: str) -> str:
        return self.class_words.get(identity, self.class_word)


def load_config(path: str | Path) -> EvalConfig:
    """Read and check a config file; raises `UserError` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError("config file not found", path)
    data = _parse(path)
    try:
        return _build(data, path.parent.resolve())
    except (TypeError, ValueError, KeyError) as err:
        raise UserError(f"invalid config ({err})", path) from None


def load_metrics_spec(path: str | Path | None) -> MetricsSpec:
    """Only the ``[metrics]`` section of a config file (defaults when ``path`` is None)."""
    if path is None:
        return MetricsSpec()
    path = Path(path)
    if not path.is_file():
        raise UserError("config file not found", path)
    metrics = _parse(path).get("metrics", {})
    try:
        _check_keys(metrics, MetricsSpec, "[metrics]")
    except (TypeError, KeyError) as err:
        raise UserError(f"invalid config ({err})", path) from None
    return MetricsSpec(**metrics)


def _parse(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    try:
        text = path.read_text("utf-8")
        if suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        if suffix == ".json":
            return json.loads(text)
    except Exception as err:
        raise UserError(f"cannot parse config ({type(err).__name__}: {_one_line(err)})", path) from None
    raise UserError("config must be .toml, .yaml/.yml or .json", path)


def _one_line(err: Exception) -> str:
    """A parser's error on one line: YAML's problem and its place (``line 2, column 3``), its several-line excerpt of
    the file left out; any other message with its line breaks folded."""
    problem, mark = getattr(err, "problem", None), getattr(err, "problem_mark", None)
    if problem and mark is not None:
        context = getattr(err, "context", None)
        return f"{context + ': ' if context else ''}{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(err).split())


def _build(data: dict[str, Any], root: Path) -> EvalConfig:
    _check_keys(data, EvalConfig, "config")
    for key in ("references", "output", "methods"):
        if key not in data:
            raise KeyError(f"missing {key!r}")
    methods = []
    for item in data["methods"]:
        _check_keys(item, MethodSpec, "[[methods]]")
        methods.append(MethodSpec(**item))
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be unique, got {labels} (set label = ... to tell them apart)")
    metrics = data.get("metrics", {})
    _check_keys(metrics, MetricsSpec, "[metrics]")
    prompts = str(data.get("prompts", "consistentid"))
    if prompts != "consistentid":
        prompts = str(_resolve(prompts, root))
    seeds = [int(s) for s in data.get("seeds", [0])]
    if not seeds:
        raise ValueError("seeds must not be empty")
    return EvalConfig(
        references=_resolve(data["references"], root),
        output=_resolve(data["output"], root),
        methods=methods,
        base=data.get("base"),
        seeds=seeds,
        prompts=prompts,
        prompt_limit=data.get("prompt_limit"),
        class_word=str(data.get("class_word", "person")),
        class_words={str(k): str(v) for k, v in data.get("class_words", {}).items()},
        device=str(data.get("device", "auto")),
        metrics=MetricsSpec(**metrics),
    )


def _check_keys(data: Any, cls: type, where: str) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be a table/mapping")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise KeyError(f"unknown key(s) in {where}: {', '.join(unknown)}")


def _resolve(value: str | Path, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path
