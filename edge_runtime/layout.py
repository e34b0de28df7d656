"""Groups and lines of a reading: which digits belong together, and how the number is written out.

The rule for a group: within a text line (digits ordered left to right), a new group starts where
the blank between two neighbouring digits is wider than `GROUP_GAP` times the line's median digit
height. Handwritten digits of one number sit less than half a digit height apart; the gap between
the parts of a phone number or a date is about a digit's height or more. A line spaced out evenly,
as a form's boxes space their digits (three or more blanks, most of them that wide), is one group
but where a blank is `SPACED_GAP` times the line's median blank or more. Groups are joined with one
space and lines with " / ", so "12 34 / 56" is two lines, the first of two groups. A separator
between two digits (a date's slash, `edge_runtime.separators`) ends a group whatever the blank.
"""

from __future__ import annotations

import statistics

GROUP_GAP = 0.9
"""A blank wider than this many median digit heights, inside a line, separates two groups."""

SPACED_GAP = 1.5
"""In an evenly spaced line, a blank this many times the line's median blank separates two groups."""

GROUP_SEPARATOR = " "
LINE_SEPARATOR = " / "


def assign_groups(boxes: list[tuple[int, int, int, int]], lines: list[int],
                  separators: list[tuple[int, int, int, int]] = ()) -> list[int]:
    """Group index (0-based, counted through the whole image) for each digit in reading order.

    Args:
        boxes: x, y, width, height of each digit, in reading order (lines top to bottom, each left to right).
        lines: The text line of each digit.
        separators: Boxes of separators found between digits (a date's slashes): a group ends at each.
    """
    groups: list[int] = []
    group = -1
    for index, (box, line) in enumerate(zip(boxes, lines)):
        if index == 0 or line != lines[index - 1]:
            group += 1
            members = [other for other, other_line in zip(boxes, lines) if other_line == line]
            threshold = _group_threshold(members)
        elif box[0] - (boxes[index - 1][0] + boxes[index - 1][2]) > threshold or any(
                _between(separator, boxes[index - 1], box) for separator in separators):
            group += 1
        groups.append(group)
    return groups


def _between(separator: tuple[int, int, int, int], left: tuple[int, int, int, int],
             right: tuple[int, int, int, int]) -> bool:
    """Whether a separator stands between two neighbouring digits of a line."""
    centre = separator[0] + separator[2] / 2
    overlap = min(separator[1] + separator[3], right[1] + right[3]) - max(separator[1], right[1])
    return left[0] + left[2] / 2 < centre < right[0] + right[2] / 2 and overlap >= 0.5 * min(separator[3], right[3])


def _group_threshold(line_boxes: list[tuple[int, int, int, int]]) -> float:
    """The blank, in pixels, beyond which a new group starts on this line (see the module's rule)."""
    wide = GROUP_GAP * statistics.median(box[3] for box in line_boxes)
    blanks = [right[0] - (left[0] + left[2]) for left, right in zip(line_boxes, line_boxes[1:])]
    if len(blanks) >= 3 and sum(blank > wide for blank in blanks) > len(blanks) / 2:
        return max(wide, SPACED_GAP * statistics.median(blanks))
    return wide


def join(labels: list[str], lines: list[int], groups: list[int]) -> str:
    """The digits written out, with a space between groups and " / " between lines."""
    text = []
    for index, label in enumerate(labels):
        if index:
            if lines[index] != lines[index - 1]:
                text.append(LINE_SEPARATOR)
            elif groups[index] != groups[index - 1]:
                text.append(GROUP_SEPARATOR)
        text.append(label)
    return "".join(text)


def structure(items) -> list[list[dict]]:
    """Lines, each a list of groups, each with its digits, boxes and confidences (the JSONL `lines`).

    Args:
        items: Digits with `label`, `box`, `confidence`, `accepted`, `line` and `group`, in reading order.
    """
    lines: list[list[dict]] = []
    for index, item in enumerate(items):
        if index == 0 or item.line != items[index - 1].line:
            lines.append([])
        if index == 0 or item.group != items[index - 1].group or not lines[-1]:
            lines[-1].append({"digits": "", "boxes": [], "confidences": []})
        group = lines[-1][-1]
        group["digits"] += item.label if item.accepted else "?"
        group["boxes"].append(list(item.box))
        group["confidences"].append(round(item.confidence, 4))
    return lines
