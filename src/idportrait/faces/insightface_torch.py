"""The insightface packs' SCRFD detector and ArcFace recognizer run by torch (any device), many photos per call.

    backend = InsightFaceTorchBackend("buffalo_l", model_dir, device="cuda")   # analyzer name insightface-torch
    faces_per_photo = backend.detect_batch([rgb, rgb2, ...], embed=True)

Same files, same arithmetic as `InsightFaceBackend` (insightface's ``SCRFD.detect`` and ``ArcFaceONNX.get_feat``),
with the networks converted once from the pack's ONNX (`onnx_graph.converted_graph`, cached as safetensors):

    each photo (RGB) -> BGR, resized into the det_size canvas (cv2, top left; CPU)    uint8 [B, S, S, 3]
      -> device: RGB, (x - 127.5) / 128                                              [B, 3, S, S]
      -> SCRFD (one call) -> per stride: scores, box and keypoint distances           [B, N_s, 1 | 4 | 10]
      -> threshold, decode at the anchor centres, / det scale (device); NMS 0.4 (CPU, insightface's)
    every face of every photo -> 112 px norm_crop of the BGR photo (CPU)             uint8 [F, 112, 112, 3]
      -> device: RGB, (x - mean) / std -> ArcFace (one call)                          embeddings [F, 512]
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from idportrait.faces.align import norm_crop
from idportrait.faces.insightface_backend import PACKS, resolve_model_dir
from idportrait.faces.onnx_graph import GraphModule, OnnxGraph, converted_graph
from idportrait.faces.types import Face
from idportrait.registry import INSIGHTFACE_CONSISTENTID

SCRFD_MEAN, SCRFD_STD = 127.5, 128.0
NMS_THRESHOLD = 0.4


def scrfd_layout(n_outputs: int) -> tuple[tuple[int, ...], int, bool]:
    """(strides, anchors per cell, keypoints?) of an SCRFD graph with ``n_outputs`` outputs (insightface's rule)."""
    layouts = {6: ((8, 16, 32), 2, False), 9: ((8, 16, 32), 2, True), 10: ((8, 16, 32, 64, 128), 1, False)}
    layouts[15] = ((8, 16, 32, 64, 128), 1, True)
    return layouts[n_outputs]


def arcface_normalisation(graph: OnnxGraph) -> tuple[float, float]:
    """(mean, std) of ArcFace's input: (0, 1) when the graph normalises itself (a ``Sub`` and a ``Mul`` among its
    first 8 nodes, by node name, as insightface's ``ArcFaceONNX`` decides), else (127.5, 127.5)."""
    names = [n.name for n in graph.nodes[:8]]
    sub = any(n.startswith(("Sub", "_minus")) for n in names)
    mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if sub and mul else (127.5, 127.5)


def nms(dets: np.ndarray, threshold: float = NMS_THRESHOLD) -> list[int]:
    """Greedy NMS over float32 [N, 5] (x1, y1, x2, y2, score) with insightface's +1 pixel areas; kept row indices."""
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(overlap <= threshold)[0] + 1]
    return keep


def letterbox(bgr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """insightface's detector input: the photo resized (aspect kept) into a ``size`` (w, h) canvas at the top left.

    Returns (uint8 [h, w, 3], scale of the resized photo to the original).
    """
    width, height = size
    if bgr.shape[0] / bgr.shape[1] > height / width:
        new_h, new_w = height, int(height / (bgr.shape[0] / bgr.shape[1]))
    else:
        new_w, new_h = width, int(width * (bgr.shape[0] / bgr.shape[1]))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(bgr, (new_w, new_h))
    return canvas, float(new_h) / bgr.shape[0]


class InsightFaceTorchBackend:
    """``detect`` / ``detect_batch`` with an insightface pack's networks in torch (see the module docstring).

    det_size: the detector canvas side in pixels (square, 640 as in ConsistentID/InstantID); det_thresh: score
    threshold; cache_dir: where the converted graphs go (`onnx_graph.default_cache_dir`). Embeddings are raw
    (float32 [512]) as `InsightFaceBackend` gives them.
    """

    def __init__(
        self,
        pack: str = INSIGHTFACE_CONSISTENTID,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        det_size: int | tuple[int, int] = 640,
        det_thresh: float = 0.5,
        cache_dir: str | Path | None = None,
    ) -> None:
        folder = resolve_model_dir(pack, model_dir)
        files = PACKS[pack]
        self.device = torch.device(device)
        self.det_size = (det_size, det_size) if isinstance(det_size, int) else tuple(det_size)
        self.det_thresh = det_thresh
        detector = converted_graph(folder / files.detector, cache_dir)
        recognizer = converted_graph(folder / files.recognizer, cache_dir)
        self.strides, self.anchors, self.use_kps = scrfd_layout(len(detector.outputs))
        self.rec_mean, self.rec_std = arcface_normalisation(recognizer)
        self.detector = GraphModule(detector).to(self.device).eval()
        self.recognizer = GraphModule(recognizer).to(self.device).eval()
        self.model_dir = folder
        self._centers: dict[tuple[int, int, int], torch.Tensor] = {}

    def detect(self, rgb: np.ndarray, embed: bool = True) -> list[Face]:
        return self.detect_batch([rgb], embed)[0]

    @torch.no_grad()
    def detect_batch(self, rgbs: list[np.ndarray], embed: bool = True) -> list[list[Face]]:
        """Faces of each RGB uint8 [H, W, 3] photo (detector order: by score after NMS), one network call each."""
        if not rgbs:
            return []
        bgrs = [np.ascontiguousarray(rgb[:, :, ::-1]) for rgb in rgbs]
        canvases, scales = zip(*(letterbox(bgr, self.det_size) for bgr in bgrs), strict=True)
        detections = self._detect(np.stack(canvases), list(scales))
        faces = [[Face(bbox=d[:4], kps=k, score=float(d[4])) for d, k in zip(*det, strict=True)] for det in detections]
        if embed:
            crops = [norm_crop(bgr, face.kps, 112) for bgr, per in zip(bgrs, faces, strict=True) for face in per]
            embeddings = iter(self.embed_crops(np.stack(crops)) if crops else [])
            for per in faces:
                for face in per:
                    face.embedding = next(embeddings)
        return faces

    def _detect(self, canvases: np.ndarray, scales: list[float]) -> list[tuple[np.ndarray, np.ndarray]]:
        """uint8 BGR [B, h, w, 3] canvases -> per photo (dets float32 [F, 5], kps float32 [F, 5, 2]) after NMS."""
        x = torch.from_numpy(canvases).to(self.device)
        blob = ((x.flip(-1).permute(0, 3, 1, 2).float() - SCRFD_MEAN) / SCRFD_STD).contiguous()
        outputs = self.detector(blob)
        batch, n = x.shape[0], len(self.strides)
        per_image: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(batch)]
        for level, stride in enumerate(self.strides):
            scores = outputs[level].reshape(batch, -1)
            boxes = outputs[level + n].reshape(batch, scores.shape[1], -1) * stride
            kps = outputs[level + 2 * n].reshape(batch, scores.shape[1], -1) * stride if self.use_kps else None
            centers = self._anchor_centers(blob.shape[2] // stride, blob.shape[3] // stride, stride)
            for b in range(batch):
                keep = torch.nonzero(scores[b] >= self.det_thresh).reshape(-1)
                c = centers[keep]
                d = boxes[b, keep]
                box = torch.stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]], -1)
                points = (c.repeat(1, 5) + kps[b, keep]) if kps is not None else torch.zeros(len(keep), 10)
                per_image[b].append(
                    (scores[b, keep].cpu().numpy(), box.cpu().numpy(), points.reshape(-1, 5, 2).cpu().numpy())
                )
        return [self._select(levels, scale) for levels, scale in zip(per_image, scales, strict=True)]

    @staticmethod
    def _select(levels: list[tuple[np.ndarray, ...]], scale: float) -> tuple[np.ndarray, np.ndarray]:
        """One photo's candidates of every stride -> (dets, kps) ordered by score and NMS'd, in photo pixels."""
        scores = np.concatenate([s for s, _, _ in levels])
        if scores.size == 0:
            return np.empty((0, 5), np.float32), np.empty((0, 5, 2), np.float32)
        boxes = np.concatenate([b for _, b, _ in levels]) / scale
        kps = np.concatenate([k for _, _, k in levels]) / scale
        order = np.argsort(-scores, kind="stable")
        dets = np.hstack([boxes, scores[:, None]]).astype(np.float32)[order]
        keep = nms(dets)
        return dets[keep], kps[order][keep].astype(np.float32)

    def _anchor_centers(self, height: int, width: int, stride: int) -> torch.Tensor:
        """(x, y) of every anchor of a stride's ``height`` x ``width`` grid, anchor-major within a cell: [N, 2]."""
        key = (height, width, stride)
        if key not in self._centers:
            ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
            centers = (torch.stack([xs, ys], -1).float() * stride).reshape(-1, 2)
            self._centers[key] = centers.repeat_interleave(self.anchors, dim=0).to(self.device)
        return self._centers[key]

    @torch.no_grad()
    def embed_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """Raw ArcFace embeddings float32 [F, D] of aligned BGR uint8 crops [F, 112, 112, 3], one network call."""
        x = torch.from_numpy(np.ascontiguousarray(crops_bgr)).to(self.device)
        blob = ((x.flip(-1).permute(0, 3, 1, 2).float() - self.rec_mean) / self.rec_std).contiguous()
        return self.recognizer(blob)[0].reshape(len(crops_bgr), -1).float().cpu().numpy()
