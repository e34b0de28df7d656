"""Order: text lines by vertical overlap, top to bottom, each left to right."""

from __future__ import annotations

from edge_runtime.segment.components import Candidate, share_line

__all__ = ["reading_order"]


def reading_order(candidates: tuple[Candidate, ...] | list[Candidate]) -> list[list[Candidate]]:
    """Groups into text lines by vertical overlap, lines top to bottom, digits left to right."""
    lines: list[list[Candidate]] = []
    for candidate in sorted(candidates, key=lambda candidate: candidate.y + candidate.height / 2):
        line = next((line for line in lines if share_line(candidate, _line_span(line))), None)
        if line is None:
            lines.append([candidate])
        else:
            line.append(candidate)
    for line in lines:
        line.sort(key=lambda candidate: candidate.x)
    return lines


def _line_span(line: list[Candidate]) -> Candidate:
    """A stand-in one pixel wide, as tall as the line's median digit, centred on the line."""
    top = min(candidate.y for candidate in line)
    bottom = max(candidate.bottom for candidate in line)
    heights = sorted(candidate.height for candidate in line)
    median_height = heights[len(heights) // 2]
    centre = (top + bottom) / 2
    return Candidate(0, int(centre - median_height / 2), 1, median_height, (), 0)
