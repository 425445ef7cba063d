"""``idportrait faces``: detect faces, parse a face, and check insightface model folders.

idportrait faces detect photo.jpg group.jpg --analyzer dlib --out outputs/faces
idportrait faces parse photo.jpg --parser bisenet --weights face_parsing.pth --out outputs/parse
idportrait faces check-models --pack antelopev2 --model-dir ~/models/insightface
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idportrait.registry import FACE_BACKEND_CONSISTENTID

app = typer.Typer(help="Face analysis: detect, parse, check model folders.", no_args_is_help=True)


@app.command("detect")
def detect(
    photos: Annotated[list[Path], typer.Argument(help="Photos to analyse.")],
    analyzer: Annotated[
        str,
        typer.Option(help="insightface:buffalo_l, insightface:antelopev2, insightface-torch:<pack>, dlib or dlib:cnn."),
    ] = FACE_BACKEND_CONSISTENTID,
    model_dir: Annotated[Path | None, typer.Option(help="Folder holding the insightface pack.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 or auto.")] = "cpu",
    det_size: Annotated[int, typer.Option(help="Detector input size (insightface).")] = 640,
    out: Annotated[Path, typer.Option(help="Output folder for faces.json.")] = Path("outputs/faces"),
) -> None:
    """Detect every face (largest first) and write boxes, keypoints, scores and embeddings to faces.json."""
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from idportrait.faces import get_face_analyzer
    from idportrait.imageio import check_output_folder, load_image, write_json

    check_output_folder(out)
    face_analyzer = get_face_analyzer(analyzer, model_dir=model_dir, device=device, det_size=det_size)
    table = Table("photo", "faces", "largest bbox (x1, y1, x2, y2)", "score", "size px")
    records = []
    for path in track(photos, description="detecting", transient=True):
        faces = face_analyzer.detect(load_image(path))
        records.append({"photo": str(path), "analyzer": face_analyzer.name, "faces": [_face_json(f) for f in faces]})
        top = faces[0] if faces else None
        table.add_row(
            str(path),
            str(len(faces)),
            ", ".join(f"{v:.0f}" for v in top.bbox) if top else "-",
            f"{top.score:.2f}" if top else "-",
            f"{top.size:.0f}" if top else "-",
        )
    write_json(out / "faces.json", records)
    console = Console()
    console.print(table)
    console.print(f"faces written to {out / 'faces.json'}")


@app.command("parse")
def parse(
    photo: Annotated[Path, typer.Argument(help="Photo of one face.")],
    parser: Annotated[str, typer.Option(help="bisenet (ConsistentID's) or landmarks (offline).")] = "bisenet",
    weights: Annotated[Path | None, typer.Option(help="BiSeNet face_parsing.pth (default: hub file).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (BiSeNet).")] = "cpu",
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/parse"),
) -> None:
    """Write the label map (labels.png, class ids), an overlay and ConsistentID's region images."""
    import numpy as np
    from PIL import Image
    from rich.console import Console

    from idportrait.faces import get_face_parser, region_images
    from idportrait.faces.analyzer import check_parser_name
    from idportrait.imageio import check_output_folder, load_image, save_image

    check_parser_name(parser)
    check_output_folder(out)
    image = load_image(photo)
    parsing = get_face_parser(parser, weights=weights, device=device).parse(image)
    palette = np.random.default_rng(0).integers(40, 255, size=(256, 3), dtype=np.uint8)
    palette[0] = 0
    colours = Image.fromarray(palette[parsing.labels]).resize(image.size, Image.NEAREST)
    save_image(out / "labels.png", Image.fromarray(parsing.labels))
    save_image(out / "overlay.png", Image.blend(image, colours, 0.5))
    for k, (name, crop) in enumerate(zip(parsing.regions, region_images(image, parsing), strict=True)):
        save_image(out / f"region_{k}_{name}.png", crop)
    Console().print(f"regions {', '.join(parsing.regions) or '(none)'}; label map, overlay and region images in {out}")


@app.command("check-models")
def check_models(
    pack: Annotated[str, typer.Option(help="buffalo_l or antelopev2.")] = "buffalo_l",
    model_dir: Annotated[Path | None, typer.Option(help="Folder to check (default ~/.insightface/models).")] = None,
) -> None:
    """Check that an insightface pack is where the analyzer will look, and print what it will load."""
    from rich.console import Console

    from idportrait.faces.insightface_backend import PACKS, resolve_model_dir

    folder = resolve_model_dir(pack, model_dir)
    files = PACKS[pack]
    sizes = {name: (folder / name).stat().st_size / 1e6 for name in (files.detector, files.recognizer)}
    Console().print(f"{pack} found in {folder}: " + ", ".join(f"{n} ({mb:.1f} MB)" for n, mb in sizes.items()))


def _face_json(face) -> dict:
    return {
        "bbox": [round(float(v), 2) for v in face.bbox],
        "kps": [[round(float(x), 2), round(float(y), 2)] for x, y in face.kps],
        "score": round(face.score, 4),
        "embedding": None if face.embedding is None else [float(v) for v in face.embedding],
    }
