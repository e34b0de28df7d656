"""When the line model's reading of a line replaces the cuts' digits (`DigitReader._with_line_model`)."""

from __future__ import annotations

import pytest

from edge_runtime import reader as reader_module


def test_a_line_reading_that_skips_a_sure_cut_digit_does_not_replace_the_cuts():
    def digit(label: str, x: int, width: int, confidence: float) -> reader_module.Digit:
        return reader_module.Digit(label, confidence, (x, 0, width, 40), None, None, 0, True)

    cut = [digit("1", 0, 10, 0.95), digit("9", 20, 20, 0.95), digit("7", 50, 20, 0.95), digit("5", 80, 20, 0.95)]
    # The line model's last digit spans to the ink's end, over the 5 it skipped.
    skipped = [digit("1", 0, 15, 0.99), digit("9", 15, 30, 0.99), digit("7", 45, 55, 0.99)]
    whole = [digit("1", 0, 15, 0.99), digit("9", 15, 30, 0.99), digit("7", 45, 30, 0.99), digit("5", 75, 25, 0.99)]
    assert not reader_module._covers(skipped, cut, 0, (40, 100))
    assert reader_module._covers(whole, cut, 0, (40, 100))
    doubtful = cut[:3] + [digit("5", 80, 20, 0.6)]  # a doubtful cut may be a stray mark the line model rightly skips
    assert reader_module._covers(skipped, doubtful, 0, (40, 100))


def _cut(label: str, box: tuple[int, int, int, int], confidence: float = 0.99) -> reader_module.Digit:
    return reader_module.Digit(label, confidence, box, None, None, 0, True)


def test_a_piece_much_wider_than_its_line_makes_the_line_doubtful():
    # `889`: the 8 and the 9 touch, and the cuts read the pair as one 8, surely.
    narrow, pair = (374, 164, 68, 174), (440, 140, 158, 204)
    assert reader_module._doubtful_line([_cut("8", narrow, 0.998), _cut("8", pair, 0.95)], [narrow, pair])
    plain = (460, 164, 80, 174)
    assert not reader_module._doubtful_line([_cut("8", narrow, 0.998), _cut("0", plain, 0.95)], [narrow, plain])


def test_digits_written_with_no_gap_make_the_line_doubtful():
    # `59918`: the 1 touches the 9 before it, and the cuts read the pair as one 9; no cut looks doubtful.
    boxes = [(540, 568, 40, 82), (578, 576, 52, 80), (632, 576, 62, 82), (696, 576, 58, 80)]
    cut = [_cut(label, box, 0.97) for label, box in zip("5998", boxes)]
    assert reader_module._doubtful_line(cut, boxes)
    apart = [(x, 576, 50, 80) for x in (500, 570, 640, 710)]  # 20 px apart: a quarter of their height
    assert not reader_module._doubtful_line([_cut(label, box, 0.97) for label, box in zip("5998", apart)], apart)
    assert not reader_module._doubtful_line([cut[0]], boxes[:1])


def test_a_plain_digit_among_1s_is_no_doubt():
    ones = [(x, 0, 8, 40) for x in (0, 20, 40)]
    boxes = ones + [(60, 0, 22, 40)]
    assert not reader_module._doubtful_line([_cut("1", box) for box in ones] + [_cut("4", boxes[-1])], boxes)


def test_a_lone_wide_piece_read_unsurely_is_doubtful():
    # `94` written small and touching: one piece, read as a 4 at 0.975.
    wide = (312, 304, 36, 44)
    assert reader_module._doubtful_line([_cut("4", wide, 0.975)], [wide])
    assert not reader_module._doubtful_line([_cut("0", wide, 0.999)], [wide])  # a wide 0, read surely
    assert not reader_module._doubtful_line([_cut("4", (312, 304, 26, 44), 0.975)], [(312, 304, 26, 44)])


def test_digits_over_a_doubted_mark_need_only_be_read_plausibly():
    # Meza's `150`: the faint 1 was a mark the digit model doubted; the line model read it at 0.62.
    mark = (9, 11, 12, 9)
    read = [_cut("1", (9, 0, 12, 34), 0.62), _cut("5", (22, 0, 10, 34), 0.996), _cut("0", (33, 0, 10, 34), 0.996)]
    off, on = reader_module._split_by_marks(read, [mark], 0, (34, 58))
    assert [digit.label for digit in off] == ["5", "0"] and [digit.label for digit in on] == ["1"]
    assert reader_module._sureness_off_marks(off, on) == 0.996
    assert reader_module._sureness_off_marks(*reader_module._split_by_marks(read, [], 0, (34, 58))) == 0.62
    unsure = [_cut("1", (9, 0, 12, 34), 0.3)] + read[1:]
    assert reader_module._sureness_off_marks(*reader_module._split_by_marks(unsure, [mark], 0, (34, 58))) < 0


def test_a_line_reading_that_agrees_with_the_cuts_beside_a_mark_reads_the_mark_too():
    # `1945`: the joined 19 was a mark; the cuts read 4 (0.992) and 5, the line model 1945, its 4 at 0.953.
    mark = (184, 206, 122, 108)
    cut = [_cut("4", (306, 194, 84, 116), 0.992), _cut("5", (384, 202, 80, 98), 1.0)]
    read = [_cut("1", (183, 176, 72, 156), 0.66), _cut("9", (252, 176, 77, 156), 0.992),
            _cut("4", (327, 176, 72, 156), 0.953), _cut("5", (397, 176, 85, 156), 0.996)]
    off, on = reader_module._split_by_marks(read, [mark], 0, (480, 640))
    assert reader_module._sureness_off_marks(off, on) < 0.992  # not surer than the cuts beside the mark ...
    assert reader_module._agrees_beside_marks(off, on, cut)  # ... but it reads what they read there
    misread = read[:2] + [_cut("9", (327, 176, 72, 156), 0.953), read[3]]
    assert not reader_module._agrees_beside_marks(*reader_module._split_by_marks(misread, [mark], 0, (480, 640)), cut)
    faint = [_cut("1", (183, 176, 72, 156), 0.3)] + read[1:]
    assert not reader_module._agrees_beside_marks(*reader_module._split_by_marks(faint, [mark], 0, (480, 640)), cut)
    assert not reader_module._agrees_beside_marks(*reader_module._split_by_marks(read, [], 0, (480, 640)), cut)


def test_the_pages_polarity_is_decided_once_and_only_when_a_line_pass_runs(monkeypatch):
    import cv2
    import numpy as np

    from edge_runtime.segment import light

    calls = []
    decide = light.page_polarity
    monkeypatch.setattr(light, "page_polarity", lambda *args: calls.append(1) or decide(*args))
    reader = reader_module.DigitReader(options=reader_module.ReaderOptions(min_confidence=0))
    tile = np.zeros((28, 28), np.uint8)
    cv2.line(tile, (14, 5), (14, 22), 255, 3)
    reader.read(tile)  # an MNIST tile gets no line pass
    assert calls == []
    cell = np.full((34, 60), 200, np.uint8)
    cv2.putText(cell, "68", (12, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.75, 60, 2, cv2.LINE_AA)
    reader.read(cell)  # a cut-out cell: read whole at four ink floors, and its doubtful line again
    assert calls == [1]


def test_an_image_smaller_than_a_digit_gets_no_whole_cell_reading():
    import numpy as np

    reader = reader_module.DigitReader(options=reader_module.ReaderOptions(min_confidence=0))
    for shape in ((2, 2), (5, 5), (4, 60), (34, 3)):
        noise = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
        assert reader.read(noise).status == "no digit found", shape  # the line model read 2x2 of noise as 10


def test_digits_over_a_surely_non_digit_piece_must_be_read_surely():
    # A wide piece the digit model was sure is no digit: touching digits, or a printed letter (`Room`'s m).
    mark = (40, 0, 50, 40)
    beside = _cut("4", (0, 0, 30, 40), 0.6)  # beside the mark: not this check's concern
    sure = [beside, _cut("0", (40, 0, 25, 40), 0.95), _cut("0", (65, 0, 25, 40), 0.92)]
    assert reader_module._sure_over_sure_marks(sure, [mark], 0, (40, 100))
    unsure = sure[:2] + [_cut("1", (65, 0, 25, 40), 0.7)]
    assert not reader_module._sure_over_sure_marks(unsure, [mark], 0, (40, 100))
    assert reader_module._sure_over_sure_marks(unsure, [], 0, (40, 100))


def test_wide_pieces_are_grouped_into_their_text_lines_left_to_right():
    top = [(120, 10, 40, 30), (10, 12, 50, 28)]
    bottom = [(30, 80, 60, 32)]
    assert reader_module._lines_of(top + bottom) == [[(10, 12, 50, 28), (120, 10, 40, 30)], [(30, 80, 60, 32)]]


def test_a_piece_the_line_model_read_is_noted_as_read_and_keeps_its_probability():
    dropped = ((10, 0, 40, 30), reader_module._not_a_digit_reason(0.962)), ((60, 0, 4, 4), "speck")
    noted = reader_module._noted_as_read(dropped, [(10, 0, 40, 30)], 0, (30, 100))
    assert noted[0][1] == "not a digit (model, 96.2%); " + reader_module._READ_BY_LINE and noted[1] == dropped[1]
    assert reader_module._not_a_digit_pieces(noted) == [((10, 0, 40, 30), pytest.approx(0.962))]
    assert reader_module._noted_as_read(dropped, [], 0, (30, 100)) is dropped


def test_which_not_a_digit_pieces_are_taken_into_a_line_of_cut_digits():
    line = [(100, 0, 30, 54), (134, 0, 30, 54)]  # the cut `50` of `1950`
    touching_pair = (60, 2, 38, 52)  # `19` written touching: narrow, and surely no digit
    assert reader_module._taken_into_line(touching_pair, 0.91, line)
    assert not reader_module._taken_into_line((20, 2, 38, 52), 0.91, line)  # a label's letter stands off
    assert reader_module._taken_into_line((20, 2, 52, 52), 0.6, line)  # wide and doubted: digits run together
    assert not reader_module._taken_into_line((20, 2, 52, 52), 0.95, line)
    assert reader_module._taken_into_line((0, 2, 70, 52), 0.99, line)  # very wide: no one digit is that wide


def test_a_piece_touches_the_line_within_a_fifth_of_its_height():
    line = [(100, 0, 30, 50), (134, 0, 30, 50)]
    assert reader_module._touches_line((60, 0, 40, 50), line)  # ends where the first digit starts
    assert reader_module._touches_line((170, 0, 20, 50), line)  # 6 px after the last: under 0.2 x 50
    assert not reader_module._touches_line((20, 0, 30, 50), line)  # 50 px before: a label's letter


def _on_line(label: str, box: tuple[int, int, int, int], line: int) -> reader_module.Digit:
    return reader_module.Digit(label, 0.98, box, None, None, line, True)


def test_a_lone_digit_far_smaller_than_the_number_is_a_stray_mark():
    number = [_on_line(label, (400 + 22 * index, 400, 20, 40), 1) for index, label in enumerate("1934")]
    tick = _on_line("1", (88, 128, 9, 18), 0)  # under half the number's height, alone on its line
    result = reader_module._result((tick, *number), (), "page.jpg", (480, 640), 0.0)
    assert result.digits == "1 / 1934"
    cleaned = reader_module._without_strays(result)
    assert cleaned.digits == "1934" and cleaned.dropped == (((88, 128, 9, 18), reader_module._STRAY_REASON),)
    # As tall as half the number's digits, or one of two digits on its line, it stays.
    for kept in ([_on_line("1", (88, 128, 9, 20), 0)], [_on_line("1", (88, 128, 9, 18), 0), _on_line("2", (99, 128, 9, 18), 0)]):
        assert reader_module._without_strays(reader_module._result((*kept, *number), (), "p", (480, 640), 0.0)).items[0] == kept[0]
    # Lines of lone digits only: nothing to compare them with.
    singles = reader_module._result((tick, number[0]), (), "p", (480, 640), 0.0)
    assert reader_module._without_strays(singles) is singles


def test_thin_1s_stacked_in_a_column_beside_other_digits_are_a_broken_line():
    # A margin broken into dashes, each read as a 1 on a line of its own, beside the page's one 4.
    dashes = [_on_line("1", (102 - index, 368 + 80 * index, 6, 52), index + 1) for index in range(4)]
    four = _on_line("4", (758, 248, 60, 82), 0)
    result = reader_module._result((four, *dashes), (), "page.jpg", (768, 1024), 0.0)
    cleaned = reader_module._without_broken_lines(result)
    assert cleaned.digits == "4"
    assert [reason for _, reason in cleaned.dropped] == [reader_module._BROKEN_LINE_REASON] * 4
    # A list of 1s written in a column, with nothing else on the page, is read as written.
    alone = reader_module._result(tuple(dashes), (), "page.jpg", (768, 1024), 0.0)
    assert reader_module._without_broken_lines(alone) is alone
    # Two dashes are not enough, nor are 1s that do not stand one under another.
    two = reader_module._result((four, *dashes[:2]), (), "page.jpg", (768, 1024), 0.0)
    assert reader_module._without_broken_lines(two) is two
    scattered = [_on_line("1", (100 + 200 * index, 368 + 80 * index, 6, 52), index + 1) for index in range(4)]
    apart = reader_module._result((four, *scattered), (), "page.jpg", (768, 1024), 0.0)
    assert reader_module._without_broken_lines(apart) is apart
