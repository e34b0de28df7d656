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
