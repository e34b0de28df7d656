"""Phone-size photos: digits a few millimetres high on a 12-megapixel page are still found."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from edge_runtime import constants, imageio, reader as reader_module
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import large_photos  # noqa: E402


def big_page(mnist, digits: str, tile: int, rng: np.random.Generator, side: int = 4032) -> np.ndarray:
    return large_photos.large_page(mnist.test_images, mnist.test_labels, digits, tile, side, rng)


def test_small_digits_on_a_large_page_are_looked_at_again_at_full_resolution(mnist):
    reader = reader_module.DigitReader()
    rng = np.random.default_rng(3)
    numbers = [f"{value:05d}" for value in rng.integers(0, 100000, 6)]
    # Digits about 34 pixels high on a 4032-pixel page: 4 pixels high on the working copy, where they
    # are dropped as too short. Before the second look at such pieces, none of these was read; now 6 of 6.
    right = sum(reader.read(big_page(mnist, number, 48, rng)).digits == number for number in numbers)
    assert right >= 5


def test_a_phone_photo_file_is_decoded_large_enough_for_its_small_digits(mnist, tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "page photo.jpg"
    number = "40719"
    cv2.imwrite(str(path), big_page(mnist, number, 64, rng), [cv2.IMWRITE_JPEG_QUALITY, 90])
    image = imageio.load_image(path)
    assert image.shape[1] == 4032 // 2  # decoded at half size, not a quarter
    assert max(image.shape) >= constants.WORK_MAX_SIDE * 0.95
    assert reader_module.DigitReader().read(path).digits == number
    from click.testing import CliRunner
    from edge_runtime import cli

    result = CliRunner().invoke(cli.main, [str(path), "--explain"])
    assert result.exit_code == 0, result.output
    assert result.output.count("page photo.jpg: small digits: segmented again at full resolution") == 1


def grainy_page(rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.full((3024, 4032, 3), 210.0) + rng.normal(0, 4, (3024, 4032, 3)), 0, 255).astype(np.uint8)


def dotted_page(rng: np.random.Generator) -> np.ndarray:
    """Thousands of dots a few pixels across: pieces too short for digits, in rows by chance."""
    page = np.full((3024, 4032, 3), 220, np.uint8)
    for x, y, radius in zip(rng.integers(0, 4032, 6000), rng.integers(0, 3024, 6000), rng.integers(2, 6, 6000)):
        cv2.circle(page, (int(x), int(y)), int(radius), (60, 60, 60), -1)
    return page


@pytest.mark.parametrize("make_page", [grainy_page, dotted_page])
def test_a_large_page_without_writing_finds_no_digit(make_page):
    page = make_page(np.random.default_rng(0))
    assert reader_module.DigitReader().read(page).status == constants.STATUS_NO_DIGIT


def test_rows_of_dots_too_short_for_digits_stay_dropped_when_their_second_look_finds_nothing():
    from edge_runtime import preprocess

    page = np.full((3024, 4032, 3), 220, np.uint8)
    for row, radius in enumerate((10, 14, 18)):
        for column in range(6):
            cv2.circle(page, (800 + column * 120, 500 + row * 240), radius, (50, 50, 50), -1)
    # The dots are too short for digits on the working copy; looked at again at full resolution they
    # are blobs, and nothing is found: they must not come back as digits (they read as 0s).
    assert preprocess.segment_image(page, preprocess.PreprocessOptions()).crops == ()
