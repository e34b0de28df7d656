"""Real photos (../shared/realworld) as the yardstick, and the reader's learned and structural decisions.

The floors sit a little under the figures measured with the packaged model (see the README): a change
that loses real photos fails here, even when MNIST and the synthetic set still pass.
"""

import pathlib
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime import cli, reader as reader_module

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
import realworld  # noqa: E402

needs_set = pytest.mark.skipif(not (realworld.data_dir() / "labels.json").is_file(),
                               reason="../shared/realworld is not here (set REALWORLD_DIR)")


@pytest.fixture(scope="module")
def reader():
    return reader_module.DigitReader()


@pytest.fixture(scope="module")
def read_set(reader):
    items = realworld.load("whole")
    return items, realworld.read_all(reader, items)


@pytest.fixture(scope="module")
def scored(read_set):
    summary = realworld.score(*read_set)
    return summary["counts"], summary["no_digit_found"]


def _rate(counts, key):
    right, total = counts[key]
    return right / total


@needs_set
def test_split_is_by_whole_repository():
    tuning, measuring = realworld.load("tuning"), realworld.load("measuring")
    assert {item.repo for item in tuning}.isdisjoint({item.repo for item in measuring})
    assert len(tuning) + len(measuring) == len(realworld.load("whole")) == 209


@needs_set
def test_real_photo_floors(scored):
    counts, no_digit = scored
    # Measured: whole singles 98.7% (152/154), numbers 80.0% (44/55), measuring singles 100% (73/73),
    # no "no digit found"; each floor allows about one image less. (Eleventh session: 150 and 42; tenth,
    # with the line model trained without lead-in 1s: 152 and 44. The lead-in model reads these exact
    # pixels a little worse and everyday versions of them far better: see the everyday test below.)
    assert _rate(counts, "whole single") >= 0.98
    assert _rate(counts, "whole multi") >= 0.78
    assert _rate(counts, "measuring single") >= 0.98
    assert no_digit <= 1


@needs_set
def test_real_singles_accepted_at_the_cli_default_are_right(read_set):
    # Measured at 0.9: 148 of 154 accepted (96.1%), 147 right: Meza's 8 of 10 px, which the cuts read as
    # a 1 at 0.99. Meza's flagged 1, which the line model without lead-ins read `11`, is read right; shrsai's
    # sideways 9, which the opposite quarter turn reads as a 6 as surely, is not accepted.
    from edge_runtime import constants

    singles = [(item, result) for item, result in zip(*read_set) if item.kind == "single"]
    accepted = [(item, result) for item, result in singles if result.confidence >= constants.CLI_MIN_CONFIDENCE]
    right = sum(realworld.is_right(item, result) for item, result in accepted)
    assert len(accepted) >= 0.93 * len(singles)
    assert right >= 0.99 * len(accepted)
    flagged_one = next(result for item, result in singles if item.path.name == "1_4.jpg" and "Meza" in item.repo)
    assert flagged_one.digits == "1"
    sideways = {item.path.name: result for item, result in singles if "shrsai" in item.repo}
    assert sideways["9_0.jpg"].orientation in (90, 270) and sideways["9_0.jpg"].confidence <= 0.5
    assert sideways["6_0.jpg"].confidence <= 0.5  # a 6 or a 9: nothing tells which way the page lay
    assert sideways["3_0.jpg"].digits == "3" and sideways["3_0.jpg"].confidence > 0.9  # no such doubt


MEZA = "images/Charitable-Analytics-International__AI4Good---Meza-OCR-Challenge"
PAVITRA = "images/pavitrakumar78__Python-Custom-Digit-Recognition"


@needs_set
@pytest.mark.parametrize("name, digits", [
    (f"{MEZA}/2200_0.jpg", "2200"),  # touching, joined zeros in a logbook cell: read whole by the line model
    (f"{MEZA}/9_4.jpg", "9"),  # the column line beside the 9 is no 1
    (f"{MEZA}/51_0.jpg", "51"),  # both models read 51: the whole-cell reading, which drops the 1, does not overrule
    # a cut-out cell is read upright (turned, its 2 read as a 6), and its column line, dark and broken off at
    # the cell's top, is no 1 (`line_path.CELL_STUB_INK`)
    (f"{MEZA}/2_3.jpg", "2"),
    (f"{PAVITRA}/5_1.jpg", "5"),  # the bar of a thin-pen 5 in a tight crop is no ruled line
    (f"{PAVITRA}/4_2.jpg", "4"),
    (f"{PAVITRA}/7_2.jpg", "7"),  # its cuts doubt the 7 but the line model is sure upright: not turned into a 1
    # A plain 1 under a rule tilted by a degree: the rule's pieces above it made the line model read a 7.
    ("images/adelian14__Handwritten-Digit-Recognition/561247_0.jpg", "561247"),
    (f"{MEZA}/150_0.jpg", "150"),  # its faint 1 is a doubted mark, which the line model reads at 0.62
    # the column line broken off at the cell's top right was cut as a 1 (`reader._without_column_stubs`),
    # and two of the four ink floors read it too: the tie goes to the cuts' `3`
    (f"{MEZA}/3_1.jpg", "3"),
])
def test_real_cells_and_crops(reader, name, digits):
    assert realworld.digits_of(reader.read(str(realworld.data_dir() / name)).digits) == digits


@needs_set
def test_a_cell_in_even_light_is_read_as_surely_as_before_its_paper_slope_was_measured():
    # Its digits fill the lower rows of its line region: fitted to 60% of the pixels, their ink made a
    # paper slope of 22 levels, the line reading fell to 0.82 and the cell vote capped the right 2200.
    # Read now at 0.895 (the line model without lead-ins: 0.97).
    read = reader_module.DigitReader(options=reader_module.ReaderOptions(min_confidence=0.85)).read(
        str(realworld.data_dir() / f"{MEZA}/2200_0.jpg"))
    assert read.status == "ok" and read.digits == "2200"


def _shaded(image: np.ndarray) -> np.ndarray:
    """Light falling to 55% across the photo, from right to left."""
    light = np.linspace(0.55, 1.0, image.shape[1], dtype=np.float32)[np.newaxis, :, np.newaxis]
    return np.clip(image * light, 0, 255).astype(np.uint8)


def _washed_out(image: np.ndarray) -> np.ndarray:
    """Contrast cut to 40%, as in a photo of grey pencil or a faded print."""
    return (image.astype(np.float32) * 0.4 + 140).astype(np.uint8)


@needs_set
@pytest.mark.parametrize("change, singles, numbers", [
    # measured (scripts/robustness.py, bench/robustness.json): 147/154 and 40/55; 150 and 40; 149 and 39
    ("shaded", 145, 37),
    ("very-washed-out", 147, 37),
    ("double-size", 146, 36),
])
def test_the_real_photos_in_worse_light_and_at_twice_the_size_keep_a_floor(reader, change, singles, numbers):
    import robustness

    right, _, _ = robustness.read_changed(reader, realworld.load("whole"), robustness.CHANGES[change])
    assert right[("whole", "single")] >= singles
    assert right[("whole", "multi")] >= numbers


def _twice(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, None, fx=2, fy=2)


@needs_set
@pytest.mark.parametrize("name, change, digits", [
    ("images/filippoguerranti__handwritten_long_numbers_recognition/197_0.png", _shaded, "197"),
    ("images/Atharva-Pandkar__Recgnition-Using-Deep-Networks/3_0.jpg", _washed_out, "3"),
    ("images/harshalnishar__handwritten_digit_recognition/8_0.jpg", _washed_out, "8"),
    ("images/filippoguerranti__handwritten_long_numbers_recognition/99999_0.png", _washed_out, "99999"),  # 3 of 5 pass
    ("images/niraj-dudani__mnist-multiple-digits/7899777743_0.jpg", _washed_out, "7899777743"),  # 2 of 10 pass
    # the line model, surer of the rest, skips the blurred 1 that the cuts read: the cuts stand
    ("images/filippoguerranti__handwritten_long_numbers_recognition/19624_0.png",
     lambda image: cv2.GaussianBlur(image, (0, 0), 1.5), "19624"),
    (f"{MEZA}/87_0.jpg", _twice, "87"),  # logbook cells scanned at twice the size are still cells
])
def test_real_photos_in_worse_light_or_at_another_scale(reader, name, change, digits):
    image = cv2.imread(str(realworld.data_dir() / name))
    assert realworld.digits_of(reader.read(change(image)).digits) == digits


def _page(text, font=cv2.FONT_HERSHEY_SIMPLEX):
    image = np.full((200, 520, 3), 235, np.uint8)
    cv2.putText(image, text, (30, 130), font, 3, (30, 30, 30), 6, cv2.LINE_AA)
    return image


def test_a_word_is_no_number(reader):
    result = reader.read(_page("HELLO"))
    assert result.status == "no digit found" and result.digits == ""
    assert any(reason.startswith("not a digit") for _, reason in result.dropped)


def test_digits_beside_a_letter_are_kept(reader):
    assert reader.read(_page("12 E")).digits == "12"


def test_groups_and_lines_are_kept_in_the_text_and_jsonl():
    image = np.full((320, 700, 3), 235, np.uint8)
    for text, origin in (("12", (30, 120)), ("34", (330, 120)), ("56", (30, 270))):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 3, (30, 30, 30), 6, cv2.LINE_AA)
    result = reader_module.DigitReader(options=reader_module.ReaderOptions(reader="cuts")).read(image)
    assert result.digits == "12 34 / 56"
    lines = result.to_record()["lines"]
    assert [[group["digits"] for group in line] for line in lines] == [["12", "34"], ["56"]]


@pytest.mark.parametrize("gap", [0, 10])
def test_a_form_with_one_digit_per_box_reads_its_digits(reader, gap):
    image = np.full((420, 640, 3), 232, np.uint8)
    for index, character in enumerate("40719"):
        x = 120 + index * (64 + gap)
        cv2.rectangle(image, (x, 170), (x + 64, 234), (70, 70, 70), 2)  # a comb (gap 0) or boxes apart
        cv2.putText(image, character, (x + 16, 220), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (30, 30, 30), 4, cv2.LINE_AA)
    assert reader.read(image).digits == "40719"  # no box side read as a 1 (cuts or line), and one group


def test_a_table_of_numbers_is_read_whole(reader):
    """27 digits in a 3 x 3 table: a page was cut to its 12 most prominent digits, and a row went missing."""
    image = np.full((480, 640, 3), 230, np.uint8)
    for index in range(4):
        cv2.line(image, (60, 80 + 90 * index), (570, 80 + 90 * index), (60, 60, 60), 2)
        cv2.line(image, (60 + 170 * index, 80), (60 + 170 * index, 350), (60, 60, 60), 2)
    rows = [["810", "286", "180"], ["237", "182", "806"], ["868", "581", "409"]]
    for row, numbers in enumerate(rows):
        for column, number in enumerate(numbers):
            cv2.putText(image, number, (80 + 170 * column, 145 + 90 * row), cv2.FONT_HERSHEY_SIMPLEX, 1.6,
                        (30, 30, 30), 3, cv2.LINE_AA)
    assert realworld.digits_of(reader.read(image).digits) == "".join("".join(numbers) for numbers in rows)


def test_a_sideways_page_is_read_turned(reader):
    upright = _page("7", cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)
    sideways = cv2.rotate(upright, cv2.ROTATE_90_CLOCKWISE)
    turned = reader.read(sideways)
    assert turned.digits == "7" and turned.orientation == 90
    fixed = reader_module.DigitReader(options=reader_module.ReaderOptions(orientation="0")).read(sideways)
    assert fixed.orientation == 0


def test_a_small_cell_is_never_turned(reader):
    upright = cv2.resize(_page("7", cv2.FONT_HERSHEY_SCRIPT_SIMPLEX), (104, 40), interpolation=cv2.INTER_AREA)
    sideways = cv2.rotate(upright, cv2.ROTATE_180)  # 40 pixels high: a cell cut from a form, read as given
    assert reader.read(sideways).orientation == 0
    assert reader.read(cv2.resize(sideways, None, fx=4, fy=4)).orientation == 180  # the same as a page


def test_explain_says_why_pieces_were_dropped(tmp_path):
    folder = tmp_path / "with space"
    folder.mkdir()
    cv2.imwrite(str(folder / "hello.png"), _page("HELLO"))
    result = CliRunner().invoke(cli.main, [str(folder / "hello.png"), "--explain", "--reader", "cuts"])
    assert result.exit_code == 0, result.output
    assert "not a digit" in result.output and "no digit found" in result.output


def test_explain_says_what_was_done_to_the_whole_page(tmp_path):
    """A ruled page photographed askew is levelled, and washed-out ink looked at again: --explain says so."""
    folder = tmp_path / "with space"
    folder.mkdir()
    page = np.full((600, 800, 3), 232, np.uint8)
    for y in range(40, 600, 44):
        cv2.line(page, (0, y), (799, y), (190, 150, 120), 2)
    cv2.putText(page, "4071", (250, 302), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (30, 30, 30), 5, cv2.LINE_AA)
    tilted = cv2.warpAffine(page, cv2.getRotationMatrix2D((400, 300), 8.0, 1.0), (800, 600),
                            borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(folder / "askew.png"), tilted)
    faint = np.full((480, 640, 3), 230, np.uint8)
    cv2.putText(faint, "7", (250, 330), cv2.FONT_HERSHEY_SIMPLEX, 8, (195, 195, 195), 14, cv2.LINE_AA)
    cv2.imwrite(str(folder / "faint.png"), faint)
    result = CliRunner().invoke(cli.main, [str(folder), "--explain", "--min-confidence", "0"])
    assert result.exit_code == 0, result.output
    assert "askew.png: the page's rules lean -8.0 degrees: segmented turned level" in result.output
    assert "faint.png: ink too faint for the usual contrast floor" in result.output


def test_reader_choice_is_validated():
    with pytest.raises(ValueError, match="auto, cuts, line"):
        reader_module.ReaderOptions(reader="ocr")


def test_a_digit_model_given_as_the_line_model_is_refused_naming_the_option(tmp_path):
    digit_model = str(reader_module.DEFAULT_MODEL)
    result = CliRunner().invoke(cli.main, ["unused.png", "--line-model", digit_model])
    assert result.exit_code == 2 and "--line-model" in result.output and "--line-model-blank" in result.output


def test_line_reader_reads_a_number_whole(reader):
    image = np.full((160, 520, 3), 235, np.uint8)
    cv2.putText(image, "4071", (30, 120), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 3, (30, 30, 30), 6, cv2.LINE_AA)
    result = reader_module.DigitReader(options=reader_module.ReaderOptions(reader="line")).read(image)
    assert result.digits == "4071" and len(result.boxes) == 4
    assert all(item.crop.shape == (28, 28) for item in result.items)


def test_not_a_digit_pieces_are_recovered_from_their_reasons():
    reason = reader_module._not_a_digit_reason(0.818)
    dropped = (((5, 6, 40, 30), reason), ((0, 0, 3, 3), "speck"))
    assert reader_module._not_a_digit_pieces(dropped) == [((5, 6, 40, 30), pytest.approx(0.818))]


def test_a_wide_piece_beside_the_digits_is_on_their_line():
    digits = [(100, 20, 30, 40), (140, 22, 30, 40)]
    assert reader_module._on_line((40, 25, 50, 38), digits)
    assert not reader_module._on_line((40, 90, 50, 38), digits)


@pytest.mark.parametrize("text, digits", [("Rm 45", "45"), ("km 27", "27")])
def test_a_wide_letter_beside_a_number_does_not_become_digits(reader, text, digits):
    assert reader.read(_page(text)).digits == digits


def test_single_reads_one_digit_of_a_small_cell_with_the_line_model_on():
    cell = np.full((40, 70), 230, np.uint8)
    cv2.putText(cell, "47", (5, 32), cv2.FONT_HERSHEY_SIMPLEX, 1, 30, 2)
    result = reader_module.DigitReader(options=reader_module.ReaderOptions(single=True)).read(cell)
    assert len(result.items) == 1


def test_an_mnist_tile_pays_no_line_reads(reader, monkeypatch):
    from trainer import data

    tiles = list(data.load_mnist(allow_download=False).test_images[:50])
    monkeypatch.setattr(reader.line_recognizer, "read_line", lambda ink: pytest.fail("the line model ran on a tile"))
    results = reader.read_images(tiles, [""] * len(tiles))
    assert all(len(result.items) == 1 for result in results)


def test_the_reader_keeps_its_accuracy_on_mnist_tiles(reader):
    """Measured 99.45% on these 2,000 test tiles (99.58% on all 10,000): tiles are never read turned."""
    from trainer import data

    mnist = data.load_mnist(allow_download=False)
    results = reader.read_images(list(mnist.test_images[:2000]), [""] * 2000, keep_details=False)
    right = sum(result.digits == str(label) for result, label in zip(results, mnist.test_labels[:2000]))
    assert right / 2000 >= 0.992
    assert all(result.orientation == 0 for result in results)


def test_a_line_running_at_a_slant_is_no_strip_for_the_line_model():
    level = [(0, 100, 20, 30), (30, 104, 20, 30), (60, 98, 20, 30)]
    diagonal = [(0, 0, 20, 30), (30, 21, 20, 30), (60, 42, 20, 30)]
    assert not reader_module._slanted(level) and reader_module._slanted(diagonal)


def test_forms_with_a_digit_per_box_keep_a_floor(reader, mnist):
    """MNIST test digits written into combs and boxes apart (scripts/forms.py): 29 of these 30 forms
    were read exactly when measured in the fifth session (284 of 300 at 50 a layout; 27 and 276 in the
    fourth); the start of the fourth session read 67 of those 300."""
    import forms

    rng = np.random.default_rng(0)
    right = sum(forms.read_forms(reader, mnist.test_images, mnist.test_labels, rng, gap, thickness, 5)
                for gap, thickness in forms.LAYOUTS)
    assert right >= 27


@needs_set
@pytest.mark.slow
def test_the_real_photos_under_everyday_changes_keep_a_floor(reader):
    """Saved again as JPEG, scaled by 0.8-1.5, a little darker or lighter: changes too small to see.

    Measured (scripts/robustness.py --set everyday, bench/everyday.json): singles 1,209 and numbers 343
    summed over the eight versions; 143 singles and 27 numbers read right in every one of them. (Eleventh
    session, before the twelfth's cell rules and small images segmented at one size: 1,203 and 330; the
    line model trained without lead-in 1s: 1,206 and 294; 141 and 22.)
    """
    import robustness

    everyday = robustness.summed(reader, realworld.load("whole"))
    assert everyday["singles"] >= 1198 and everyday["numbers"] >= 334
    assert everyday["singles_in_every_version"] >= 139 and everyday["numbers_in_every_version"] >= 24


@needs_set
@pytest.mark.parametrize("name, digits, at_least", [("150_0.jpg", "150", 7), ("100_0.jpg", "100", 8),
                                                    ("153_0.jpg", "153", 8), ("13400_0.jpg", "13400", 7)])
def test_logbook_numbers_are_read_under_everyday_changes(reader, name, digits, at_least):
    """Meza cells that the line model without lead-in 1s read right in 1, 4 and 5 of the eight versions
    (`150` as `450` or `23`, `100` as `400` or `700`, `153` as `1153`): the lead-in model reads them in all
    eight (`150` in seven since small cells are segmented at one size: at 0.8 times its size it reads `5`).
    `13400`, cut as `3400` when saved again as a JPEG, was right in two before the twelfth session's
    cell rules, now in seven."""
    import robustness

    image = cv2.imread(str(realworld.data_dir() / MEZA / name))
    readings = {change: reader.read(transform(image)).digits for change, transform in robustness.EVERYDAY.items()}
    assert sum(realworld.digits_of(read) == digits for read in readings.values()) >= at_least, readings


@needs_set
@pytest.mark.parametrize("change", ["as-is", "jpeg-92", "jpeg-80", "lighter"])
def test_a_cell_whose_cuts_lost_a_lead_in_one_is_read_whole(reader, change):
    """Meza's `13400`: saved again as a JPEG, its cuts read `3400` (the lead-in 1 dropped), all at 0.96;
    the whole cell read by the line model, `13400` with its 1 at 0.95, holds that number and adds the 1."""
    import robustness

    image = robustness.EVERYDAY[change](cv2.imread(str(realworld.data_dir() / MEZA / "13400_0.jpg")))
    assert realworld.digits_of(reader.read(image).digits) == "13400"


def _digits(text: str, confidence: float = 0.96) -> tuple:
    return tuple(reader_module.Digit(label, confidence, (10 * index, 0, 10, 20), None, None, 0, True)
                 for index, label in enumerate(text))


def test_column_stubs_at_a_cells_ends_are_taken_out_of_its_cuts():
    def cut(*boxes):
        digits = tuple(reader_module.Digit("3" if width > 8 else "1", 0.95, box, None, None, 0, True)
                       for box in boxes for width in [box[2]])
        return reader_module._result(digits, (), "cell", (34, 56), 0.0)

    kept = reader_module._without_column_stubs(cut((12, 4, 19, 29), (46, 2, 4, 15)), (34, 56), 0)
    assert [digit.label for digit in kept.items] == ["3"]  # thin, at the top, at the right end: a stub
    for boxes in (((12, 4, 19, 29), (46, 8, 4, 15)),   # clear of the top and bottom
                  ((12, 4, 19, 29), (30, 2, 4, 15)),   # in the middle of the cell
                  ((12, 4, 19, 29), (46, 2, 9, 15))):  # too wide for a line
        assert len(reader_module._without_column_stubs(cut(*boxes), (34, 56), 0).items) == 2
    alone = cut((46, 2, 4, 15))
    assert reader_module._without_column_stubs(alone, (34, 56), 0) is alone  # a lone digit stays


def test_a_cells_ink_floors_vote_and_ties_go_to_the_cuts_reading():
    def floors(*texts):
        return [list(_digits(text, 1.0 if text else 0.0)) for text in texts]

    assert reader_module._voted(floors("31", "3", "3", "31"), "3")[:1] == ("3",)
    assert reader_module._voted(floors("31", "3", "3", "31"), "")[0] == "31"  # no cuts: the first as sure
    text, digits, share = reader_module._voted(floors("1", "", "", "1"), "")
    assert text == "1" and share == 0.5  # an empty reading is no tie-winner for empty cuts
    assert reader_module._voted(floors("104", "164", "04", "04"), "104")[::2] == ("04", 0.5)  # the majority first


def test_a_cell_reading_adds_to_the_cuts_only_around_their_whole_number():
    assert reader_module._adds_to_the_cuts(_digits("3400"), "13400", share=0.75)
    assert reader_module._adds_to_the_cuts(_digits("500"), "5100", share=1.0)
    assert not reader_module._adds_to_the_cuts(_digits("3400"), "13400", share=0.5)  # no majority of ink floors
    assert not reader_module._adds_to_the_cuts(_digits("7"), "78", share=1.0)  # one digit: a neighbour's ink
    assert not reader_module._adds_to_the_cuts(_digits("3400"), "3400", share=1.0)  # adds nothing
    assert not reader_module._adds_to_the_cuts(_digits("3400"), "13490", share=1.0)  # the cuts' 0 is not in it
    assert not reader_module._adds_to_the_cuts((), "13400", share=1.0)


def test_everyday_changes_are_small_and_keep_the_image_shape():
    import robustness

    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    assert np.array_equal(robustness.EVERYDAY["as-is"](image), image)
    for name in ("jpeg-92", "darker", "lighter"):
        changed = robustness.EVERYDAY[name](image)
        assert changed.shape == image.shape and changed.dtype == np.uint8
    assert robustness.EVERYDAY["scaled-1.5"](image).shape == (60, 90, 3)
    assert robustness.EVERYDAY["scaled-0.8"](image).shape == (32, 48, 3)
    # darker keeps black and white and darkens the middle grey
    grey = np.array([[[0, 128, 255]]], np.uint8)
    assert robustness.EVERYDAY["darker"](grey).tolist() == [[[0, 108, 255]]]
    assert robustness.EVERYDAY["lighter"](grey).tolist()[0][0][1] > 128


def test_stability_counts_the_versions_each_image_is_read_right_in():
    import collections

    import robustness

    items = [realworld.Item(path=pathlib.Path(f"/x/{name}.jpg"), label="1", kind=kind, part=part, repo="r", desc="")
             for name, kind, part in (("a", "single", "tuning"), ("b", "single", "measuring"),
                                      ("c", "multi", "tuning"))]
    right_in = collections.Counter({"/x/a.jpg": 3, "/x/b.jpg": 1})
    figures = robustness.stability(items, right_in, versions=3)
    assert figures["whole single"] == {"every": 1, "none": 0, "of": 2, "histogram": [0, 1, 0, 1]}
    assert figures["whole multi"] == {"every": 0, "none": 1, "of": 1, "histogram": [1, 0, 0, 0]}
    assert figures["measuring single"]["histogram"] == [0, 1, 0, 0]
