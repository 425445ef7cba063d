"""A `Demo` over IP-Adapter-FaceID and ConsistentID (with a ControlNet) on tiny SD1.5 bases, with the offline
dlib face analyzer and the landmark parser: the same objects `idportrait serve` builds, small enough for CPU tests."""

from __future__ import annotations

from pathlib import Path

import torch

from idportrait.faces import get_face_analyzer, get_face_parser
from idportrait.methods.ipadapter_faceid import load_ipadapter_faceid_method
from idportrait.serve.app import Demo
from idportrait.tiny import random_faceid_checkpoint, save_tiny_sd15, tiny_controlnet, tiny_unet

DLIB_EMBEDDING_DIM = 128


def tiny_demo(root: Path) -> Demo:
    """Methods ``ipadapter-faceid`` and ``consistentid`` (the `idportrait demo` models and a tiny ControlNet),
    2 steps each."""
    from idportrait.demo import build_demo_models
    from idportrait.methods.consistentid import load_consistentid_method

    base = save_tiny_sd15(root / "sd15")
    ckpt = root / "ip-adapter-faceid.bin"
    torch.save(random_faceid_checkpoint(tiny_unet(), id_dim=DLIB_EMBEDDING_DIM), ckpt)
    analyzer = get_face_analyzer("dlib")
    tiny_controlnet().save_pretrained(root / "controlnet")

    def load(name: str):
        if name == "consistentid":
            cid_base, adapter = build_demo_models(root / "consistentid")
            return load_consistentid_method(
                base=str(cid_base),
                adapter=str(adapter),
                face_backend="dlib",
                parser="landmarks",
                device="cpu",
                dtype="float32",
                num_inference_steps=2,
                controlnet=str(root / "controlnet"),
            )
        return load_ipadapter_faceid_method(base, "faceid", adapter=ckpt, detect=analyzer.detect, num_inference_steps=2)

    methods = ["ipadapter-faceid", "consistentid"]
    return Demo(methods=methods, load=load, parse=get_face_parser("landmarks").parse, out_dir=root / "out")
