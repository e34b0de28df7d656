"""Groups and lines: the gap rule, the written-out number and the JSONL structure."""

import dataclasses

import pytest

from edge_runtime import layout


@dataclasses.dataclass
class _Item:
    label: str
    box: tuple
    confidence: float = 0.99
    accepted: bool = True
    line: int = 0
    group: int = 0


def test_close_digits_form_one_group():
    boxes = [(0, 0, 10, 20), (14, 0, 10, 20), (28, 0, 10, 20)]
    assert layout.assign_groups(boxes, [0, 0, 0]) == [0, 0, 0]


def _spaced(blanks: list[int], height: int = 20, width: int = 10) -> list[tuple]:
    boxes, x = [(0, 0, width, height)], width
    for blank in blanks:
        x += blank
        boxes.append((x, 0, width, height))
        x += width
    return boxes


def test_digits_spaced_out_evenly_as_in_a_forms_boxes_are_one_group():
    assert layout.assign_groups(_spaced([30, 34, 28, 31]), [0] * 5) == [0] * 5


def test_an_evenly_spaced_line_still_splits_where_a_blank_is_much_wider():
    assert layout.assign_groups(_spaced([30, 31, 60, 29]), [0] * 5) == [0, 0, 0, 1, 1]


def test_a_phone_number_keeps_its_groups():
    # close digits, wide gaps between the parts: most blanks are narrow, so the plain rule holds
    assert layout.assign_groups(_spaced([4, 4, 25, 5, 4, 25, 4]), [0] * 8) == [0, 0, 0, 1, 1, 1, 2, 2]


def test_a_gap_wider_than_the_rule_starts_a_group():
    # Digits 20 high: a blank of 19 (0.95 heights) splits, a blank of 17 (0.85) does not.
    boxes = [(0, 0, 10, 20), (29, 0, 10, 20), (56, 0, 10, 20)]
    assert layout.assign_groups(boxes, [0, 0, 0]) == [0, 1, 1]


def test_each_line_starts_a_group_and_the_text_marks_both():
    boxes = [(0, 0, 10, 20), (12, 0, 10, 20), (60, 0, 10, 20), (0, 40, 10, 20)]
    lines = [0, 0, 0, 1]
    groups = layout.assign_groups(boxes, lines)
    assert groups == [0, 0, 1, 2]
    assert layout.join(["1", "2", "3", "4"], lines, groups) == "12 3 / 4"


def test_structure_holds_lines_of_groups():
    items = [_Item("1", (0, 0, 1, 1)), _Item("2", (2, 0, 1, 1), accepted=False),
             _Item("3", (9, 0, 1, 1), group=1), _Item("4", (0, 9, 1, 1), line=1, group=2)]
    lines = layout.structure(items)
    assert [[group["digits"] for group in line] for line in lines] == [["1?", "3"], ["4"]]
    assert lines[0][0]["boxes"] == [[0, 0, 1, 1], [2, 0, 1, 1]]


@pytest.mark.parametrize("labels", [[], ["7"]])
def test_short_readings(labels):
    assert layout.join(labels, [0] * len(labels), [0] * len(labels)) == "".join(labels)
