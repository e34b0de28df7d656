"""Tests for edge_runtime.segment.order: text lines that drift, tilt, stack and have wide gaps."""

from __future__ import annotations

from edge_runtime.segment.components import Candidate
from edge_runtime.segment.order import reading_order


def piece(x: int, y: int, width: int = 20, height: int = 30) -> Candidate:
    return Candidate(x, y, width, height, (), width * height)


def boxes(lines: list[list[Candidate]]) -> list[list[tuple[int, int]]]:
    return [[(candidate.x, candidate.y) for candidate in line] for line in lines]


def test_a_line_drifting_up_across_the_photo_stays_one_line():
    # The first digit sits more than a height below the last: one band would cut the line in two.
    line = [piece(40 * index, 36 - 4 * index) for index in range(10)]
    assert boxes(reading_order(line)) == [[(40 * index, 36 - 4 * index) for index in range(10)]]


def test_a_number_written_diagonally_is_one_line_in_order():
    steps = [piece(30 * index, 21 * index) for index in range(6)]  # about 35 degrees
    assert boxes(reading_order(list(reversed(steps)))) == [[(30 * index, 21 * index) for index in range(6)]]


def test_stacked_lines_stay_apart_top_to_bottom():
    first = [piece(0, 0), piece(30, 0)]
    second = [piece(0, 45), piece(30, 45)]
    assert boxes(reading_order(second + first)) == [[(0, 0), (30, 0)], [(0, 45), (30, 45)]]


def test_a_second_group_across_a_wide_gap_joins_its_line_by_overlap():
    pieces = [piece(0, 0), piece(30, 0), piece(200, 8), piece(230, 8), piece(200, 80)]
    assert boxes(reading_order(pieces)) == [[(0, 0), (30, 0), (200, 8), (230, 8)], [(200, 80)]]


def test_narrow_digits_whose_baseline_jitters_stay_one_line():
    # A third of a height up and down between neighbours: the two first pieces' slope is jitter.
    line = [piece(22 * index, (0, 10, 0, 10, -10)[index], width=12) for index in range(5)]
    assert boxes(reading_order(line)) == [[(22 * index, (0, 10, 0, 10, -10)[index]) for index in range(5)]]
