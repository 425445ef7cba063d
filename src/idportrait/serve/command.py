"""``idportrait serve``: the gradio web demo on a local port.

    idportrait serve --method consistentid --method ipadapter-faceid --port 7860
    idportrait serve --method consistentid --controlnet canny      # control images too

Methods are loaded on first use and kept; generated PNGs (seed in the metadata) go to ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idportrait import registry
from idportrait.generate.options import Device, Dtype


def serve(
    method: Annotated[
        list[str], typer.Option("--method", "-m", help="Method offered in the demo; repeat for several.")
    ] = ["consistentid"],  # noqa: B006 (typer reads the default, nothing mutates it)
    base: Annotated[str | None, typer.Option(help="Base model (hub id or folder); default: each method's.")] = None,
    face_backend: Annotated[
        str, typer.Option(help="insightface:buffalo_l or dlib (offline).")
    ] = registry.FACE_BACKEND_CONSISTENTID,
    masks: Annotated[
        str, typer.Option(help="Parser for the mask view: landmarks (offline), bisenet or none.")
    ] = "landmarks",
    controlnet: Annotated[
        str | None,
        typer.Option(help="ControlNet of the ConsistentID methods: canny, openpose, inpaint, a hub id or a folder."),
    ] = None,
    set_: Annotated[
        list[str],
        typer.Option(
            "--set", help="Option KEY=VALUE for every method offered; each must take it (e.g. size=[768,768])."
        ),
    ] = [],  # noqa: B006 (typer reads the default, nothing mutates it)
    device: Device = "auto",
    dtype: Dtype = "auto",
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 = every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    out: Annotated[Path, typer.Option(help="Folder for the generated PNGs.")] = Path("outputs/serve"),
) -> None:
    """Serve the web demo: upload a photo, pick a method and a style, download portraits."""
    from rich.console import Console

    from idportrait.devices import resolve_device
    from idportrait.errors import UserError
    from idportrait.generate.checks import check_face_models, check_output_folder
    from idportrait.generate.method_options import method_options
    from idportrait.generate.mode_options import CONSISTENTID_METHODS
    from idportrait.methods import METHODS, load_method
    from idportrait.serve.address import check_listen_address
    from idportrait.serve.app import MAX_UPLOAD_MB, Demo, build_app

    unknown = [m for m in method if m not in METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; available: {', '.join(sorted(METHODS))}")
    if controlnet is not None and not set(method) & set(CONSISTENTID_METHODS):
        raise UserError("--controlnet applies to the ConsistentID methods; add --method consistentid")
    check_output_folder(out)
    check_face_models(face_backend, None if masks == "none" else masks)
    check_listen_address(host, port)
    extra = {name: method_options(name, set_, {"face_backend": "--face-backend"}) for name in method}
    resolve_device(device, dtype)
    parse = None
    if masks != "none":
        from idportrait.faces import get_face_parser

        parse = get_face_parser(masks).parse

    def load(name: str):
        faces = {} if name == "plain-sd" else {"face_backend": face_backend}
        control = {"controlnet": controlnet} if controlnet is not None and name in CONSISTENTID_METHODS else {}
        return load_method(name, base=base, device=device, dtype=dtype, **faces, **control, **extra[name])

    demo = Demo(methods=list(method), load=load, parse=parse, out_dir=out)
    Console(stderr=True).print(f"serving on http://{host}:{port}/ ; images are written to {out}")
    build_app(demo).launch(server_name=host, server_port=port, max_file_size=f"{MAX_UPLOAD_MB:.0f}mb")
