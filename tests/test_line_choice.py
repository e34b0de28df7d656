"""When the line model's reading of a line replaces the cuts' digits (`DigitReader._with_line_model`)."""

from __future__ import annotations

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
