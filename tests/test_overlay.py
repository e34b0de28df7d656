"""Overlays are pure: the input image is untouched, the drawing shows the reading, figures need no window."""

import numpy as np

from edge_runtime import constants, overlay, reader


def _result(status=constants.STATUS_OK, accepted=True):
    probabilities = np.eye(10, dtype=np.float32)[7] * 0.9 + 0.01
    digit = reader.Digit(label="7", confidence=0.91, box=(100, 80, 60, 120), probabilities=probabilities,
                         crop=np.zeros((28, 28), np.float32), line=0, accepted=accepted)
    return reader.ReadResult(digits="7" if accepted else "?", status=status, items=(digit,), source="photo.jpg")


def test_draw_reading_returns_an_annotated_copy():
    image = np.full((480, 640), 200, np.uint8)
    before = image.copy()
    drawn = overlay.draw_reading(image, _result(), roi=(10, 10, 300, 300), caption="30.0 FPS")
    assert np.array_equal(image, before)
    assert drawn.shape == (480, 640, 3) and drawn.dtype == np.uint8
    box_edge = drawn[80:200, 100]
    assert (np.abs(box_edge.astype(int) - 200).sum(axis=1) > 60).mean() > 0.8  # the box is drawn in colour


def test_rejected_digits_are_drawn_differently():
    image = np.full((480, 640, 3), 200, np.uint8)
    accepted = overlay.draw_reading(image, _result())
    rejected = overlay.draw_reading(image, _result(constants.STATUS_REJECTED, accepted=False))
    assert not np.array_equal(accepted[80:200, 100], rejected[80:200, 100])


def test_reading_figure_has_photo_crop_and_bars_without_pyplot():

    figure = overlay.reading_figure(np.full((240, 320, 3), 220, np.uint8), _result())
    assert len(figure.axes) == 3
    bars = figure.axes[2].patches
    assert len(bars) == 10 and max(bar.get_height() for bar in bars) == bars[7].get_height()
    assert type(figure).__name__ == "Figure" and figure.canvas is not None


def test_no_digit_result_still_draws():
    empty = reader.ReadResult(digits="", status=constants.STATUS_NO_DIGIT, source="blank.jpg")
    figure = overlay.reading_figure(np.zeros((100, 100), np.uint8), empty)
    assert len(figure.axes) == 1
    assert overlay.draw_reading(np.zeros((100, 100), np.uint8), empty).shape == (500, 500, 3)


def test_a_small_image_is_drawn_enlarged_with_its_boxes():
    """A 60 x 34 logbook cell drawn at its own size has unreadable labels: it is enlarged 8 times."""
    cell = np.full((34, 60), 200, np.uint8)
    digit = reader.Digit(label="7", confidence=0.91, box=(20, 5, 10, 20), probabilities=np.eye(10)[7],
                         crop=np.zeros((28, 28), np.float32), line=0, accepted=True)
    result = reader.ReadResult(digits="7", status=constants.STATUS_OK, items=(digit,), source="cell.jpg")
    drawn = overlay.draw_reading(cell, result)
    assert drawn.shape == (34 * 8, 60 * 8, 3)
    left_side = drawn[5 * 8 + 4:25 * 8 - 4, 20 * 8]
    assert (np.abs(left_side.astype(int) - 200).sum(axis=1) > 60).all()  # the box scaled with the image
    assert (drawn[200:260, 300:470] == 200).all()  # the paper away from the box keeps its grey


def test_dropped_pieces_are_labelled_with_the_short_form_of_their_reason():
    assert overlay.short_reason("part of a broken line: thin 1s stacked in a column, each alone on its line") == \
        "part of a broken line"
    assert overlay.short_reason("not a digit (model, 99.5%); read as digits with its line by the line model") == \
        "not a digit (model, 99.5%)"
    assert overlay.short_reason("ruled line") == "ruled line"
