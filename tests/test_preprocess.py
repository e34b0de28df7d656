"""Tests for edge_runtime.preprocess: finding digits in synthetic photos and MNIST tiles."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime import constants
from edge_runtime.preprocess import DigitCrop, PreprocessOptions, extract_digits, to_mnist

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (30, 30, 30)
MNIST_DIR = Path(os.environ.get("MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "mnist"))


def paper(height: int = 480, width: int = 640, level: int = 235, shadow: float = 0.45) -> np.ndarray:
    """Off-white BGR paper lit from the left: the right edge is `shadow` darker, with sensor noise."""
    ramp = np.linspace(1.0, 1.0 - shadow, width, dtype=np.float32)[np.newaxis, :]
    page = np.full((height, width), level, np.float32) * ramp
    page += np.random.default_rng(3).normal(0.0, 2.0, (height, width)).astype(np.float32)
    gray = np.clip(page, 0, 255).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def write(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 4.0, thickness: int = 12, colour=INK):
    cv2.putText(image, text, origin, FONT, scale, colour, thickness, cv2.LINE_AA)
    return image


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    moments = cv2.moments(image)
    return moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    return cv2.boundingRect((image > 0.05).astype(np.uint8))


def inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int], slack: int = 4) -> bool:
    x, y, width, height = inner
    outer_x, outer_y, outer_width, outer_height = outer
    return (
        x >= outer_x - slack
        and y >= outer_y - slack
        and x + width <= outer_x + outer_width + slack
        and y + height <= outer_y + outer_height + slack
    )


def assert_mnist_like(crop: DigitCrop) -> None:
    assert crop.image.shape == (28, 28) and crop.image.dtype == np.float32
    assert 0.0 <= crop.image.min() and crop.image.max() <= 1.0
    assert crop.image.max() > 0.9  # strokes reach full white, as in MNIST
    assert crop.image[0].max() < 0.05 and crop.image[:, 0].max() < 0.05  # black margin
    centre_x, centre_y = centre_of_mass(crop.image)
    assert abs(centre_x - 14) <= 1.0 and abs(centre_y - 14) <= 1.0


@pytest.fixture(scope="module")
def mnist_tiles() -> np.ndarray:
    path = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.skip(f"no MNIST test images at {path}")
    with gzip.open(path) as file:
        data = file.read()
    return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)[:300]


# --- photos -----------------------------------------------------------------------------------


def test_dark_digit_on_shadowed_paper():
    image = write(paper(), "7", (280, 300))
    crops = extract_digits(image)
    assert len(crops) == 1
    assert_mnist_like(crops[0])
    assert inside((288, 218, 60, 82), crops[0].box)  # where putText drew the 7
    assert crops[0].line == 0


def test_number_is_read_left_to_right():
    crops = extract_digits(write(paper(), "305", (200, 300)))
    assert len(crops) == 3
    lefts = [crop.box[0] for crop in crops]
    assert lefts == sorted(lefts)
    assert [crop.line for crop in crops] == [0, 0, 0]
    for crop in crops:
        assert_mnist_like(crop)


def test_two_lines_are_read_top_to_bottom():
    image = write(paper(), "12", (220, 180), scale=3, thickness=9)
    write(image, "34", (220, 380), scale=3, thickness=9)
    crops = extract_digits(image)
    assert [crop.line for crop in crops] == [0, 0, 1, 1]
    assert crops[0].box[0] < crops[1].box[0] and crops[2].box[0] < crops[3].box[0]
    assert crops[1].box[1] + crops[1].box[3] < crops[2].box[1]


def test_digit_on_ruled_paper():
    image = paper()
    for y in range(40, 480, 40):
        cv2.line(image, (0, y), (639, y), (200, 160, 120), 2)  # light blue rules (BGR)
    write(image, "4", (280, 290))  # the 4 crosses two rules
    crops = extract_digits(image)
    assert len(crops) == 1
    assert_mnist_like(crops[0])
    assert crops[0].box[3] > 60  # the whole 4, not the part between two rules


def test_digit_on_grid_paper():
    image = paper(shadow=0.2)
    for position in range(20, 640, 32):
        cv2.line(image, (position, 0), (position, 479), (190, 170, 150), 1)
        cv2.line(image, (0, position), (639, position), (190, 170, 150), 1)
    crops = extract_digits(write(image, "9", (280, 300), thickness=10))
    assert len(crops) == 1
    assert_mnist_like(crops[0])


def test_light_blue_ink_is_found():
    image = write(paper(shadow=0.2), "2", (280, 300), colour=(220, 150, 70))
    crops = extract_digits(image)
    assert len(crops) == 1
    assert_mnist_like(crops[0])


def test_chalk_on_a_green_board():
    board = np.empty((480, 640, 3), np.uint8)
    board[:] = (40, 70, 35)
    image = write(board, "8", (280, 300), colour=(230, 230, 230))
    automatic = extract_digits(image)
    assert len(automatic) == 1
    assert_mnist_like(automatic[0])
    forced = extract_digits(image, PreprocessOptions(polarity="light-on-dark"))
    np.testing.assert_allclose(forced[0].image, automatic[0].image)


def test_off_centre_digit_is_centred_in_its_crop():
    crops = extract_digits(write(paper(), "6", (40, 120), scale=2.5, thickness=8))
    assert len(crops) == 1
    assert crops[0].box[0] < 100 and crops[0].box[1] < 120
    assert_mnist_like(crops[0])


def test_broken_five_is_one_digit():
    image = paper(shadow=0.2)
    cv2.line(image, (300, 200), (360, 200), INK, 10)  # the bar, not touching the body
    cv2.line(image, (302, 214), (302, 250), INK, 10)  # the body: stem ...
    cv2.ellipse(image, (325, 280), (32, 32), 0, -150, 150, INK, 10)  # ... and belly
    crops = extract_digits(image)
    assert len(crops) == 1
    _, y, _, height = crops[0].box
    assert y <= 196 and y + height >= 310  # bar and belly in one box


def test_big_photo_gives_boxes_in_its_own_coordinates():
    image = write(paper(1500, 2000), "5", (900, 900), scale=10, thickness=30)
    crops = extract_digits(image)
    assert len(crops) == 1
    x, y, width, height = crops[0].box
    assert 880 <= x <= 930 and 650 <= y <= 720 and 150 <= width <= 260 and 200 <= height <= 260


def test_digit_cropped_tightly_may_touch_the_frame():
    image = write(paper(120, 100, shadow=0.0), "3", (5, 112), scale=4.2, thickness=12)
    crops = extract_digits(image)
    assert len(crops) == 1
    assert_mnist_like(crops[0])


def test_gray_and_bgra_images_are_accepted():
    image = write(paper(), "1", (300, 300))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    assert len(extract_digits(gray)) == len(extract_digits(bgra)) == 1


def test_margin_line_beside_a_number_is_not_a_one():
    image = paper()
    cv2.line(image, (80, 0), (80, 479), (120, 120, 230), 2)  # a red margin, top to bottom
    crops = extract_digits(write(image, "25", (250, 300), scale=3, thickness=9))
    assert len(crops) == 2
    assert all(crop.box[0] > 200 for crop in crops)


def tilted_ruled_page(tilt: float = 0.08) -> np.ndarray:
    """Blue rules and a red margin tilted by about 5 degrees (too much to be erased as a rule), broken
    where the rules cross it, as a thresholded faint margin is."""
    image = paper(shadow=0.2)
    for y in range(40, 480, 40):
        cv2.line(image, (0, y), (639, y), (200, 160, 120), 2)
    for top in range(0, 480, 40):
        start = (int(70 + tilt * (top + 6)), top + 6)
        end = (int(70 + tilt * (top + 34)), top + 34)
        cv2.line(image, start, end, (150, 150, 235), 2)
    return image


def test_tilted_margin_pieces_are_not_ones():
    image = write(tilted_ruled_page(), "4", (300, 270))
    crops = extract_digits(image)
    assert len(crops) == 1 and crops[0].box[0] > 250
    assert extract_digits(tilted_ruled_page()) == []


def test_lone_digit_beside_a_tall_margin_piece_is_kept():
    image = paper(shadow=0.2)
    cv2.line(image, (60, 200), (62, 420), (60, 60, 60), 2)  # a long thin stray line, below the digit's line
    write(image, "3", (300, 150), scale=2.5, thickness=7)
    crops = extract_digits(image)
    assert len(crops) == 1 and crops[0].box[0] > 250


def test_base_of_a_digit_written_on_a_rule_is_kept():
    image = paper(shadow=0.2)
    for y in range(40, 480, 40):
        cv2.line(image, (0, y), (639, y), (215, 185, 160), 2)  # faint blue rules
    cv2.line(image, (280, 200), (340, 200), INK, 7)  # a stroke lying on the rule at y = 200
    cv2.line(image, (280, 200), (330, 140), INK, 7)  # the diagonal of a Z-like digit above it
    crops = extract_digits(image)
    assert len(crops) == 1
    _, y, width, height = crops[0].box
    assert y + height >= 200 and width >= 55  # the base along the rule is part of the digit
    assert crops[0].image[20:26].max() > 0.5  # and of its crop


def test_number_written_as_one_stroke_is_cut_into_its_digits():
    image = paper(shadow=0.2)
    write(image, "7", (180, 300), scale=4, thickness=10)
    write(image, "00", (300, 300), scale=4, thickness=10)
    cv2.line(image, (370, 270), (400, 270), INK, 10)  # the two 0s joined by a pen stroke
    crops = extract_digits(image)
    assert len(crops) == 3


def test_drawn_frame_around_a_digit_is_ignored():
    image = paper()
    cv2.rectangle(image, (60, 40), (580, 440), (60, 60, 60), 3)
    crops = extract_digits(write(image, "8", (280, 300)))
    assert len(crops) == 1 and crops[0].box[0] > 250


def test_small_digits_in_a_big_photo_are_read_at_full_resolution():
    image = write(paper(1536, 2048), "47", (900, 800), scale=2.2, thickness=6)  # 40 pixels tall
    crops = extract_digits(image)
    assert len(crops) == 2
    for crop in crops:
        assert_mnist_like(crop)
        assert 900 <= crop.box[0] <= 1000 and crop.box[3] < 60


# --- nothing there ----------------------------------------------------------------------------


def test_blank_page_has_no_digit():
    assert extract_digits(paper()) == []


def test_ruled_page_without_writing_has_no_digit():
    image = paper()
    for y in range(40, 480, 40):
        cv2.line(image, (0, y), (639, y), (200, 160, 120), 2)
    cv2.line(image, (60, 0), (60, 479), (120, 120, 230), 2)  # red margin
    assert extract_digits(image) == []


def test_empty_grid_sheet_on_a_dark_table_has_no_digit():
    image = np.full((480, 640, 3), 40, np.uint8)  # a dark table
    sheet = np.array([[90, 30], [600, 50], [590, 470], [70, 450]], np.int32)
    cv2.fillConvexPoly(image, sheet, (225, 225, 225))
    inside_sheet = np.zeros((480, 640), np.uint8)
    cv2.fillConvexPoly(inside_sheet, sheet, 255)
    grid = image.copy()
    for position in range(10, 640, 24):
        cv2.line(grid, (position, 0), (position + 20, 479), (170, 150, 130), 1)
        cv2.line(grid, (0, position), (639, position + 20), (170, 150, 130), 1)
    image[inside_sheet > 0] = grid[inside_sheet > 0]
    image = cv2.GaussianBlur(image, (3, 3), 0)
    assert extract_digits(image) == []


def test_specks_are_not_digits():
    image = paper(shadow=0.2)
    generator = np.random.default_rng(5)
    for _ in range(40):
        centre = (int(generator.integers(640)), int(generator.integers(480)))
        cv2.circle(image, centre, int(generator.integers(1, 3)), INK, -1)
    assert extract_digits(image) == []


def test_plain_wall_has_no_digit():
    generator = np.random.default_rng(8)
    wall = np.full((480, 640, 3), (120, 150, 170), np.float32)
    wall *= np.linspace(0.6, 1.0, 640, dtype=np.float32)[np.newaxis, :, np.newaxis]
    wall += cv2.GaussianBlur(generator.normal(0, 6, (480, 640, 3)).astype(np.float32), (0, 0), 2)
    assert extract_digits(np.clip(wall, 0, 255).astype(np.uint8)) == []


def test_pure_noise_has_no_digit():
    noise = np.random.default_rng(9).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert extract_digits(noise) == []


@pytest.mark.parametrize("shape", [(5, 1000), (1000, 3), (1, 1), (8, 8), (3, 200, 3), (2000, 7)])
def test_slivers_have_no_digit(shape):
    assert extract_digits(np.full(shape, 200, np.uint8)) == []


def test_blank_tile_has_no_digit():
    assert extract_digits(np.zeros((28, 28), np.uint8)) == []
    assert extract_digits(np.full((28, 28), 255, np.uint8)) == []


# --- options ----------------------------------------------------------------------------------


def test_single_returns_the_largest_digit():
    image = write(paper(), "1", (100, 300), scale=2, thickness=6)
    write(image, "8", (350, 330), scale=5, thickness=14)
    crops = extract_digits(image, PreprocessOptions(single=True))
    assert len(crops) == 1
    assert crops[0].box[0] > 300


def test_max_digits_keeps_the_most_prominent_in_reading_order():
    image = write(paper(), "1", (60, 300), scale=2, thickness=5)
    write(image, "4", (200, 330), scale=5, thickness=14)
    write(image, "7", (380, 300), scale=2, thickness=5)
    write(image, "0", (480, 330), scale=5, thickness=14)
    crops = extract_digits(image, PreprocessOptions(max_digits=2))
    assert len(crops) == 2
    assert crops[0].box[0] < 300 < crops[1].box[0]
    assert min(crop.box[3] for crop in crops) > 100  # the two big ones


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("polarity", "white", "polarity 'white' is not one of auto, dark-on-light, light-on-dark"),
        ("max_digits", 0, "max_digits must be a whole number >= 1, not 0"),
        ("single", "yes", "single must be True or False"),
        ("work_side", 10, "work_side must be a whole number from 64 to 4096, not 10"),
        ("min_contrast", 1.5, "min_contrast must be a number between 0 and 1"),
    ],
)
def test_options_are_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        PreprocessOptions(**{field: value})


def test_polarity_choices_are_shared_constants():
    for polarity in constants.INK_POLARITIES:
        PreprocessOptions(polarity=polarity)


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((28, 28), np.float32), ValueError),
        (np.zeros((4, 28, 28), np.uint8), ValueError),
        (np.zeros((0, 28), np.uint8), ValueError),
        ([[0, 1], [1, 0]], TypeError),
    ],
)
def test_bad_images_are_refused(image, error):
    with pytest.raises(error):
        extract_digits(image)


# --- MNIST tiles ------------------------------------------------------------------------------


def test_mnist_tiles_come_back_unchanged(mnist_tiles):
    for tile in mnist_tiles:
        crops = extract_digits(tile)
        assert len(crops) == 1
        np.testing.assert_allclose(crops[0].image, tile / np.float32(255), atol=1e-6)


def test_inverted_mnist_tiles_come_back_as_the_original(mnist_tiles):
    for tile in mnist_tiles[:50]:
        crops = extract_digits(255 - tile)
        np.testing.assert_allclose(crops[0].image, tile / np.float32(255), atol=1e-6)


def test_off_centre_tile_is_shifted_back(mnist_tiles):
    tile = mnist_tiles[0]
    shifted = np.zeros_like(tile)
    shifted[:, :24] = tile[:, 4:]  # 4 pixels left
    image = extract_digits(shifted)[0].image
    centre_x, centre_y = centre_of_mass(image)
    assert abs(centre_x - 14) <= 0.6 and abs(centre_y - 14) <= 0.6
    assert np.abs(image - tile / 255.0).max() < 1e-6  # back where MNIST had it, pixel for pixel


def test_small_tile_is_fitted_like_mnist():
    tile = np.full((48, 40), 250, np.uint8)
    cv2.putText(tile, "2", (6, 42), FONT, 1.4, 20, 4, cv2.LINE_AA)
    crops = extract_digits(tile)
    assert len(crops) == 1
    assert max(ink_box(crops[0].image)[2:]) in (20, 21)
    assert_mnist_like(crops[0])


# --- to_mnist ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(60, 25), (25, 60), (7, 5), (200, 120)])
def test_to_mnist_fits_20_pixels_and_centres_the_mass(shape):
    mask = np.zeros(shape, np.uint8)
    height, width = shape
    cv2.ellipse(mask, (width // 3, height // 3), (max(1, width // 3), max(1, height // 3)), 0, 0, 360, 255, -1)
    cv2.rectangle(mask, (0, 0), (width - 1, height - 1), 255, max(1, min(shape) // 8))
    result = to_mnist(mask)
    assert result.shape == (28, 28) and result.dtype == np.float32
    _, _, box_width, box_height = ink_box(result)
    assert max(box_width, box_height) in (20, 21) and min(box_width, box_height) <= 20
    centre_x, centre_y = centre_of_mass(result)
    assert abs(centre_x - 14) <= 1.0 and abs(centre_y - 14) <= 1.0


def test_to_mnist_accepts_floats_and_booleans():
    mask = np.zeros((30, 20), bool)
    mask[5:25, 8:12] = True
    from_bool = to_mnist(mask)
    np.testing.assert_allclose(to_mnist(mask.astype(np.float32)), from_bool)
    np.testing.assert_allclose(to_mnist(mask.astype(np.float32) * 255), from_bool)
    assert from_bool.max() == pytest.approx(1.0)


def test_to_mnist_of_nothing_is_black():
    assert not to_mnist(np.zeros((10, 10), np.uint8)).any()


def test_thin_slanted_zero_is_not_cut_into_strokes():
    """A small, thin-stroked, slanted 0 has columns crossed by two fine strokes only: the cut that
    parts touching digits leaves two strokes there, which are dropped as lines. The 0 stays whole."""
    image = paper(shadow=0.0, level=230)
    cv2.ellipse(image, (320, 240), (9, 12), 40, 0, 360, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.line(image, (329, 228), (334, 222), (60, 60, 60), 1, cv2.LINE_AA)
    crops = extract_digits(image)
    assert len(crops) == 1
    x, y, width, height = crops[0].box
    assert x <= 312 and x + width >= 328 and y <= 229 and y + height >= 251
