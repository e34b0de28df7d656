"""Order: text lines chained left to right along their own slope, lines top to bottom, each left to right."""

from __future__ import annotations

from edge_runtime.segment.components import Candidate, share_line

__all__ = ["reading_order"]

CHAIN_GAP = 2.0
"""Blank, in digit heights, across which a piece still continues the line of the piece before it."""

FIRST_STEP = 0.75
"""How far, in digit heights, a line's second piece may sit above or below its first (a tilted line)."""

NEXT_STEP = 0.5
"""How far a later piece may sit from where the line, continued along its slope, would put it."""


def reading_order(candidates: tuple[Candidate, ...] | list[Candidate]) -> list[list[Candidate]]:
    """Groups into text lines, lines top to bottom, digits left to right.

    Pieces are taken left to right; each continues the line whose last piece is just before it and
    whose course (the slope of its pieces so far) passes closest to it. So a number that drifts
    up or down across a phone photo, or runs diagonally across a turned page, stays one line. A
    piece far from every line's end joins a line it overlaps vertically by half, as a second group
    of a number written with a wide gap does; otherwise it starts a line.
    """
    lines: list[list[Candidate]] = []
    for candidate in sorted(candidates, key=lambda candidate: (candidate.x + candidate.width / 2, candidate.y)):
        best, best_distance = None, None
        for line in lines:
            distance = _distance_to_course(candidate, line)
            if distance is not None and (best_distance is None or distance < best_distance):
                best, best_distance = line, distance
        if best is None:
            lines.append([candidate])
        else:
            best.append(candidate)
    lines.sort(key=lambda line: sum(_centre_y(candidate) for candidate in line) / len(line))
    for line in lines:
        line.sort(key=lambda candidate: candidate.x)
    return lines


def _distance_to_course(candidate: Candidate, line: list[Candidate]) -> float | None:
    """How far (in heights) the candidate lies from the line's course, or None when it cannot join it.

    The course is the line continued along its slope, or level at its mean height: whichever the
    candidate is nearer (a short line's slope is mostly the jitter of handwriting). A candidate off
    both joins a line it overlaps vertically by half.
    """
    last = line[-1]
    if _centre_x(candidate) < _centre_x(last) or candidate is last:
        return None  # left of the line's end: another line
    height = _median_height(line + [candidate])
    span = _line_span(line)
    if candidate.x - last.right <= CHAIN_GAP * height:
        expected = _centre_y(last) + _slope(line) * (_centre_x(candidate) - _centre_x(last))
        along = abs(_centre_y(candidate) - expected) / height
        level = abs(_centre_y(candidate) - sum(_centre_y(piece) for piece in line) / len(line)) / height
        distance = min(along, level)
        if distance <= (FIRST_STEP if len(line) == 1 else NEXT_STEP):
            return distance
    return abs(_centre_y(candidate) - _centre_y(span)) / height if share_line(candidate, span) else None


def _slope(line: list[Candidate]) -> float:
    """dy/dx of the line's piece centres (least squares); 0 for a single piece."""
    if len(line) < 2:
        return 0.0
    xs = [_centre_x(candidate) for candidate in line]
    ys = [_centre_y(candidate) for candidate in line]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def _centre_x(candidate: Candidate) -> float:
    return candidate.x + candidate.width / 2


def _centre_y(candidate: Candidate) -> float:
    return candidate.y + candidate.height / 2


def median_height(candidates: list[Candidate]) -> int:
    """The (upper) median height of the candidates, in pixels."""
    heights = sorted(candidate.height for candidate in candidates)
    return heights[len(heights) // 2]


def _median_height(line: list[Candidate]) -> float:
    return float(max(1, median_height(line)))


def _line_span(line: list[Candidate]) -> Candidate:
    """A stand-in one pixel wide, as tall as the line's median digit, centred on the line."""
    top = min(candidate.y for candidate in line)
    bottom = max(candidate.bottom for candidate in line)
    height = median_height(line)
    centre = (top + bottom) / 2
    return Candidate(0, int(centre - height / 2), 1, height, (), 0)
