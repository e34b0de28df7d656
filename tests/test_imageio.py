"""Tests for edge_runtime.imageio: decoding real files and refusing broken ones with clear messages."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from edge_runtime import constants
from edge_runtime.imageio import ImageError, decode_image, load_image, sniff_format


def _encode(image: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, file_format, **options)
    return buffer.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _blocky_rgb(height: int = 30, width: int = 50) -> np.ndarray:
    """An RGB image of flat 5x5 blocks, so that JPEG keeps it nearly exact and any turn shows."""
    generator = np.random.default_rng(7)
    blocks = generator.integers(0, 256, (height // 5, width // 5, 3), dtype=np.uint8)
    return cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture
def write(tmp_path):
    def write_file(name: str, data: bytes):
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write_file


# --- refusals ---------------------------------------------------------------------------------


def test_empty_file_is_refused_with_its_name(write):
    path = write("scan.png", b"")
    with pytest.raises(ImageError, match=r"scan\.png: file is empty \(0 bytes\)") as caught:
        load_image(path)
    assert caught.value.path == str(path)
    assert caught.value.reason == "file is empty (0 bytes)"


def test_text_file_is_not_an_image(write):
    path = write("notes.jpg", b"shopping list\n- milk\n")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image \(starts with b'shopping'\): a text file"):
        load_image(path)


def test_pdf_is_named_as_such(write):
    path = write("x.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj")
    with pytest.raises(ImageError, match=r"x\.jpg: not an image \(starts with b'%PDF-1\.7'\): a PDF document"):
        load_image(path)


def test_unknown_binary_is_not_an_image(write):
    path = write("blob.png", bytes(range(200, 256)) * 4)
    with pytest.raises(ImageError, match=r"blob\.png: not an image \(starts with b'\\xc8"):
        load_image(path)


def test_gif_is_refused_as_unsupported(write):
    path = write("anim.gif", _encode(Image.new("L", (8, 8)), "GIF"))
    with pytest.raises(ImageError, match=r"anim\.gif: GIF images are not supported"):
        load_image(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_truncated_jpeg_is_refused(write, keep):
    data = _encode(Image.fromarray(_blocky_rgb(120, 160)), "JPEG", quality=90)
    end = int(len(data) * keep) if keep > 0 else len(data) + keep
    path = write("photo.jpg", data[:end])
    with pytest.raises(ImageError, match=r"photo\.jpg: truncated or corrupt image data"):
        load_image(path)


@pytest.mark.parametrize("cut", [20, 60, 12])
def test_truncated_png_is_refused(write, cut):
    data = _encode(Image.fromarray(_blocky_rgb(60, 80)), "PNG")
    path = write("scan.png", data[:-cut] if cut != 60 else data[:60])
    with pytest.raises(ImageError, match=r"scan\.png: truncated or corrupt image data"):
        load_image(path)


def test_truncated_bmp_is_refused(write):
    data = _encode(Image.fromarray(_blocky_rgb(60, 80)), "BMP")
    path = write("old.bmp", data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"old\.bmp: truncated or corrupt image data"):
        load_image(path)


def test_jpeg_with_data_after_its_end_is_accepted():
    # Phones append extra data (a motion photo's video) after the JPEG's end marker.
    data = _encode(Image.fromarray(_blocky_rgb()), "JPEG", quality=95) + b"\x00ftypmp42" + bytes(300)
    assert decode_image(data).shape == (30, 50, 3)


def test_png_header_over_the_pixel_limit_is_refused_before_decoding(write):
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"") + _png_chunk(b"IEND", b"")
    path = write("huge.png", data)
    message = r"huge\.png: 10000000000 pixels \(100000x100000\) is above the limit of 50000000 \(MAX_IMAGE_PIXELS\)"
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_jpeg_frame_header_over_the_pixel_limit_is_refused():
    data = bytearray(_encode(Image.fromarray(_blocky_rgb()), "JPEG"))
    frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, 30_000, 30_000)  # height, width
    with pytest.raises(ImageError, match=r"big\.jpg: 900000000 pixels \(30000x30000\)"):
        decode_image(bytes(data), "big.jpg")


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        load_image(path)


def test_broken_symlink_is_refused(tmp_path):
    link = tmp_path / "latest.jpg"
    link.symlink_to(tmp_path / "deleted.jpg")
    with pytest.raises(ImageError, match=r"latest\.jpg: broken symbolic link \(points to .*deleted\.jpg"):
        load_image(link)


def test_folder_is_refused(tmp_path):
    folder = tmp_path / "photos.png"
    folder.mkdir()
    with pytest.raises(ImageError, match=r"photos\.png: is a folder, not an image file"):
        load_image(folder)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_refused(write):
    path = write("secret.png", _encode(Image.new("L", (4, 4)), "PNG"))
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match=r"secret\.png: permission denied"):
            load_image(path)
    finally:
        path.chmod(0o600)


def test_named_pipe_is_refused_without_blocking(tmp_path):
    pipe = tmp_path / "camera.png"
    os.mkfifo(pipe)
    with pytest.raises(ImageError, match=r"camera\.png: is not a regular file"):
        load_image(pipe)


def test_decode_takes_bytes_not_paths():
    with pytest.raises(TypeError, match="load_image"):
        decode_image("photo.jpg")


def test_image_error_survives_pickling():
    error = pickle.loads(pickle.dumps(ImageError("a.png", "file is empty (0 bytes)")))
    assert (error.path, error.reason) == ("a.png", "file is empty (0 bytes)")
    assert str(error) == "a.png: file is empty (0 bytes)"


# --- decoding ----------------------------------------------------------------------------------


def test_sniff_format_names_supported_kinds():
    assert sniff_format(_encode(Image.new("L", (4, 4)), "PNG")) == "png"
    assert sniff_format(_encode(Image.new("L", (4, 4)), "JPEG")) == "jpeg"
    assert sniff_format(_encode(Image.new("L", (4, 4)), "BMP")) == "bmp"
    assert sniff_format(_encode(Image.new("L", (4, 4)), "TIFF")) == "tiff"
    assert sniff_format(_encode(Image.new("RGB", (4, 4)), "WEBP")) == "webp"
    assert sniff_format(b"hello") is None


@pytest.mark.parametrize("file_format", ["PNG", "BMP", "TIFF", "WEBP"])
def test_colour_images_decode_to_bgr(file_format):
    rgb = _blocky_rgb()
    options = {"lossless": True} if file_format == "WEBP" else {}
    decoded = decode_image(_encode(Image.fromarray(rgb), file_format, **options), "x")
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, rgb[:, :, ::-1])


def test_gray_png_decodes_to_two_dimensions():
    gray = _blocky_rgb()[:, :, 0]
    np.testing.assert_array_equal(decode_image(_encode(Image.fromarray(gray), "PNG")), gray)


def test_gray_jpeg_decodes_to_two_dimensions():
    decoded = decode_image(_encode(Image.fromarray(_blocky_rgb()[:, :, 0]), "JPEG"))
    assert decoded.shape == (30, 50)


def test_sixteen_bit_png_is_scaled_not_truncated():
    ramp = np.linspace(0, 65535, 40 * 30).astype(np.uint16).reshape(30, 40)
    decoded = decode_image(cv2.imencode(".png", ramp)[1].tobytes())
    expected = np.round(ramp.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.max() == 255  # the high byte alone would be right too, but never rounds up


def test_sixteen_bit_colour_png_keeps_its_colours():
    bgr16 = np.zeros((10, 10, 3), np.uint16)
    bgr16[:, :, 2] = 65535  # red
    decoded = decode_image(cv2.imencode(".png", bgr16)[1].tobytes())
    assert decoded.shape == (10, 10, 3)
    assert tuple(decoded[0, 0]) == (0, 0, 255)


def test_dark_ink_on_transparent_background_reads_dark_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)  # black everywhere, visible only where alpha says so
    rgba[10:30, 18:22, 3] = 255  # an opaque stroke
    decoded = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded.ndim == 3
    assert decoded[0, 0].tolist() == [255, 255, 255]
    assert decoded[20, 20].tolist() == [0, 0, 0]


def test_light_ink_on_transparent_background_stays_visible():
    rgba = np.full((40, 40, 4), 255, np.uint8)
    rgba[:, :, 3] = 0
    rgba[10:30, 18:22, 3] = 255  # a white stroke on nothing
    decoded = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded[0, 0].tolist() == [0, 0, 0]
    assert decoded[20, 20].tolist() == [255, 255, 255]


def test_half_transparent_pixels_are_blended():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :, 3] = 128
    decoded = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert abs(int(decoded[0, 0, 0]) - 127) <= 1


def test_fully_opaque_alpha_is_dropped():
    rgb = _blocky_rgb()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    decoded = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    np.testing.assert_array_equal(decoded, rgb[:, :, ::-1])


def test_gray_with_alpha_decodes_to_gray():
    gray_alpha = np.zeros((20, 20, 2), np.uint8)
    gray_alpha[5:15, 5:15, 1] = 255  # a black square on a transparent background
    decoded = decode_image(_encode(Image.fromarray(gray_alpha, "LA"), "PNG"))
    assert decoded.shape == (20, 20)
    assert decoded[0, 0] == 255 and decoded[10, 10] == 0


def test_palette_png_is_expanded():
    indices = np.zeros((8, 8), np.uint8)
    indices[:, 4:] = 1
    palette_image = Image.fromarray(indices, "P")
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # 0 = red, 1 = blue
    decoded = decode_image(_encode(palette_image, "PNG"))
    assert decoded.shape == (8, 8, 3)
    assert decoded[0, 0].tolist() == [0, 0, 255]
    assert decoded[0, 7].tolist() == [255, 0, 0]


def test_palette_png_with_transparency_is_composited():
    indices = np.zeros((8, 8), np.uint8)
    indices[2:6, 2:6] = 1
    palette_image = Image.fromarray(indices, "P")
    palette_image.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    decoded = decode_image(_encode(palette_image, "PNG", transparency=0))
    assert decoded[0, 0].tolist() == [255, 255, 255]
    assert decoded[3, 3].tolist() == [0, 0, 0]


@pytest.mark.parametrize("file_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(file_format, orientation):
    options = {"quality": 95} if file_format != "PNG" else {}
    data = _encode(Image.fromarray(_blocky_rgb()), file_format, exif=_exif(orientation), **options)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB")))[:, :, ::-1]
    decoded = decode_image(data)
    assert decoded.shape == expected.shape
    assert np.abs(decoded.astype(int) - expected).mean() < 6


def test_rotated_jpeg_puts_the_dark_side_on_top():
    image = np.full((100, 200, 3), 255, np.uint8)
    image[:, :50] = 0  # dark left quarter; orientation 6 says "turn 90 degrees clockwise"
    decoded = decode_image(_encode(Image.fromarray(image), "JPEG", exif=_exif(6)))
    assert decoded.shape == (200, 100, 3)
    assert decoded[:40].mean() < 20 and decoded[60:].mean() > 230


def test_large_jpeg_is_decoded_reduced_and_still_upright():
    image = np.full((1800, 2400, 3), 255, np.uint8)
    image[:, :600] = 0
    data = _encode(Image.fromarray(image), "JPEG", quality=80, exif=_exif(6))
    decoded = decode_image(data, work_side=1024)
    assert decoded.shape == (1200, 900, 3)  # half of 2400x1800, turned upright
    assert decoded[:250].mean() < 20 and decoded[350:].mean() > 230
    assert decode_image(data, work_side=None).shape == (2400, 1800, 3)


def test_reduction_stays_near_the_working_side():
    data = _encode(Image.fromarray(np.zeros((300, 1500, 3), np.uint8)), "JPEG")
    assert decode_image(data, work_side=constants.WORK_MAX_SIDE).shape == (300, 1500, 3)
    assert decode_image(data, work_side=500).shape == (150, 750, 3)  # 1/2: 1/4 would leave 375 < 500
    assert decode_image(data, work_side=375).shape == (75, 375, 3)


def test_load_image_reads_a_file(write):
    path = write("digit.png", _encode(Image.fromarray(_blocky_rgb()[:, :, 1]), "PNG"))
    assert load_image(str(path)).shape == (30, 50)
