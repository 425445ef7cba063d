"""Command-line options that `generate`, `generate-batch` and `serve` share, declared once (typer ``Annotated``).

Kept free of heavy imports: the CLI reads these when it starts.
"""

from __future__ import annotations

from typing import Annotated

import typer

MethodName = Annotated[
    str, typer.Option(help="consistentid, consistentid-sdxl, ipadapter-faceid, instantid, plain-sd.")
]
Base = Annotated[str | None, typer.Option(help="Base model: hub id or local diffusers folder (default: the method's).")]
Adapter = Annotated[
    str | None, typer.Option(help="Method checkpoint: hub repo, folder or file (default: the method's release).")
]
Guidance = Annotated[
    float | None,
    typer.Option(
        help="Classifier-free guidance scale [5.0; consistentid-sdxl 7.5; the accelerator's with --accelerator]."
    ),
]
Accelerator = Annotated[
    str | None, typer.Option(help="Few-step LoRA: lcm, hyper-sd or tcd (4 steps, guidance 1, its scheduler).")
]
AcceleratorWeights = Annotated[
    str | None, typer.Option(help="The accelerator's LoRA file, folder or hub repo (default: the registry's).")
]
Compile = Annotated[
    bool, typer.Option(help="torch.compile the UNet and InstantID's IdentityNet (channels_last; slow first image).")
]
CompileMode = Annotated[
    str | None,
    typer.Option(help="default, reduce-overhead (CUDA graphs per batch and size) or max-autotune; implies --compile."),
]
FaceBackend = Annotated[
    str | None,
    typer.Option(
        help="insightface:buffalo_l, insightface:antelopev2, insightface-torch:<pack> or dlib (default: the method's)."
    ),
]
MethodOptions = Annotated[
    list[str],
    typer.Option("--set", help="Method option KEY=VALUE (e.g. variant=faceid-plusv2, sdxl=true); repeatable."),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")]
Dtype = Annotated[str, typer.Option(help="auto (fp16 on GPU, fp32 on CPU), float32, float16, bfloat16.")]
