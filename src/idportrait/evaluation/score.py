"""Score generated images against their identity's reference photo: one row of metrics per image.

    models = load_metric_models(config.metrics)
    rows = score_records(run_dir, records, references, models, class_word_for)   # per-image dicts
    fid = frechet_by_method(run_dir, records, references, models)                 # method -> FID

Per identity the reference is analysed once (CLIP/DINO embeddings, face, parsing). A metric whose
model is switched off, or that cannot be computed for an image (no face, no region in common, no
prompt), is left empty (NaN) in that row; the report counts generated images in which the analyzer
found no face as ``no_face``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.progress import Progress
from torch import nn

from idportrait.devices import pick_device
from idportrait.errors import NoFaceError, UserError
from idportrait.evaluation.clip_score import ClipEmbedder
from idportrait.evaluation.config import NONE, MetricsSpec
from idportrait.evaluation.dino import DinoEmbedder
from idportrait.evaluation.facenet import InceptionResnetV1
from idportrait.evaluation.facesim import arcface_embedding, cosine100, facenet_embedding
from idportrait.evaluation.fgis import fgis
from idportrait.evaluation.records import Record
from idportrait.faces.analyzer import FaceDetector
from idportrait.imageio import load_image

METRICS: tuple[str, ...] = ("clip_t", "clip_i", "dino", "facesim_facenet", "facesim_arcface", "fgis")
"""Per-image metric columns, x100, in the papers' table order."""


@dataclass
class MetricModels:
    """Loaded metric models; None switches the metric off."""

    clip: ClipEmbedder | None = None
    dino: DinoEmbedder | None = None
    detect: FaceDetector | None = None
    facenet: InceptionResnetV1 | None = None
    parser: Any = None  # ``parse(image, face=None) -> Parsing`` (`idportrait.faces.get_face_parser`)
    fid_feature: int | nn.Module | None = None
    fid_name: str = "FID"
    face_name: str = "ArcFace"  # what the analyzer's embedding is, for the FaceSim column label


def load_metric_models(spec: MetricsSpec) -> MetricModels:
    """Load what ``spec`` asks for (hub ids / local paths), on ``spec.device``."""
    from idportrait.evaluation.clip_score import load_clip
    from idportrait.evaluation.dino import load_dino
    from idportrait.evaluation.facenet import load_facenet
    from idportrait.evaluation.fid import DinoFeatures, inception_extractor
    from idportrait.faces import get_face_analyzer, get_face_parser

    device = pick_device(spec.device)
    models = MetricModels()
    models.clip = None if spec.clip == NONE else load_clip(spec.clip, device)
    models.dino = None if spec.dino == NONE else load_dino(spec.dino, device)
    if spec.face_backend != NONE:
        models.detect = get_face_analyzer(spec.face_backend, model_dir=spec.face_model_dir, device=device).detect
        models.face_name = "ArcFace" if spec.face_backend.startswith("insightface") else spec.face_backend
        models.facenet = None if spec.facenet_weights == NONE else load_facenet(spec.facenet_weights, device)
        if spec.parser != NONE and models.dino is not None:
            models.parser = get_face_parser(spec.parser, weights=spec.parser_weights, device=device)
    if spec.fid_features == "inception":
        models.fid_feature = inception_extractor()
    elif spec.fid_features == "dino" and models.dino is not None:
        models.fid_feature, models.fid_name = DinoFeatures(models.dino), "FD_DINO"
    elif spec.fid_features != NONE:
        raise ValueError(f"fid_features must be 'inception', 'dino' (needs dino) or 'none', got {spec.fid_features!r}")
    return models


@dataclass
class Analysed:
    """What the metrics need from one image: embeddings, largest face, parsing."""

    image: Image.Image
    clip: np.ndarray | None = None
    dino: np.ndarray | None = None
    arcface: np.ndarray | None = None
    facenet: np.ndarray | None = None
    parsing: Any = None
    has_face: bool | None = None  # None: no face analyzer loaded


def analyse(image: Image.Image, models: MetricModels) -> Analysed:
    """Embed one image with every loaded model; face-dependent parts stay None when there is no face."""
    out = Analysed(image=image)
    if models.clip is not None:
        out.clip = models.clip.embed_images([image])[0]
    if models.dino is not None:
        out.dino = models.dino.embed_images([image])[0]
    if models.detect is None:
        return out
    faces = models.detect(image)
    out.has_face = bool(faces)
    if not faces:
        return out
    out.arcface = arcface_embedding(lambda _: faces, image)
    if models.facenet is not None:
        out.facenet = facenet_embedding(models.facenet, lambda _: faces, image)
    if models.parser is not None:
        try:
            out.parsing = models.parser.parse(image, faces[0])
        except NoFaceError:  # a parser with its own detector may disagree with the analyzer
            out.parsing = None
    return out


def score_records(
    run_dir: Path, records: list[Record], references: dict[str, Path], models: MetricModels
) -> list[dict[str, Any]]:
    """One row per record: its fields plus the `METRICS` (x100, NaN when not computable) and ``face``."""
    unknown = sorted({r.identity for r in records} - set(references))
    if unknown:
        raise UserError(f"generated images of identities with no reference photo: {', '.join(unknown)}")
    refs: dict[str, Analysed] = {}
    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("scoring", total=len(records))
        for record in records:
            if record.identity not in refs:
                refs[record.identity] = analyse(load_image(references[record.identity]), models)
            rows.append(_row(record, refs[record.identity], analyse(load_image(run_dir / record.path), models), models))
            progress.advance(task)
    return rows


def _row(record: Record, ref: Analysed, gen: Analysed, models: MetricModels) -> dict[str, Any]:
    nan = float("nan")
    row: dict[str, Any] = {
        "method": record.method,
        "identity": record.identity,
        "prompt_index": record.prompt_index,
        "category": record.category,
        "prompt": record.prompt or "",
        "seed": "" if record.seed is None else record.seed,
        "path": record.path,
        "face": gen.has_face,
    }
    row["clip_t"] = nan
    if gen.clip is not None and record.prompt:
        row["clip_t"] = float(100.0 * np.dot(gen.clip, models.clip.embed_texts([record.prompt])[0]))
    row["clip_i"] = nan if gen.clip is None else float(100.0 * np.dot(gen.clip, ref.clip))
    row["dino"] = nan if gen.dino is None else float(100.0 * np.dot(gen.dino, ref.dino))
    row["facesim_facenet"] = _nan(cosine100(ref.facenet, gen.facenet))
    row["facesim_arcface"] = _nan(cosine100(ref.arcface, gen.arcface))
    row["fgis"] = nan
    if ref.parsing is not None and gen.parsing is not None:
        row["fgis"] = _nan(fgis(models.dino, ref.image, ref.parsing, gen.image, gen.parsing)[0])
    row["seconds"] = _total(record)
    row["s_prepare"], row["s_generate"] = _nan(record.prepare_seconds), _nan(record.seconds)
    stages: dict[str, float] = {}
    for name, seconds in [*record.prepare_stages.items(), *record.stages.items()]:
        stages[name] = stages.get(name, 0.0) + seconds
    for name, seconds in stages.items():
        row[f"s_{name}"] = seconds
    if stages:
        row["s_other"] = row["seconds"] - sum(stages.values())
    return row


def frechet_by_method(
    run_dir: Path, records: list[Record], references: dict[str, Path], models: MetricModels
) -> dict[str, float]:
    """Method -> Fréchet distance between its generated images and all reference photos (NaN if < 2 each)."""
    from idportrait.evaluation.fid import frechet_distance

    if models.fid_feature is None:
        return {}
    real = [load_image(p) for p in references.values()]
    out = {}
    for method in dict.fromkeys(r.method for r in records):
        fake = [load_image(run_dir / r.path) for r in records if r.method == method]
        enough = len(real) >= 2 and len(fake) >= 2
        out[method] = frechet_distance(real, fake, models.fid_feature) if enough else float("nan")
    return out


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _total(record: Record) -> float:
    if record.seconds is None:
        return float("nan")
    return record.seconds + (record.prepare_seconds or 0.0)
