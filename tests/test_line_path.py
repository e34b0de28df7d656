"""Tests for edge_runtime.line_path: a line's ink, with rules and a table's column lines taken out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime import constants, line_path


def cell(border_x: int | None) -> np.ndarray:
    """A 40x60 logbook cell: a 9 written left of centre, a column line crossing the cell at `border_x`."""
    image = np.full((40, 60), 200, np.uint8)
    cv2.circle(image, (16, 15), 6, 60, 2)
    cv2.line(image, (22, 15), (20, 32), 60, 2)
    if border_x is not None:
        cv2.line(image, (border_x, 0), (border_x + 1, 39), 110, 1)  # tilted by a degree or so
    return image


def test_a_column_line_across_the_cell_is_taken_out_wherever_it_stands():
    box = line_path.region([(8, 7, 17, 27)], (40, 60))
    assert box[2] == 60  # the line fills the cell: read across its whole width
    ink = line_path.line_ink(cell(47), box, constants.INK_DARK_ON_LIGHT)
    assert not ink[:, 44:52].any()
    plain = line_path.line_ink(cell(None), box, constants.INK_DARK_ON_LIGHT)
    assert np.count_nonzero(ink[:, :30]) == np.count_nonzero(plain[:, :30])  # the 9 is untouched


def test_a_one_that_stops_short_of_the_cells_edges_is_kept():
    image = np.full((40, 60), 200, np.uint8)
    cv2.line(image, (30, 3), (29, 37), 60, 2)  # a 1 nearly as tall as the cell, but ending inside it
    box = (0, 0, 60, 40)
    ink = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT)
    assert ink[:, 27:33].any()


def test_a_column_line_broken_off_at_a_cells_top_is_taken_out_however_dark_but_a_1_below_the_top_is_kept():
    image = np.full((34, 56), 200, np.uint8)
    cv2.ellipse(image, (16, 11), (6, 6), 0, 180, 450, 60, 2)  # a 3's upper arc ...
    cv2.ellipse(image, (16, 23), (7, 7), 0, 270, 520, 60, 2)  # ... and its lower one
    cv2.line(image, (45, 0), (45, 20), 60, 2)  # a column line as dark as the 3, broken off 20 px down
    cv2.line(image, (32, 6), (32, 28), 60, 2)  # a 1, ruler straight, inside the cell's height
    box = (0, 0, 56, 34)
    ink = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT, cell_ink_floor=0.2)
    assert not ink[:, 43:48].any()
    assert ink[:, 30:35].any() and ink[:, 8:25].any()
    # In a line region a stub must also be grey to go (`STUB_INK`): the dark one there may be a 1.
    line = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT)
    assert line[:, 43:48].any()
    grey = image.copy()
    cv2.line(grey, (45, 0), (45, 20), 200, 2)
    cv2.line(grey, (45, 0), (45, 20), 140, 2)  # the same column line, printed grey
    assert not line_path.line_ink(grey, box, constants.INK_DARK_ON_LIGHT)[:, 43:48].any()


def test_a_cells_ink_floor_decides_what_is_paper():
    image = np.full((40, 60), 220, np.uint8)
    cv2.line(image, (20, 8), (20, 32), 40, 2)  # a dark stroke
    cv2.line(image, (40, 8), (40, 32), 160, 2)  # a faint one, about a third as dark
    box = (0, 0, 60, 40)
    low = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT, cell_ink_floor=0.1)
    high = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT, cell_ink_floor=0.5)
    assert low[:, 38:43].any() and not high[:, 38:43].any()
    assert high[:, 18:23].any()


def test_histogram_quantiles_are_numpys():
    rng = np.random.default_rng(4)
    for size in (1, 2, 7, 100, 1001):
        levels = rng.integers(0, 256, size).astype(np.uint8).reshape(1, -1)
        counts = line_path._counts(levels)
        for share in (0.0, 0.5, 0.99, 1.0):
            assert line_path._quantile(counts, share) == pytest.approx(np.quantile(levels, share))


def test_a_tall_line_is_shrunk_to_the_working_height_and_its_digits_boxed_in_the_photo():
    from edge_runtime import reader as reader_module

    image = np.full((480, 640, 3), 230, np.uint8)
    cv2.putText(image, "2024", (60, 300), cv2.FONT_HERSHEY_SIMPLEX, 6, (20, 20, 20), 18, cv2.LINE_AA)
    box = (40, 100, 600, 260)
    ink = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT)
    assert ink.shape == (line_path.WORK_HEIGHT, round(600 * line_path.WORK_HEIGHT / 260))
    assert line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT, work_height=None).shape == (260, 600)
    result = reader_module.DigitReader(options=reader_module.ReaderOptions(reader="line")).read(image)
    assert result.digits == "2024"
    lefts = [digit.box[0] for digit in result.items]
    # Photo pixels, not ink pixels (the ink is shrunk to 32 rows: its x ends near 75); the last box starts
    # halfway between the CTC runs of the last two digits, about 400.
    assert lefts == sorted(lefts) and 40 <= lefts[0] < 120 and lefts[-1] > 300


def shaded_line() -> np.ndarray:
    """'197' on paper whose light falls to 45% towards the left, as in the shadow of a hand or phone."""
    image = (np.full((120, 420), 230, np.float32) * np.linspace(0.45, 1.0, 420, dtype=np.float32)).astype(np.uint8)
    cv2.putText(image, "197", (20, 95), cv2.FONT_HERSHEY_SIMPLEX, 3, 40, 6, cv2.LINE_AA)
    return image


def test_the_paper_under_a_shaded_line_is_measured_locally(monkeypatch):
    from edge_runtime import line_reader

    recognizer = line_reader.LineRecognizer()
    box = (0, 0, 420, 120)
    ink = line_path.line_ink(shaded_line(), box, constants.INK_DARK_ON_LIGHT)
    assert not ink[:8].any()  # the paper above the digits, dim or bright, is no ink
    assert recognizer.read_line(ink).digits == "197"
    monkeypatch.setattr(line_path, "LOCAL_PAPER_MIN_HEIGHT", 10**6)  # one paper level for the whole line
    monkeypatch.setattr(line_path, "PAPER_SLOPE", 10**6)
    flat = line_path.line_ink(shaded_line(), box, constants.INK_DARK_ON_LIGHT)
    assert recognizer.read_line(flat).digits != "197"  # the dim end is lost


def shaded_cell() -> np.ndarray:
    """A 34x60 logbook cell holding a faint "68", in light falling to 55% from right to left: the dim
    paper at the left is darker than the ink at the right, so no one paper level separates them."""
    image = np.full((34, 60), 200, np.uint8)
    cv2.putText(image, "68", (12, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.75, 120, 2, cv2.LINE_AA)
    light = np.linspace(0.55, 1.0, 60, dtype=np.float32)[np.newaxis, :]
    return (image * light).astype(np.uint8)


@pytest.mark.parametrize("ink_floor", [None, 0.2])
def test_the_paper_slope_across_a_small_cell_is_taken_out(monkeypatch, ink_floor):
    from edge_runtime import line_reader

    recognizer = line_reader.LineRecognizer()
    box = (0, 0, 60, 34)
    ink = line_path.line_ink(shaded_cell(), box, constants.INK_DARK_ON_LIGHT, ink_floor)
    assert not ink[:, :10].any() and not ink[:4].any() and not ink[:, 40:].any()  # paper, dim or bright
    assert recognizer.read_line(ink).digits == "68"
    monkeypatch.setattr(line_path, "PAPER_SLOPE", 10**6)  # one paper level for the whole cell
    flat = line_path.line_ink(shaded_cell(), box, constants.INK_DARK_ON_LIGHT, ink_floor)
    assert recognizer.read_line(flat).digits != "68"  # the dim 6 is partly lost


def test_a_cell_in_even_light_keeps_one_paper_level():
    image = np.full((34, 60), 215, np.uint8)
    image[:, 30:] = 223  # a step of 8 levels: under PAPER_SLOPE
    cv2.putText(image, "68", (12, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.75, 50, 2, cv2.LINE_AA)
    levels = cv2.bitwise_not(image)
    assert line_path._without_paper_slope(levels) is levels


@pytest.mark.parametrize("shape, paper", [((2, 2), None), ((3, 50), None), ((16, 48), "one row"),
                                          ((16, 48), "one column"), ((34, 60), None)])
def test_any_region_gets_a_paper_slope_or_none_without_failing(shape, paper):
    levels = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    if paper == "one row":  # ink everywhere but one row: the paper's pixels lie in a line
        levels[:] = 255
        levels[0] = 0
    elif paper == "one column":
        levels[:] = 255
        levels[:, 0] = 0
    flat = line_path._without_paper_slope(levels)
    assert flat.shape == levels.shape and flat.dtype == np.uint8


def test_the_line_passes_take_the_pages_polarity_not_the_cells_own():
    from edge_runtime import line_reader
    from edge_runtime.segment import light, tuning

    cell = cv2.cvtColor(shaded_cell(), cv2.COLOR_GRAY2BGR)
    auto = line_path.line_ink(shaded_cell(), (0, 0, 60, 34), constants.INK_AUTO)
    assert line_reader.LineRecognizer().read_line(auto).digits != "68"  # its own median calls it a board
    settings = (512, tuning.Tuning())
    assert light.page_polarity(cell, constants.INK_AUTO, *settings) == constants.INK_DARK_ON_LIGHT
    board = np.full((34, 60, 3), 45, np.uint8)
    cv2.putText(board, "68", (12, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.75, (220, 220, 220), 2, cv2.LINE_AA)
    assert light.page_polarity(board, constants.INK_AUTO, *settings) == constants.INK_LIGHT_ON_DARK
    assert light.page_polarity(cell, constants.INK_LIGHT_ON_DARK, *settings) == constants.INK_LIGHT_ON_DARK


def test_a_tilted_rule_above_the_digits_is_taken_out_but_a_2_on_its_rule_keeps_its_base():
    # A photo of ruled paper: a rule tilted a little runs just above a 1, another under a 2's base.
    image = np.full((300, 600), 215, np.uint8)
    cv2.line(image, (0, 91), (599, 97), 90, 2)  # its straight runs are 100 px: under 1.5 line heights
    cv2.line(image, (150, 100), (150, 170), 30, 4)  # a plain 1
    cv2.ellipse(image, (300, 120), (20, 18), 0, 180, 360, 30, 4)  # a 2: its bowl, its stroke, its base
    cv2.line(image, (320, 120), (280, 170), 30, 4)
    cv2.line(image, (280, 170), (330, 170), 30, 4)
    cv2.line(image, (0, 171), (599, 173), 90, 2)  # the rule the 2 sits on
    box = line_path.region([(148, 100, 6, 72), (278, 100, 54, 72)], image.shape)
    ink = line_path.line_ink(image, box, constants.INK_DARK_ON_LIGHT)
    assert ink.shape == (box[3], box[2])
    assert not ink[:100 - box[1] - 1].any()  # nothing above the 1: no bar to make it a 7
    base = ink[166 - box[1]:175 - box[1], 285 - box[0]:325 - box[0]]
    assert np.count_nonzero(base) > 0.3 * base.size  # the 2 keeps its base
