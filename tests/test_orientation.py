"""Orientation: quarter turns, boxes mapped back into the image as given, and choosing a turn."""

import numpy as np
import pytest

from edge_runtime import orientation


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_boxes_map_back_onto_the_same_pixels(degrees):
    image = np.zeros((30, 50), np.uint8)
    image[5:9, 20:31] = 255  # a bar 11 wide, 4 high
    turned = orientation.upright(image, degrees)
    rows, columns = np.nonzero(turned)
    box = (int(columns.min()), int(rows.min()), int(np.ptp(columns)) + 1, int(np.ptp(rows)) + 1)
    assert orientation.box_in_original(box, degrees, image.shape) == (20, 5, 11, 4)


def test_a_sideways_page_is_turned_back_upright():
    page = np.zeros((20, 10), np.uint8)
    page[0, :] = 1  # the top row of an upright page ...
    sideways = np.rot90(page, -1)  # ... photographed turned 90 degrees clockwise lies in the last column
    assert sideways[:, -1].all()
    assert (orientation.upright(np.ascontiguousarray(sideways), 90) == page).all()


def test_unknown_orientation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="auto, 0, 90, 180, 270"):
        orientation.check("45")


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_box_in_upright_undoes_box_in_original(degrees):
    shape = (30, 50)  # the image as given; its upright copy is 50x30 for a quarter turn
    box = (3, 4, 7, 5)
    original = orientation.box_in_original(box, degrees, shape)
    assert orientation.box_in_upright(original, degrees, shape) == box


def test_a_sideways_reading_the_opposite_turn_reads_otherwise_as_surely_is_a_coin_toss():
    from edge_runtime import reader as reader_module

    def reading(label: str, confidence: float, turn: int) -> reader_module.ReadResult:
        digit = reader_module.Digit(label, confidence, (10, 10, 40, 60), None, None, 0, True)
        return reader_module._result((digit,), (), "page.jpg", (100, 100), 0.0, turn)

    reader = reader_module.DigitReader(options=reader_module.ReaderOptions(min_confidence=0.9))
    six = reading("6", 0.996, 90)
    capped = reader._as_sure_as_the_turn(six, reading("9", 0.993, 270))
    assert capped.digits == "?" and capped.items[0].label == "6" and capped.confidence == 0.5
    assert capped.status == "rejected" and capped.orientation == 90
    assert reader._as_sure_as_the_turn(six, reading("9", 0.3, 270)) is six  # the other way reads far less surely
    assert reader._as_sure_as_the_turn(six, reading("6", 0.99, 270)) is six  # both ways agree
    assert reader._as_sure_as_the_turn(six, None) is six
