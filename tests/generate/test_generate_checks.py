"""Generation options checked before any model loads."""

from __future__ import annotations

import pytest

from idportrait.errors import UserError
from idportrait.generate.checks import check_face_models, check_finite, check_image_size, check_output_folder


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scales_are_refused(value):
    with pytest.raises(UserError, match=f"--guidance {value}: must be a finite number"):
        check_finite("--guidance", value)


def test_finite_and_unset_scales_pass():
    check_finite("--guidance", 7.5)
    check_finite("--id-scale", None)


@pytest.mark.parametrize(("value", "nearest"), [(63, 64), (0, 8), (-16, 8), (100, 96)])
def test_sizes_must_be_positive_multiples_of_8(value, nearest):
    with pytest.raises(UserError, match=rf"--height {value}: must be a positive multiple of 8 \(e\.g\. {nearest}\)"):
        check_image_size("--height", value)
    check_image_size("--height", 64)
    check_image_size("--height", None)


def test_output_folder_may_be_new_or_a_folder_but_not_a_file(tmp_path):
    check_output_folder(tmp_path / "new")
    check_output_folder(tmp_path)
    (tmp_path / "taken.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"taken\.png: --out must be a folder"):
        check_output_folder(tmp_path / "taken.png")


def test_face_model_names():
    check_face_models("insightface:antelopev2", "landmarks")
    check_face_models(None, None)
    with pytest.raises(UserError, match="unknown face analyzer 'retinaface'"):
        check_face_models("retinaface", None)
    with pytest.raises(UserError, match="unknown face parser 'sam'"):
        check_face_models("dlib", "sam")
