"""Boxes: the frames a form draws around its digits, found among the components and erased.

A form asks for one digit per box: a row of boxes drawn side by side (a comb) or apart. Too short to
be a page's rules, a comb's lines are one component with the digits that touch it, and its
separators read as 1s; an empty box takes in the digit written inside it when pieces are merged.
A frame is a component with ink along all four sides of its bounding box; its long straight runs
(its sides and separators) are erased, and what is left is the writing. Where the page's rule removal
has already erased a long comb's top and bottom lines, its separators are left as thin strokes from
one erased rule to the next, and are dropped as such.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.segment import filters, result
from edge_runtime.segment.components import Candidate, member_mask
from edge_runtime.segment.filters import Sifted
from edge_runtime.segment.light import Light
from edge_runtime.segment.mask import InkMask, straight_runs
from edge_runtime.segment.tuning import Tuning


def find_frames(candidates: tuple[Candidate, ...], labels: np.ndarray, tuning: Tuning,
                in_strip: bool = False) -> list[Candidate]:
    """The candidates that are drawn boxes: ink covering `Tuning.box_side_cover` of a band along each
    side of their bounding box, clear of the image's frame (a 0, however square, leaves its corners
    empty; a page edge or a table runs into the frame).

    With `in_strip` (a text line's strip, which cuts the boxes it crosses), a box may run into the
    strip's edges and lack its top or its bottom side, and one running into them may be a corner.
    """
    height, width = labels.shape
    frames = []
    for candidate in candidates:
        if min(candidate.width, candidate.height) < tuning.min_digit_height:
            continue
        if not in_strip and (candidate.x == 0 or candidate.y == 0 or candidate.right == width
                             or candidate.bottom == height):
            continue
        cover = tuning.box_side_cover
        band = max(2, round(tuning.box_band * min(candidate.width, candidate.height)))
        sides = _Sides(candidate, labels, band)
        if in_strip:
            # Cut by the strip's end, a box leaves a corner: one upright side and one across.
            cut = candidate.x == 0 or candidate.y == 0 or candidate.right == width or candidate.bottom == height
            upright = (sides.left() >= cover or sides.right() >= cover) if cut else \
                (sides.left() >= cover and sides.right() >= cover)
            is_box = upright and (sides.top() >= cover or sides.bottom() >= cover)
        else:  # the cheapest test first: most digits fail it at once
            is_box = all(side() >= cover for side in (sides.top, sides.bottom, sides.left, sides.right))
        if is_box:
            frames.append(candidate)
    return frames


class _Sides:
    """How much of each side of a candidate's box its ink covers, within a band; each side measured
    only when asked, from the label image (no mask of the whole candidate is built)."""

    def __init__(self, candidate: Candidate, labels: np.ndarray, band: int):
        self.candidate, self.labels, self.band = candidate, labels, band

    def _region(self, rows: slice, columns: slice) -> np.ndarray:
        candidate = self.candidate
        region = self.labels[candidate.y:candidate.bottom, candidate.x:candidate.right][rows, columns]
        if candidate.members is not None:
            return candidate.members[rows, columns]
        return region == candidate.labels[0] if len(candidate.labels) == 1 else np.isin(region, candidate.labels)

    def top(self) -> float:
        return float(self._region(slice(0, self.band), slice(None)).any(axis=0).mean())

    def bottom(self) -> float:
        return float(self._region(slice(-self.band, None), slice(None)).any(axis=0).mean())

    def left(self) -> float:
        return float(self._region(slice(None), slice(0, self.band)).any(axis=1).mean())

    def right(self) -> float:
        return float(self._region(slice(None), slice(-self.band, None)).any(axis=1).mean())


def erase_frames(mask: np.ndarray, frames: list[Candidate], labels: np.ndarray, tuning: Tuning) -> np.ndarray:
    """A copy of `mask` without the frames' straight runs: rows of ink `Tuning.box_line_share` as long as
    a frame is wide and columns as long as it is high, widened by a pixel for antialiased edges."""
    cleaned = mask.copy()
    for frame in frames:
        pixels = member_mask(frame, labels).astype(np.uint8)
        across = max(3, int(tuning.box_line_share * frame.width))
        down = max(3, int(tuning.box_line_share * frame.height))
        # Bridged a pixel across first, so a line a pixel off straight still makes one run.
        lines = straight_runs(pixels, (across, 1), 1, 3) | straight_runs(pixels, (1, down), 3, 1)
        lines = cv2.dilate(lines, np.ones((3, 3), np.uint8)) & pixels
        region = cleaned[frame.y:frame.bottom, frame.x:frame.right]
        region[lines.astype(bool)] = 0
    return cleaned


def without_box_sides(candidates: tuple[Candidate, ...], light: Light, labels: np.ndarray, ink_mask: InkMask,
                      tuning: Tuning) -> Sifted:
    """Drops thin upright strokes whose two ends meet erased rules, with paper on both sides: the sides
    of a form's boxes, drawn from its top line to its bottom line (a 1 written in a box seldom touches
    both; a sheet's edge has the table on one side); and the flat fringes a thick rule leaves along
    itself, which would join the digits above and below them."""
    if ink_mask.erased is None:
        return Sifted(tuple(candidates), ())
    reach = max(2, round(2 * ink_mask.stroke_width))
    near_rules = None
    kept, dropped = [], []
    for candidate in candidates:
        if (candidate.height > tuning.box_side_elongation * candidate.width and _joins_two_rules(candidate, ink_mask)
                and not filters.is_page_edge(candidate, light, ink_mask, tuning)):
            dropped.append((candidate, result.BOX_SIDE))
            continue
        # A fringe runs along its rule for a digit's width or more; a digit's bar cut off by the rule is short.
        if candidate.width > tuning.box_side_elongation * candidate.height and candidate.width >= 2 * tuning.min_digit_height:
            if near_rules is None:
                near_rules = cv2.dilate(ink_mask.erased, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
            pixels = member_mask(candidate, labels)
            along = near_rules[candidate.y:candidate.bottom, candidate.x:candidate.right][pixels]
            if np.count_nonzero(along) >= tuning.box_line_share * along.size:
                dropped.append((candidate, result.RULED_LINE))
                continue
        kept.append(candidate)
    return Sifted(tuple(kept), tuple(dropped))


def _joins_two_rules(candidate: Candidate, ink_mask: InkMask) -> bool:
    reach = max(2, round(2 * ink_mask.stroke_width))
    columns = slice(max(0, candidate.x - reach), candidate.right + reach)

    def rule_near(row: int) -> bool:
        return cv2.countNonZero(ink_mask.erased[max(0, row - reach):row + reach + 1, columns]) > 0

    return rule_near(candidate.y) and rule_near(candidate.bottom - 1)
