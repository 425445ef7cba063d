"""InsightFace detection + ArcFace embeddings through onnxruntime (the papers' face models).

Packs: ``buffalo_l`` (ConsistentID, IP-Adapter-FaceID) and ``antelopev2`` (FaceID-6M, InstantID).
Only the two models each method uses are loaded, through insightface's own model zoo router:
SCRFD detection (5 keypoints) and ArcFace recognition on the 112x112 `norm_crop` (the same crop as
insightface's ``ArcFaceONNX.get``).

Callers pass RGB; the conversion to BGR (what insightface models were trained on) happens here.
Nothing is ever downloaded: the pack must be on disk, and `resolve_model_dir` explains the expected
file tree when it is not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from idportrait.errors import CheckpointError, ModelNotFoundError
from idportrait.faces.align import norm_crop
from idportrait.faces.types import Face
from idportrait.registry import INSIGHTFACE_CONSISTENTID, INSIGHTFACE_FACEID6M


@dataclass(frozen=True)
class PackFiles:
    detector: str
    recognizer: str
    others: tuple[str, ...]


PACKS: dict[str, PackFiles] = {
    INSIGHTFACE_CONSISTENTID: PackFiles(
        "det_10g.onnx", "w600k_r50.onnx", ("1k3d68.onnx", "2d106det.onnx", "genderage.onnx")
    ),
    INSIGHTFACE_FACEID6M: PackFiles(
        "scrfd_10g_bnkps.onnx", "glintr100.onnx", ("1k3d68.onnx", "2d106det.onnx", "genderage.onnx")
    ),
}
"""The insightface model-zoo packs we use and their files (detector and recognizer are required)."""

DEFAULT_ROOT = Path("~/.insightface/models")


def resolve_model_dir(pack: str, model_dir: str | Path | None = None) -> Path:
    """The folder that directly holds ``pack``'s required .onnx files.

    ``model_dir`` may be that folder, a folder containing ``<pack>/``, an insightface root containing
    ``models/<pack>/``, or hold the doubly nested ``<pack>/<pack>/`` that unzipping antelopev2.zip
    gives. Default: ``~/.insightface/models/<pack>``. Raises `ModelNotFoundError` printing the
    expected tree and what was found.
    """
    if pack not in PACKS:
        raise ModelNotFoundError(f"unknown insightface pack {pack!r}; known: {', '.join(PACKS)}")
    files = PACKS[pack]
    base = (Path(model_dir) if model_dir is not None else DEFAULT_ROOT).expanduser()
    candidates = [base, base / pack, base / "models" / pack, base / pack / pack]
    for folder in candidates:
        if all((folder / f).is_file() for f in (files.detector, files.recognizer)):
            for f in (files.detector, files.recognizer):
                _check_not_placeholder(folder / f)
            return folder
    raise ModelNotFoundError(_tree_message(pack, base, candidates))


def _check_not_placeholder(path: Path) -> None:
    size = path.stat().st_size
    head = path.open("rb").read(64)
    if size < 1024 and (size == 0 or head.startswith(b"version https://git-lfs")):
        raise CheckpointError(
            f"is a {size}-byte placeholder (empty or a Git LFS pointer), not the ONNX model; "
            "download the real file (git lfs pull, or the pack's .zip)",
            path,
        )


def _tree_message(pack: str, base: Path, candidates: list[Path]) -> str:
    files = PACKS[pack]
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in base.iterdir()) if base.is_dir() else []
    looked = ", ".join(str(c) for c in candidates)
    return (
        f"insightface model pack {pack!r} not found (looked in {looked}); it needs {base / pack}/{files.detector} "
        f"(face detection) and {base / pack}/{files.recognizer} (ArcFace recognition); "
        f"found in {base}: {', '.join(found) if found else '(nothing)' if base.is_dir() else '(folder missing)'}. "
        f"Get {pack}.zip from the insightface model zoo, unzip it so the .onnx files sit directly in "
        f"{pack}/, and pass the folder as model_dir (CLI: --face-model-dir; --model-dir for `idportrait faces`)."
    )


def onnx_providers(device: str) -> list[str | tuple[str, dict]]:
    """onnxruntime providers for ``device`` ("cpu", "cuda", "cuda:1", "auto"): CUDA first when present.

    Warns (RuntimeWarning) when CUDA is asked for but this onnxruntime build has no CUDA provider;
    "auto" takes CUDA when there is one and CPU otherwise, silently.
    """
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device == "auto":
        device = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    warnings.warn(
        f"device={device!r} asked for, but onnxruntime {onnxruntime.__version__} has no CUDAExecutionProvider "
        f"(available: {', '.join(available)}); insightface models run on CPU. Install onnxruntime-gpu to use the GPU.",
        RuntimeWarning,
        stacklevel=3,
    )
    return ["CPUExecutionProvider"]


def insightface_runtime(device: str, onnx_providers_available: list[str]) -> str:
    """Which runtime runs an insightface pack on ``device`` (a torch device name, "auto" resolved): "onnxruntime",
    or "torch" for a CUDA device when this onnxruntime build has no CUDA provider (the CPU build): the pack's
    own ONNX graphs then run on the GPU through `insightface_torch` instead of falling back to the CPU."""
    if device.startswith("cuda") and "CUDAExecutionProvider" not in onnx_providers_available:
        return "torch"
    return "onnxruntime"


def session_options(threads: int | None) -> Any:
    """onnxruntime session options with ``threads`` intra-op threads that sleep when idle (None: the defaults)."""
    if threads is None:
        return None
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _uses_cuda(providers: list[str | tuple[str, dict]]) -> bool:
    first = providers[0]
    return (first[0] if isinstance(first, tuple) else first) == "CUDAExecutionProvider"


class InsightFaceBackend:
    """``detect(rgb uint8 [H, W, 3], embed) -> list[Face]`` with an insightface pack.

    det_size: detector input side in pixels (square, 640 as in ConsistentID/InstantID).
    threads: CPU threads of each onnxruntime session (None: onnxruntime's default, one per core, spinning while
    idle); give each of N processes sharing a machine its share, or they oversubscribe the cores.
    Embeddings are the raw ArcFace outputs (float32 [512]); `Face.normed_embedding` gives the
    L2-normalised vector insightface calls ``normed_embedding``.
    """

    def __init__(
        self,
        pack: str = INSIGHTFACE_CONSISTENTID,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        det_size: int | tuple[int, int] = 640,
        det_thresh: float = 0.5,
        threads: int | None = None,
    ) -> None:
        from insightface.model_zoo import model_zoo

        folder = resolve_model_dir(pack, model_dir)
        files = PACKS[pack]
        self.providers = onnx_providers(device)
        self.session_options = session_options(threads)
        ctx_id = 0 if _uses_cuda(self.providers) else -1
        size = (det_size, det_size) if isinstance(det_size, int) else tuple(det_size)

        self.detector = self._load(model_zoo, folder / files.detector, "detection")
        self.detector.prepare(ctx_id, input_size=size, det_thresh=det_thresh)
        self.recognizer = self._load(model_zoo, folder / files.recognizer, "recognition")
        self.recognizer.prepare(ctx_id)
        self.model_dir = folder

    def _load(self, model_zoo, path: Path, task: str):
        try:
            model = model_zoo.get_model(str(path), providers=self.providers, sess_options=self.session_options)
        except Exception as err:
            raise CheckpointError(f"onnxruntime could not load it ({type(err).__name__}: {err})", path) from None
        if model is None or model.taskname != task:
            routed = "nothing" if model is None else model.taskname
            raise CheckpointError(f"expected a {task} model, insightface routes it as {routed}", path)
        active = model.session.get_providers()
        if _uses_cuda(self.providers) and active[0] != "CUDAExecutionProvider":
            warnings.warn(
                f"{path.name}: onnxruntime could not start CUDA (session providers {active}) and fell back to CPU; "
                "check that the CUDA and cuDNN versions match this onnxruntime-gpu build.",
                RuntimeWarning,
                stacklevel=3,
            )
        return model

    def detect(self, rgb: np.ndarray, embed: bool = True) -> list[Face]:
        return self.detect_batch([rgb], embed)[0]

    def detect_batch(self, rgbs: list[np.ndarray], embed: bool = True) -> list[list[Face]]:
        """Faces of each RGB photo: detection photo by photo, then every face's embedding in one recognizer run
        (one run per face when the recognizer's ONNX input has a fixed batch of 1)."""
        bgrs = [np.ascontiguousarray(rgb[:, :, ::-1]) for rgb in rgbs]
        faces, crops = [], []
        size = self.recognizer.input_size[0]
        for bgr in bgrs:
            bboxes, kpss = self.detector.detect(bgr, max_num=0)
            faces.append([Face(bbox=b[:4], kps=k, score=float(b[4])) for b, k in zip(bboxes, kpss, strict=True)])
            crops += [norm_crop(bgr, k, size) for k in kpss] if embed else []
        if crops:
            batch = self.recognizer.input_shape[0]
            fixed = isinstance(batch, int) and batch == 1
            parts = [self.recognizer.get_feat(c) for c in crops] if fixed else [self.recognizer.get_feat(crops)]
            embeddings = iter(np.concatenate(parts).reshape(len(crops), -1))
            for face in (f for per in faces for f in per):
                face.embedding = next(embeddings)
        return faces
