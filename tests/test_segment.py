"""Tests for edge_runtime.segment: reasons for dropped, merged and split pieces, the frozen Tuning, the shim."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime import constants, preprocess, segment
from edge_runtime.segment import (
    DigitCrop,
    Dropped,
    PreprocessOptions,
    Segmentation,
    Tuning,
    extract_digits,
    segment_image,
)
from edge_runtime.segment import boxes, pipeline, result, tilt
from edge_runtime.segment.components import Candidate
from edge_runtime.segment.filters import Sifted

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (30, 30, 30)


def paper(height: int = 480, width: int = 640, level: int = 235) -> np.ndarray:
    """Off-white BGR paper, a little darker to the right, with sensor noise."""
    ramp = np.linspace(1.0, 0.8, width, dtype=np.float32)[np.newaxis, :]
    page = np.full((height, width), level, np.float32) * ramp
    page += np.random.default_rng(3).normal(0.0, 2.0, (height, width)).astype(np.float32)
    return cv2.cvtColor(np.clip(page, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def write(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 4.0, thickness: int = 12):
    cv2.putText(image, text, origin, FONT, scale, INK, thickness, cv2.LINE_AA)
    return image


def contains(box: tuple[int, int, int, int], point: tuple[int, int], slack: int = 2) -> bool:
    x, y, width, height = box
    return x - slack <= point[0] <= x + width + slack and y - slack <= point[1] <= y + height + slack


def messy_page(table_level: int = 40) -> np.ndarray:
    """A 4 on a sheet with a ruled line, a speck, and a table along its tilted left edge: dark (darker
    than any paper, so off the sheet), or at 80 about as bright as paper in shadow."""
    image = paper()
    table = np.array([[0, 0], [120, 0], [60, 479], [0, 479]], np.int32)
    cv2.fillConvexPoly(image, table, (table_level,) * 3)
    cv2.line(image, (160, 100), (639, 100), (200, 160, 120), 2)  # a blue rule
    cv2.circle(image, (500, 400), 2, INK, -1)  # a speck
    write(image, "4", (300, 300))
    return cv2.GaussianBlur(image, (3, 3), 0)


def reasons(segmentation: Segmentation) -> set[str]:
    return {piece.reason for piece in segmentation.dropped}


# --- reasons --------------------------------------------------------------------------------------


def test_each_dropped_piece_of_a_messy_page_comes_back_with_its_reason():
    found = segment_image(messy_page())
    assert [crop.box[0] // 10 for crop in found.crops] == [30]  # only the 4
    assert found.polarity == "dark-on-light"
    by_reason = {}
    for piece in found.dropped:
        by_reason.setdefault(piece.reason, []).append(piece)
    rules = by_reason[result.RULED_LINE]
    assert any(box[2] > 400 and contains(box, (400, 100)) for box in (piece.box for piece in rules))
    assert all(piece.stage == "mask" for piece in rules)
    assert any(contains(piece.box, (500, 400)) for piece in by_reason[result.SPECK])
    # The table is reported as such, and the sheet's edge along it, if left, as a page edge.
    edges = by_reason[result.OFF_THE_PAPER] + by_reason.get(result.PAGE_EDGE, [])
    assert edges and all(piece.box[0] + piece.box[2] < 140 for piece in edges)  # the table, along its edge
    assert all(piece.reason in result.REASONS for piece in found.dropped)
    assert not any(contains(piece.box, (330, 260)) for piece in found.dropped)  # the digit is not dropped


def thin_pen_five(rule: bool) -> np.ndarray:
    """A thin ballpoint 5 in a tight crop, as scans cut into cells give, optionally on a ruled line."""
    image = np.full((120, 100, 3), 235, np.uint8)
    cv2.line(image, (30, 20), (75, 20), INK, 2, cv2.LINE_AA)  # the top bar: 45 px of a 100 px wide crop
    cv2.line(image, (30, 20), (28, 55), INK, 2, cv2.LINE_AA)
    cv2.ellipse(image, (48, 75), (24, 22), 0, -150, 150, INK, 2, cv2.LINE_AA)
    if rule:
        cv2.line(image, (0, 105), (99, 105), (120, 120, 120), 2)
    return image


def test_a_digit_bar_in_a_tight_crop_is_no_ruled_line():
    # The bar is longer than 0.3 of the crop's width but shorter than the crop is high: a bar, not a rule.
    segmentation = segment_image(thin_pen_five(rule=False))
    assert result.RULED_LINE not in reasons(segmentation)
    assert len(segmentation.crops) == 1
    x, y, width, height = segmentation.crops[0].box
    assert y <= 22 and x <= 30 and x + width >= 74  # the crop holds the whole bar


def test_a_rule_across_a_tight_crop_is_still_erased():
    segmentation = segment_image(thin_pen_five(rule=True))
    rules = [piece for piece in segmentation.dropped if piece.reason == result.RULED_LINE]
    assert any(piece.box[2] > 80 for piece in rules)
    assert len(segmentation.crops) == 1


def test_a_one_pixel_pen_digit_is_no_line_but_a_rule_piece_is():
    from edge_runtime.segment import components, filters

    mask = np.zeros((40, 60), np.uint8)
    cv2.line(mask, (10, 10), (23, 10), 255, 1)  # a 7 written with a fine pen, at working resolution
    cv2.line(mask, (23, 10), (15, 28), 255, 1)
    cv2.line(mask, (35, 20), (55, 21), 255, 1)  # a stray piece of rule
    found = components.find_candidates(mask, Tuning())
    by_x = sorted(found.candidates, key=lambda candidate: candidate.x)
    assert len(by_x) == 2
    seven, rule = by_x
    assert not filters._is_line(seven, found.labels, 2.0, Tuning())
    assert filters._is_line(rule, found.labels, 2.0, Tuning())


def test_a_broken_margin_lines_piece_is_part_of_a_long_line_though_the_rest_was_erased():
    image = paper()
    for y in range(40, 480, 40):
        cv2.line(image, (0, y), (639, y), (200, 160, 120), 1)  # blue rules
    for top, bottom in ((0, 180), (210, 262), (292, 479)):  # a red margin, broken twice
        cv2.line(image, (100, top), (100, bottom), (80, 80, 200), 2)
    write(image, "5", (300, 300), scale=3, thickness=8)
    found = segment_image(cv2.GaussianBlur(image, (3, 3), 0))
    assert [crop.box[0] for crop in found.crops] == [pytest.approx(304, abs=4)]  # the 5 alone, no 1 beside it
    pieces = [piece for piece in found.dropped if piece.reason == result.LONG_LINE]
    assert [piece.box[1] for piece in pieces] == [pytest.approx(210, abs=4)]


def test_black_ink_on_dim_grey_paper_is_pen_on_paper_and_chalk_on_a_board_is_not():
    dim_paper = paper(120, 200, level=75)
    cv2.putText(dim_paper, "150", (20, 90), FONT, 2.5, (10, 10, 10), 6, cv2.LINE_AA)
    board = np.full((120, 200, 3), 60, np.uint8)
    cv2.putText(board, "150", (20, 90), FONT, 2.5, (220, 220, 220), 6, cv2.LINE_AA)
    assert segment_image(dim_paper).polarity == constants.INK_DARK_ON_LIGHT
    assert segment_image(board).polarity == constants.INK_LIGHT_ON_DARK
    assert len(segment_image(dim_paper).crops) == 3


def test_a_wide_digit_filling_a_portrait_photo_sideways_may_touch_its_edge():
    image = paper(400, 240)
    cv2.polylines(image, [np.array([[0, 150], [200, 150], [20, 260], [220, 255]], np.int32)], False, INK, 14)
    segmentation = segment_image(image)
    assert len(segmentation.crops) == 1 and result.TOUCHES_FRAME not in reasons(segmentation)


def test_digits_standing_on_an_underline_are_cut_free_of_it():
    # The underline is shorter than the page is high, so only the fallback measures it as a rule.
    image = write(paper(), "27", (250, 250), scale=3.0, thickness=8)
    cv2.line(image, (160, 250), (480, 250), (40, 40, 40), 3)
    assert len(segment_image(image).crops) == 2


def test_a_wide_bar_running_off_the_frame_is_still_dropped():
    image = paper(400, 240)
    cv2.rectangle(image, (0, 180), (200, 215), (120, 120, 120), -1)  # a solid bar from the edge: a shadow
    assert result.TOUCHES_FRAME in reasons(segment_image(image)) and not segment_image(image).crops
    cv2.rectangle(image, (0, 180), (200, 215), INK, -1)  # as dark as ink: something off the sheet
    assert result.OFF_THE_PAPER in reasons(segment_image(image)) and not segment_image(image).crops


def test_off_paper_and_frame_pieces_are_named():
    dark, grey = segment_image(messy_page()), segment_image(messy_page(table_level=80))
    assert result.OFF_THE_PAPER in reasons(dark) and result.TOUCHES_FRAME in reasons(grey)
    for piece in dark.dropped + grey.dropped:
        if piece.reason in (result.OFF_THE_PAPER, result.TOUCHES_FRAME):
            assert piece.box[0] < 140  # on the table or along its edge


def test_a_solid_blot_is_a_blob():
    image = write(paper(), "3", (300, 250), scale=3, thickness=9)
    cv2.circle(image, (150, 240), 40, INK, -1)
    found = segment_image(image)
    assert len(found.crops) == 1
    blobs = [piece for piece in found.dropped if piece.reason == result.BLOB]
    assert len(blobs) == 1 and contains(blobs[0].box, (150, 240))


def test_dropped_boxes_are_in_the_input_coordinates():
    image = cv2.resize(messy_page(), (1280, 960), interpolation=cv2.INTER_LINEAR)  # worked on at a quarter
    found = segment_image(image)
    specks = [piece for piece in found.dropped if piece.reason == result.SPECK]
    assert any(contains(piece.box, (1000, 800), slack=4) for piece in specks)
    height, width = image.shape[:2]
    for piece in found.dropped:
        x, y, box_width, box_height = piece.box
        assert 0 <= x and 0 <= y and x + box_width <= width and y + box_height <= height


def test_a_split_is_reported_with_its_parts():
    image = paper()
    write(image, "7", (180, 300), scale=4, thickness=10)
    write(image, "00", (300, 300), scale=4, thickness=10)
    cv2.line(image, (370, 270), (400, 270), INK, 10)  # the two 0s joined by a pen stroke
    found = segment_image(image)
    assert len(found.crops) == 3
    splits = [event for event in found.events if event.kind == result.SPLIT]
    assert len(splits) == 1
    whole, parts = splits[0].box, splits[0].parts
    assert len(parts) == 2 and contains(whole, (385, 270))
    assert [crop.box for crop in found.crops[1:]] == list(parts)
    assert splits[0].reason


def test_a_merge_is_reported_with_its_pieces():
    image = paper()
    cv2.line(image, (300, 200), (360, 200), INK, 10)  # a 5's bar, not touching the body
    cv2.line(image, (302, 214), (302, 250), INK, 10)
    cv2.ellipse(image, (325, 280), (32, 32), 0, -150, 150, INK, 10)
    found = segment_image(image)
    assert len(found.crops) == 1
    merges = [event for event in found.events if event.kind == result.MERGED]
    assert len(merges) == 1
    assert merges[0].box == found.crops[0].box
    assert any(contains(part, (330, 200)) for part in merges[0].parts)  # the bar is one of the pieces


def test_digits_beyond_max_digits_are_dropped_as_not_prominent():
    image = write(paper(), "1", (60, 300), scale=2, thickness=5)
    write(image, "4", (200, 330), scale=5, thickness=14)
    write(image, "7", (380, 300), scale=2, thickness=5)
    found = segment_image(image, PreprocessOptions(max_digits=1))
    assert len(found.crops) == 1
    assert sum(piece.reason == result.NOT_PROMINENT for piece in found.dropped) == 2


def test_second_look_at_small_digits_is_reported():
    image = write(paper(1536, 2048), "47", (900, 800), scale=2.2, thickness=6)
    found = segment_image(image)
    assert len(found.crops) == 2
    looks = [event for event in found.events if event.kind == result.SECOND_LOOK]
    assert len(looks) == 1 and all(contains(looks[0].box, crop.box[:2]) for crop in found.crops)
    assert all(contains(looks[0].box, piece.box[:2]) for piece in found.dropped if piece.second_look)


def test_blank_textured_and_tiny_images_say_why_nothing_was_found():
    white = segment_image(np.full((480, 640), 255, np.uint8))
    assert white.crops == () and white.dropped == () and white.events == ()  # nothing there to explain
    blank = segment_image(paper())
    assert blank.crops == () and reasons(blank) <= {result.SPECK}  # the paper's grain
    cells = np.where(np.random.default_rng(1).random((60, 80)) < 0.6, 50, 230).astype(np.uint8)
    texture = cv2.resize(cells, (640, 480), interpolation=cv2.INTER_NEAREST)  # mostly dark: no paper to write on
    textured = segment_image(texture, PreprocessOptions(polarity="dark-on-light"))
    assert textured.crops == () and [event.kind for event in textured.events] == [result.NO_INK]
    tiny = segment_image(np.full((5, 200), 255, np.uint8))
    assert tiny.crops == () and [event.kind for event in tiny.events] == [result.TOO_SMALL_IMAGE]


def test_tiles_report_their_polarity_and_drop_nothing():
    tile = np.zeros((28, 28), np.uint8)
    cv2.line(tile, (14, 5), (14, 22), 255, 3)
    found = segment_image(tile)
    assert len(found.crops) == 1 and found.dropped == () and found.polarity == "light-on-dark"
    assert segment_image(255 - tile).polarity == "dark-on-light"


# --- segment_image and extract_digits agree ------------------------------------------------------


def same_crops(first: list[DigitCrop], second: list[DigitCrop]) -> bool:
    return len(first) == len(second) and all(
        a.box == b.box and a.line == b.line and np.array_equal(a.image, b.image) for a, b in zip(first, second)
    )


@pytest.mark.parametrize("options", [PreprocessOptions(), PreprocessOptions(single=True)])
def test_segment_image_and_extract_digits_agree(options):
    images = [cv2.imread(str(path)) for path in sorted(SAMPLES.glob("*.jpg"))]
    images += [messy_page(), write(paper(1536, 2048), "47", (900, 800), scale=2.2, thickness=6)]
    for image in images:
        assert same_crops(list(segment_image(image, options).crops), extract_digits(image, options))


def test_the_preprocess_shim_reexports_the_package():
    assert preprocess.extract_digits is segment.extract_digits
    assert preprocess.segment_image is segment.segment_image
    assert preprocess.to_mnist is segment.to_mnist
    assert preprocess.DigitCrop is segment.DigitCrop
    assert preprocess.PreprocessOptions is segment.PreprocessOptions
    assert preprocess.TILE_MAX_SIDE == Tuning().tile_max_side


def test_results_are_immutable():
    found = segment_image(messy_page())
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.crops = ()
    with pytest.raises(AttributeError):
        found.dropped[0].reason = "none"
    assert isinstance(found.dropped, tuple) and isinstance(found.dropped[0], Dropped)


# --- Tuning ---------------------------------------------------------------------------------------


def test_tuning_is_frozen_and_the_default_of_the_options():
    tuning = Tuning()
    with pytest.raises(dataclasses.FrozenInstanceError):
        tuning.min_area = 3
    assert PreprocessOptions().tuning == tuning
    assert len(dataclasses.fields(Tuning)) >= 70  # the module constants it replaced


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_area", 0),
        ("min_area", 2.5),
        ("blob_fill", 1.5),
        ("chalk_blur", -1.0),
        ("chalk_blur", True),
        ("max_aspect", float("nan")),
        ("cut_slants", ()),
        ("zoom_pad", (1.0,)),
        ("rule_min_fraction", (0.3, 2.0)),
        ("threshold_cap", 300),
        ("line_tilts", "flat"),
    ],
)
def test_bad_tuning_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"Tuning\.{field} must be"):
        Tuning(**{field: value})


def test_options_refuse_a_tuning_that_is_not_one():
    with pytest.raises(ValueError, match="tuning must be a Tuning"):
        PreprocessOptions(tuning={"min_area": 6})


def test_tuning_reaches_the_stages():
    image = messy_page()
    assert len(segment_image(image).crops) == 1
    coarse = segment_image(image, PreprocessOptions(tuning=Tuning(min_area=10_000)))
    assert coarse.crops == ()
    assert any(piece.reason == result.SPECK and contains(piece.box, (330, 260)) for piece in coarse.dropped)
    small = write(paper(1536, 2048), "47", (900, 800), scale=2.2, thickness=6)
    no_second_look = segment_image(small, PreprocessOptions(tuning=Tuning(zoom_below_height=0)))
    assert not any(event.kind == result.SECOND_LOOK for event in no_second_look.events)


# --- light: faint pages and shading ---------------------------------------------------------------


def faint_page() -> np.ndarray:
    """Grey pencil on paper: a 7 whose strokes stand 15% below the paper (the usual floor is 18%)."""
    noise = np.random.default_rng(3).normal(0.0, 2.0, (480, 640))
    image = cv2.cvtColor(np.clip(230 + noise, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    cv2.putText(image, "7", (250, 330), FONT, 8, (195, 195, 195), 14, cv2.LINE_AA)
    return image


def test_a_page_where_no_digit_passes_is_segmented_again_with_a_lower_contrast_floor():
    assert len(segment_image(faint_page()).crops) == 1
    no_retry = dataclasses.replace(Tuning(), faint_retry_contrast=0.18)  # not under min_contrast: no retry
    assert not segment_image(faint_page(), PreprocessOptions(tuning=no_retry)).crops


def test_a_digit_a_little_fainter_than_its_neighbour_is_not_lost():
    noise = np.random.default_rng(3).normal(0.0, 2.0, (480, 640))
    image = cv2.cvtColor(np.clip(230 + noise, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    cv2.putText(image, "3", (150, 330), FONT, 7, (176, 176, 176), 14, cv2.LINE_AA)  # 23% below the paper
    cv2.putText(image, "8", (350, 330), FONT, 7, (188, 188, 188), 14, cv2.LINE_AA)  # 18%: under the floor
    assert len(segment_image(image).crops) == 2
    no_retry = dataclasses.replace(Tuning(), faint_retry_contrast=0.18)
    assert len(segment_image(image, PreprocessOptions(tuning=no_retry)).crops) == 1


def test_only_a_faint_piece_as_tall_and_nearly_as_inky_as_the_digits_calls_for_a_second_look():
    def piece(height: int, mean_ink: float) -> Candidate:
        area = 10 * height
        return Candidate(0, 0, height // 2, height, (1,), area, mean_ink * area)

    kept = (piece(100, 150.0),)
    tuning = Tuning()
    assert pipeline._faint_digits_dropped(Sifted((), ()), tuning)  # nothing passed
    assert pipeline._faint_digits_dropped(Sifted(kept, ((piece(90, 100.0), result.TOO_FAINT),)), tuning)
    assert not pipeline._faint_digits_dropped(Sifted(kept, ((piece(90, 40.0), result.TOO_FAINT),)), tuning)  # a grid's or shadow's piece
    assert not pipeline._faint_digits_dropped(Sifted(kept, ((piece(30, 100.0), result.TOO_FAINT),)), tuning)  # a speck
    assert not pipeline._faint_digits_dropped(Sifted(kept, ((piece(90, 100.0), result.TOO_SHORT),)), tuning)


def test_a_blank_page_stays_blank_with_the_faint_retry():
    assert not segment_image(paper()).crops


def test_a_large_thin_digit_on_a_shaded_page_is_no_page_edge():
    """A thin-pen 0 filling the page, in light falling to 55% across it: its sides differ by the shading
    only, which a sheet's edge on a table does not follow (such a digit was dropped as a page edge)."""
    image = paper(level=235)
    cv2.ellipse(image, (320, 240), (260, 200), 0, 0, 360, INK, 3, cv2.LINE_AA)
    shade = np.linspace(0.55, 1.0, image.shape[1], dtype=np.float32)[np.newaxis, :, np.newaxis]
    segmentation = segment_image(np.clip(image * shade, 0, 255).astype(np.uint8), PreprocessOptions())
    assert len(segmentation.crops) == 1
    assert result.PAGE_EDGE not in reasons(segmentation)
    assert result.PAGE_EDGE in reasons(segment_image(messy_page(table_level=80), PreprocessOptions()))  # still found


# --- tilt: a ruled page photographed askew ---------------------------------------------------------


def tilted_ruled_page(degrees: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A ruled page with '4071' on a rule, turned by `degrees`; and where each digit's centre (as found on
    the upright page) went."""
    page = np.full((600, 800, 3), 232, np.uint8)
    for y in range(40, 600, 44):
        cv2.line(page, (0, y), (799, y), (190, 150, 120), 2)
    cv2.putText(page, "4071", (250, 302), FONT, 2.2, INK, 5, cv2.LINE_AA)
    upright = [(x + width / 2, y + height / 2) for x, y, width, height in (crop.box for crop in segment_image(page).crops)]
    matrix = cv2.getRotationMatrix2D((400, 300), degrees, 1.0)
    moved = [tuple(int(v) for v in matrix @ (x, y, 1)) for x, y in upright]
    return cv2.warpAffine(page, matrix, (800, 600), borderMode=cv2.BORDER_REFLECT), moved


@pytest.mark.parametrize("degrees", [8.0, -12.0])
def test_a_ruled_page_photographed_askew_is_segmented_level(degrees):
    image, centres = tilted_ruled_page(degrees)
    segmentation = segment_image(image)
    assert len(segmentation.crops) == 4
    assert any(event.kind == result.LEVELLED for event in segmentation.events)
    for crop, centre in zip(segmentation.crops, centres):  # boxes are in the photo as given
        assert contains(crop.box, centre, slack=4)
    never = dataclasses.replace(Tuning(), tilt_range=(60.0, 70.0))
    assert len(segment_image(image, PreprocessOptions(tuning=never)).crops) < 4  # the rules take the digits


def sheet_on_table(strip: int) -> np.ndarray:
    """A portrait photo of a sheet on a dark, grainy table that shows as a strip `strip` px wide on the
    left and below the sheet; a number written 10 px from the sheet's edge."""
    rng = np.random.default_rng(3)
    page = np.clip(28 + rng.normal(0, 6, (640, 480)), 0, 255)
    sheet = np.zeros((640, 480), np.uint8)
    cv2.fillConvexPoly(sheet, np.array([[strip, 120], [460, 100], [450, 600], [strip + 6, 590]], np.int32), 255)
    page[sheet > 0] = (175 + rng.normal(0, 6, (640, 480)))[sheet > 0]
    image = cv2.cvtColor(np.clip(page, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    cv2.putText(image, "2095", (strip + 10, 420), FONT, 2.6, (40, 40, 40), 4, cv2.LINE_AA)
    return cv2.GaussianBlur(image, (3, 3), 0)


def test_the_table_beside_a_sheet_is_no_ink_that_writing_near_the_edge_could_join():
    # The paper's brightness, estimated by a closing, bridges a narrow strip of table: there the table's
    # grain is ink contrast. It stays in the raw mask (page-edge tests compare its sides) but not in
    # the mask that pieces are found in.
    image = sheet_on_table(55)
    tuning = Tuning()
    light = segment.light.measure_light(image, constants.INK_AUTO, 320, tuning)
    ink_mask = segment.mask.find_ink(light, 0.0, tuning)
    scale = light.scale
    writing = np.zeros_like(ink_mask.raw)
    writing[360 // scale : 425 // scale, 60 // scale : 280 // scale] = 255
    off_writing = cv2.bitwise_not(writing)
    raw_off_writing = cv2.countNonZero(cv2.bitwise_and(ink_mask.raw, off_writing))  # the sheet's edge, the table
    assert raw_off_writing > 1000
    assert cv2.countNonZero(cv2.bitwise_and(ink_mask.cleaned, off_writing)) < 0.02 * raw_off_writing
    assert cv2.countNonZero(cv2.bitwise_and(ink_mask.cleaned, writing)) == cv2.countNonZero(
        cv2.bitwise_and(ink_mask.raw, writing)) > 0
    assert [crop.box[0] // 48 for crop in segment_image(image).crops] == [1, 2, 3, 4]


def test_a_thick_box_line_in_a_cut_out_cell_is_no_table():
    cell = np.full((56, 56, 3), 220, np.uint8)
    cv2.rectangle(cell, (0, 0), (55, 55), (40, 40, 40), 3)
    cv2.putText(cell, "7", (16, 44), FONT, 1.2, INK, 3, cv2.LINE_AA)
    light = segment.light.measure_light(cell, constants.INK_AUTO, 320, Tuning())
    assert segment.mask._table(light, Tuning()) is None


def test_one_straight_edge_is_no_reason_to_level_the_page():
    image = paper()
    cv2.fillConvexPoly(image, np.array([[0, 0], [639, 0], [639, 60], [0, 130]], np.int32), (60, 60, 60))  # a table
    write(image, "3", (280, 330))
    segmentation = segment_image(image)
    assert len(segmentation.crops) == 1
    assert not any(event.kind == result.LEVELLED for event in segmentation.events)


def test_a_box_in_the_levelled_page_maps_back_around_the_same_ink():
    image = np.zeros((200, 300), np.uint8)
    cv2.rectangle(image, (100, 80), (140, 120), 255, -1)
    levelled, inverse = tilt.level(image, 10.0)
    ys, xs = np.nonzero(levelled > 128)
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    x, y, width, height = tilt.box_back(box, inverse, image.shape)
    assert x <= 100 and y <= 80 and x + width >= 140 and y + height >= 120
    assert width <= 60 and height <= 60


# --- boxes: a form's digit boxes ---------------------------------------------------------------------


def form_boxes(text: str, gap: int, thickness: int = 2) -> np.ndarray:
    """A form on a page: one digit per drawn box, the boxes side by side (gap 0: a comb) or apart."""
    image = paper()
    left, top, side = 150, 180, 64
    for index, character in enumerate(text):
        x = left + index * (side + gap)
        cv2.rectangle(image, (x, top), (x + side, top + side), (70, 70, 70), thickness)
        if character != " ":
            cv2.putText(image, character, (x + 16, top + 50), FONT, 1.5, INK, 4, cv2.LINE_AA)
    return image


@pytest.mark.parametrize("gap, thickness", [(0, 1), (0, 3), (10, 1), (10, 3)])
def test_the_boxes_of_a_form_are_no_digits(gap, thickness):
    segmentation = segment_image(form_boxes("4071", gap, thickness))
    assert len(segmentation.crops) == 4  # the sides no longer read as 1s, nor a box as a digit
    assert {result.BOX_SIDE, result.BOX_OUTLINE} & reasons(segmentation)


def test_an_empty_form_box_is_no_digit():
    assert not segment_image(form_boxes("  ", gap=10)).crops


def test_a_zero_is_no_drawn_box():
    labels = np.zeros((80, 80), np.int32)
    cv2.ellipse(labels, (40, 40), (22, 32), 0, 0, 360, 1, 4)  # a 0, however wide its strokes
    zero = Candidate(14, 4, 53, 73, (1,), int(np.count_nonzero(labels)))
    square = np.zeros((80, 80), np.int32)
    cv2.rectangle(square, (10, 10), (70, 70), 1, 2)
    box = Candidate(9, 9, 63, 63, (1,), int(np.count_nonzero(square)))
    assert not boxes.find_frames((zero,), labels, Tuning())
    assert boxes.find_frames((box,), square, Tuning()) == [box]


@pytest.mark.parametrize("index", [7451, 4302])  # MNIST test 5s twice and 1.7 times as wide as tall
def test_a_squat_mnist_five_is_no_line_but_left_to_the_model(mnist, index):
    from edge_runtime import reader

    assert mnist.test_labels[index] == 5
    tile = cv2.resize(mnist.test_images[index], (64, 64)).astype(np.float32) / 255
    page = np.full((480, 640), 230, np.float32)
    page[200:264, 288:352] = page[200:264, 288:352] * (1 - tile) + 30 * tile
    page = cv2.cvtColor(cv2.GaussianBlur(page.astype(np.uint8), (3, 3), 0.8), cv2.COLOR_GRAY2BGR)
    # Under the former `min_stroke_per_width` (1.7) each was dropped as "a line" and the page read nothing.
    assert len(segment_image(page).crops) == 1
    assert reader.DigitReader().read(page).digits == "5"


@pytest.mark.parametrize("count", [5, 60])
def test_each_pieces_line_heights_are_those_of_the_pieces_sharing_its_line(count):
    """`filters._line_heights` asks numpy for many pieces (a page of print) and Python for few: both
    give, for each piece, the sorted heights of the pieces `share_line` puts on its line."""
    from edge_runtime.segment import components, filters

    rng = np.random.default_rng(count)
    pieces = [Candidate(int(rng.integers(0, 600)), int(rng.integers(0, 400)), int(rng.integers(2, 40)),
                        int(rng.integers(2, 60)), (index + 1,), 10) for index in range(count)]
    expected = [sorted(other.height for other in pieces if components.share_line(piece, other)) for piece in pieces]
    assert [list(heights) for heights in filters._line_heights(pieces)] == expected


def test_small_images_are_segmented_at_one_size():
    """A cell is enlarged to `upscale_below` pixels on its shorter side whatever its own size, so the
    same cell at 34 and at 27 pixels (scaled by 0.8) is cut at one size; boxes map back inside it."""
    tuning = Tuning()
    assert pipeline._upscale_factor((34, 60), tuning) == pytest.approx(64 / 34)
    assert pipeline._upscale_factor((27, 48), tuning) == pytest.approx(64 / 27)
    assert pipeline._upscale_factor((64, 90), tuning) == 1.0 and pipeline._upscale_factor((10, 90), tuning) == 1.0
    assert pipeline._upscale_factor((16, 90), tuning) == tuning.max_upscale
    factor = 64 / 27
    found = pipeline.Segmentation((), (), (result.Event(result.MERGED, (0, 0, 113, 64), ((10, 5, 20, 30),), "x"),),
                                  constants.INK_DARK_ON_LIGHT)
    event = pipeline._shrunk(found, factor).events[0]
    assert event.box == (0, 0, 48, 27)  # the whole enlarged image is the whole image
    x, y, width, height = event.parts[0]
    assert (x, y) == (4, 2) and x + width >= (10 + 20) / factor and y + height >= (5 + 30) / factor


def test_a_small_cell_is_read_alike_at_its_size_and_scaled_down():
    """Digits drawn in a 34-px cell, and the same cell at 0.8 times its size, give the same cuts."""
    cell = np.full((34, 60), 235, np.uint8)
    cv2.putText(cell, "47", (12, 27), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 40, 2, cv2.LINE_AA)
    smaller = cv2.resize(cell, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    for image in (cell, smaller):
        crops = segment.extract_digits(image)
        assert len(crops) == 2
        assert all(0 <= x and x + w <= image.shape[1] and 0 <= y and y + h <= image.shape[0]
                   for x, y, w, h in (crop.box for crop in crops))
