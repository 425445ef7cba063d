"""Per-identity preparation, piece by piece: insightface on onnxruntime vs the torch path, one photo vs a batch.

    python benchmarks/face_prep.py                       # CPU, real-size stand-ins (SCRFD-10G-like + IResNet-50)
    python benchmarks/face_prep.py --device cuda         # the torch path on the GPU (onnxruntime stays on the CPU
                                                         # unless onnxruntime-gpu is installed: the `gpu` extra)

Packs: random-weight stand-ins of the real architectures exported to ONNX (benchmarks/face_nets.py), scores
calibrated on the astronaut photo to find one face there. Rows, ms per photo (fastest of ``--repeats`` after a
warm-up), each pair in one run: detection + ArcFace with onnxruntime and with torch, photo by photo and ``--batch``
photos per call; BiSeNet (random weights) per photo and batched; the ConsistentID region images + CLIP
preprocessing with PIL and in torch.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
import torch
from consistentid_attention import time_ms
from face_nets import write_random_pack

from idportrait.faces.bisenet import BiSeNet
from idportrait.faces.insightface_backend import InsightFaceBackend
from idportrait.faces.insightface_torch import InsightFaceTorchBackend
from idportrait.faces.parsing import BiSeNetParser, region_images, region_tensors
from idportrait.pipelines.clip_processor import clip_image_processor
from idportrait.pipelines.face_inputs import clip_pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    photo = skimage.data.astronaut()
    photos = [photo] * args.batch
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        pack = write_random_pack(Path(tmp) / "buffalo_l", "buffalo_l", photo_rgb=photo, passing=1)
        onnxruntime_backend = InsightFaceBackend("buffalo_l", pack, device=args.device)
        torch_backend = InsightFaceTorchBackend("buffalo_l", pack, device=args.device, cache_dir=Path(tmp) / "onnx")
        faces = len(torch_backend.detect(photo))
        per = lambda fn: time_ms(fn, args.repeats)  # noqa: E731
        batched = lambda fn: time_ms(fn, args.repeats) / args.batch  # noqa: E731
        rows.append(("SCRFD + ArcFace, onnxruntime, 1 photo/call", per(lambda: onnxruntime_backend.detect(photo)), ""))
        rows.append(("SCRFD + ArcFace, torch, 1 photo/call", per(lambda: torch_backend.detect(photo)), ""))
        rows.append((f"SCRFD + ArcFace, onnxruntime, {args.batch} photos/call",
                     batched(lambda: onnxruntime_backend.detect_batch(photos)), "embeddings batched"))  # fmt: skip
        rows.append((f"SCRFD + ArcFace, torch, {args.batch} photos/call",
                     batched(lambda: torch_backend.detect_batch(photos)), "one network call each"))  # fmt: skip

        bisenet = BiSeNetParser(BiSeNet().eval().to(args.device))
        rows.append(("BiSeNet 512, 1 photo/call", per(lambda: bisenet.parse(photo)), ""))
        rows.append((f"BiSeNet 512, {args.batch} photos/call", batched(lambda: bisenet.parse_batch(photos)), ""))

        parsing = bisenet.parse(photo)
        processor = clip_image_processor()

        def pil_crops() -> torch.Tensor:
            return processor(images=[photo, *region_images(photo, parsing)], return_tensors="pt").pixel_values

        def torch_crops() -> torch.Tensor:
            x = torch.from_numpy(np.array(photo)).to(args.device).permute(2, 0, 1).float()
            return clip_pixels([x, *region_tensors(x, parsing)], processor)

        regions = len(parsing.regions)
        rows.append((f"region images + CLIP pixels, PIL ({regions} regions)", per(pil_crops), "CPU"))
        rows.append((f"region images + CLIP pixels, torch ({regions} regions)", per(torch_crops), args.device))

    print(f"per-identity preparation pieces, astronaut 512x512 ({faces} stand-in faces), device {args.device}, "
          f"torch threads {torch.get_num_threads()}, fastest of {args.repeats}")  # fmt: skip
    print(f"{'step':<52} {'ms/photo':>9}  note")
    for name, ms, note in rows:
        print(f"{name:<52} {ms:>9.1f}  {note}")


if __name__ == "__main__":
    main()
