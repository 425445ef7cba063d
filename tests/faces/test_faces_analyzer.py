"""Factories and bad input: clear, specific errors, nothing crashes."""

import struct
import zlib

import numpy as np
import pytest
import torch
from faces_photos import astronaut, negatives
from PIL import Image

from idportrait.errors import ImageError, NoFaceError, UserError
from idportrait.faces import get_face_analyzer, get_face_parser
from idportrait.faces.image import as_rgb_array
from idportrait.imageio import load_image
from recipe import recipe_state_dict


@pytest.fixture(scope="module")
def analyzer():
    return get_face_analyzer("dlib")


def test_no_face_names_the_file(analyzer):
    with pytest.raises(NoFaceError, match=r"coffee\.jpg: no face found \(dlib:hog\)"):
        analyzer.largest_face(negatives()["coffee"], "coffee.jpg")


def test_face_in_a_16_bit_grayscale_png_is_found(analyzer, tmp_path):
    gray = np.asarray(Image.fromarray(astronaut()).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray).save(tmp_path / "gray16.png")
    assert len(analyzer.detect(load_image(tmp_path / "gray16.png"), embed=False)) == 1


def test_too_many_and_too_small_faces(analyzer):
    two = np.concatenate([astronaut()[:256], astronaut()[:256]], axis=1)
    assert len(analyzer.detect(two, embed=False)) == 2
    with pytest.raises(NoFaceError, match=r"two\.png: 2 faces found, at most 1 allowed"):
        analyzer.largest_face(two, "two.png", max_faces=1)
    with pytest.raises(NoFaceError, match=r"too small \(9\d px, at least 200 px"):
        analyzer.largest_face(astronaut(), "a.png", min_size=200)
    tiny = np.asarray(Image.fromarray(astronaut()).resize((64, 64)))  # face of about 11 px: not detected
    with pytest.raises(NoFaceError, match="no face found"):
        analyzer.largest_face(tiny, "tiny.png")


def test_corrupt_and_truncated_images(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError, match=r"junk\.jpg"):
        load_image(tmp_path / "junk.jpg")
    Image.fromarray(astronaut()).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"cut\.jpg: corrupt or truncated"):
        load_image(tmp_path / "cut.jpg")


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_hundred_megapixel_images_are_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header(10_000, 10_000))
    with pytest.raises(ImageError, match=r"bomb\.png: image too large \(10000x10000 = 100 MP"):
        load_image(tmp_path / "bomb.png")
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (10_000, 10_000, 3))  # no memory allocated
    with pytest.raises(ImageError, match="too large"):
        as_rgb_array(huge, "huge")


def test_wrong_arrays_and_names(analyzer):
    with pytest.raises(ImageError, match=r"expected an RGB uint8 array \[H, W, 3\], got float32"):
        analyzer.detect(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ImageError, match="empty image"):
        analyzer.detect(np.zeros((0, 8, 3), np.uint8))
    assert as_rgb_array(Image.new("L", (4, 3))).shape == (3, 4, 3)
    with pytest.raises(UserError, match="unknown face analyzer 'mtcnn'"):
        get_face_analyzer("mtcnn")
    with pytest.raises(UserError, match="unknown face analyzer 'dlib:mmod'"):
        get_face_analyzer("dlib:mmod")
    with pytest.raises(UserError, match="unknown face parser 'segformer'"):
        get_face_parser("segformer")


def test_bisenet_parser_from_a_local_checkpoint(tmp_path):
    torch.save(recipe_state_dict("bisenet_manifest.json", conv_he=True), tmp_path / "face_parsing.pth")
    parser = get_face_parser("bisenet", weights=tmp_path / "face_parsing.pth")
    parsing = parser.parse(Image.fromarray(astronaut()))
    assert parsing.labels.shape == (512, 512) and parsing.labels.max() < 19


def test_detect_batch_equals_detect_per_image(analyzer):
    two = np.concatenate([astronaut()[:256], astronaut()[:256]], axis=1)
    images = [astronaut(), negatives()["coffee"], two]
    batch = analyzer.detect_batch(images, embed=True)
    assert [len(faces) for faces in batch] == [1, 0, 2]
    for image, faces in zip(images, batch, strict=True):
        single = analyzer.detect(image, embed=True)
        assert [f.bbox.tolist() for f in faces] == [f.bbox.tolist() for f in single]
        assert all(np.array_equal(a.embedding, b.embedding) for a, b in zip(faces, single, strict=True))
