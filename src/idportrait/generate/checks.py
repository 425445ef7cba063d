"""Checks of generation options that run before any model loads: each failure is one `UserError` line."""

from __future__ import annotations

import math

from idportrait.errors import UserError
from idportrait.imageio import check_output_folder as check_output_folder  # shared with faces/, below generate/


def check_finite(option: str, value: float | None) -> None:
    """``--guidance`` / ``--id-scale``: nan and inf give black images and settings.json that is not JSON."""
    if value is not None and not math.isfinite(value):
        raise UserError(f"{option} {value}: must be a finite number")


def check_image_size(option: str, value: int | None) -> None:
    """``--height`` / ``--width`` in pixels: positive multiples of 8 (the VAE's downsampling), no silent rounding."""
    problem = None if value is None else size_problem(value)
    if problem:
        raise UserError(f"{option} {value}: {problem}")


def size_problem(pixels: int) -> str | None:
    """Why ``pixels`` cannot be an image side (None when it can): every side is a positive multiple of 8."""
    if pixels > 0 and pixels % 8 == 0:
        return None
    return f"must be a positive multiple of 8 (e.g. {max(8, round(pixels / 8) * 8)})"


def check_face_models(face_backend: str | None, parser: str | None) -> None:
    """``--face-backend`` / ``--parser`` names (None: the method's default)."""
    from idportrait.faces.analyzer import check_analyzer_name, check_parser_name

    if face_backend is not None:
        check_analyzer_name(face_backend)
    if parser is not None:
        check_parser_name(parser)
