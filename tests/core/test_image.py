"""Photos in: EXIF focal length and orientation, odd pixel formats, and unusable files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from sharp_addon.errors import ImageError
from sharp_addon.image import focal_35mm_to_px, load_photo

DIAGONAL_MM = math.hypot(36, 24)


def save_with_exif(path, size=(64, 48), **tags):
    img = Image.fromarray(np.arange(size[0] * size[1] * 3, dtype=np.uint8).reshape(size[1], size[0], 3))
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    for tag, value in tags.items():
        code = {"focal35": 0xA405, "focal": 0x920A}.get(tag)
        if code:
            ifd[code] = value
        elif tag == "orientation":
            exif[0x0112] = value
    img.save(path, exif=exif)
    return img


def test_no_exif_gives_the_30mm_default_the_reference_uses(tmp_path):
    Image.new("RGB", (640, 480)).save(tmp_path / "a.png")
    photo = load_photo(tmp_path / "a.png")
    assert photo.focal_px == pytest.approx(554.7001962, abs=1e-6)  # docs/model.md's example
    assert photo.size_wh == (640, 480) and photo.pixels.dtype == np.uint8


@pytest.mark.parametrize(("tags", "focal_35mm"), [
    ({"focal35": 26}, 26.0),
    ({"focal35": 0, "focal": 50.0}, 50.0),
    ({"focal": 4.25}, 4.25 * 8.4),  # a phone's true focal length
])
def test_exif_focal_length(tmp_path, tags, focal_35mm):
    save_with_exif(tmp_path / "a.jpg", **tags)
    photo = load_photo(tmp_path / "a.jpg")
    assert photo.focal_35mm == pytest.approx(focal_35mm)
    assert photo.focal_px == pytest.approx(focal_35mm * math.hypot(64, 48) / DIAGONAL_MM, rel=1e-6)


def test_user_focal_overrides(tmp_path):
    save_with_exif(tmp_path / "a.jpg", focal35=26)
    assert load_photo(tmp_path / "a.jpg", focal_35mm=50).focal_px == pytest.approx(focal_35mm_to_px(50, (64, 48)))
    assert load_photo(tmp_path / "a.jpg", focal_px=123.0).focal_px == 123.0
    with pytest.raises(ImageError, match="positive number of pixels"):
        load_photo(tmp_path / "a.jpg", focal_px=-1.0)


@pytest.mark.parametrize(("orientation", "shape"), [(1, (48, 64)), (3, (48, 64)), (6, (64, 48)), (8, (64, 48))])
def test_exif_orientation(tmp_path, orientation, shape):
    original = save_with_exif(tmp_path / "a.png", orientation=orientation)
    pixels = load_photo(tmp_path / "a.png").pixels
    assert pixels.shape[:2] == shape
    src = np.asarray(original)
    expected = {1: src, 3: np.rot90(src, 2), 6: np.rot90(src, -1), 8: np.rot90(src, 1)}[orientation]
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "1"])
def test_odd_pixel_formats_become_8bit_rgb(tmp_path, mode):
    img = Image.new("RGB", (20, 10), (200, 100, 50)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.full((10, 20), 40000, np.uint16))
    ext = "tiff" if mode in ("CMYK", "I;16") else "png"
    img.save(tmp_path / f"a.{ext}")
    pixels = load_photo(tmp_path / f"a.{ext}").pixels
    assert pixels.shape == (10, 20, 3) and pixels.dtype == np.uint8
    if mode == "I;16":
        assert pixels[0, 0].tolist() == [156, 156, 156]  # 40000 / 65535 * 255
    if mode == "RGBA":
        assert pixels[0, 0].tolist() == [200, 100, 50]


def test_arrays_of_other_types():
    assert load_photo(np.zeros((4, 5), np.uint8)).pixels.shape == (4, 5, 3)
    assert load_photo(np.ones((4, 5, 3), np.float32)).pixels.max() == 255
    assert load_photo(np.full((4, 5, 4), 65535, np.uint16)).pixels.tolist()[0][0] == [255, 255, 255]
    with pytest.raises(ImageError, match="unsupported pixel type"):
        load_photo(np.zeros((4, 5, 3), np.int64))


def test_unusable_images_name_the_file(tmp_path):
    with pytest.raises(ImageError, match=rf"image '{tmp_path / 'no.jpg'}': no such file"):
        load_photo(tmp_path / "no.jpg")
    with pytest.raises(ImageError, match=rf"image '{tmp_path}': is a folder, not an image file"):
        load_photo(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ImageError, match=r"bad.jpg': cannot be read as an image"):
        load_photo(tmp_path / "bad.jpg")
    good = tmp_path / "cut.png"
    Image.new("RGB", (300, 300), (1, 2, 3)).save(good)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageError, match="cannot be read as an image"):
        load_photo(tmp_path / "truncated.png")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(ImageError, match="is 1 x 1 pixels; at least 2 x 2"):
        load_photo(tmp_path / "dot.png")
    with pytest.raises(ImageError, match="expected an image path"):
        load_photo(42)


# ---- every decoder failure is an ImageError naming the file ---------------------------------------------


@pytest.mark.parametrize("error", [SyntaxError("broken PNG file"), __import__("struct").error("unpack requires 4"),
                                   __import__("zlib").error("Error -3 while decompressing"), ValueError("bad"),
                                   TypeError("bad"), IndexError("index out of range"), NotImplementedError("new"),
                                   AssertionError(), MemoryError(), OSError("image file is truncated")],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("stage", ["load", "convert", "transpose"])
def test_any_exception_while_decoding_is_an_image_error(tmp_path, monkeypatch, error, stage):
    """Pillow decodes lazily: open, load, transpose and convert may each raise anything."""
    from PIL import ImageFile

    save_with_exif(tmp_path / "a.png", orientation=6)  # so that transpose runs

    def fail(*args, **kwargs):
        raise error

    target = ImageFile.ImageFile if stage == "load" else Image.Image
    monkeypatch.setattr(target, stage, fail)
    with pytest.raises(ImageError) as info:
        load_photo(tmp_path / "a.png")
    message = str(info.value)
    assert message.startswith(f"image '{tmp_path / 'a.png'}': cannot be read as an image (") and "\n" not in message
    assert info.value.path == str(tmp_path / "a.png")


def test_a_decompression_bomb_is_an_image_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 64 x 48 photo is then 15 times too large
    save_with_exif(tmp_path / "a.png")
    with pytest.raises(ImageError, match=r"a.png': cannot be read as an image \(Image size \(3072 pixels\) exceeds"):
        load_photo(tmp_path / "a.png")


def test_a_pil_image_that_fails_to_decode_says_so(tmp_path):
    good = tmp_path / "a.png"
    save_with_exif(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ImageError, match=r"^the PIL image cannot be decoded \("):
        load_photo(Image.open(tmp_path / "cut.png"))


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_without_opening_it(tmp_path):
    import os

    os.mkfifo(tmp_path / "a.png")  # opening it would block until someone writes
    with pytest.raises(ImageError, match=r"a.png': is a named pipe, not an image file$"):
        load_photo(tmp_path / "a.png")


def test_float_images_with_inf_and_nan(tmp_path):
    a = np.full((4, 6), 0.5, np.float32)
    a[0, 0], a[1, 1], a[2, 2] = np.inf, np.nan, -np.inf
    Image.fromarray(a, "F").save(tmp_path / "a.tif")
    pixels = load_photo(tmp_path / "a.tif").pixels
    assert pixels[3, 3].tolist() == [128] * 3  # [0, 1] floats: inf does not make the rest look dark
    assert (pixels[0, 0].tolist(), pixels[1, 1].tolist(), pixels[2, 2].tolist()) == ([255] * 3, [0] * 3, [0] * 3)


def test_odd_exif_values_are_ignored(tmp_path):
    save_with_exif(tmp_path / "a.jpg", orientation=99)
    assert load_photo(tmp_path / "a.jpg").size_wh == (64, 48)
