"""Filters: what is not a digit (specks, lines, blobs, page edges, pieces off the paper or along the frame),
each dropped with its reason, and the most prominent digits when there are too many."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from edge_runtime.segment import result
from edge_runtime.segment.components import Candidate, member_mask, share_line, sharing_line
from edge_runtime.segment.light import Light
from edge_runtime.segment.mask import InkMask, stroke_width
from edge_runtime.segment.tuning import Tuning

__all__ = ["Sifted", "most_prominent", "on_the_page", "plausible_digits"]


@dataclasses.dataclass(frozen=True, eq=False)
class Sifted:
    """The candidates a filter kept, and those it dropped with the reason (one of `result.REASONS`)."""

    kept: tuple[Candidate, ...]
    dropped: tuple[tuple[Candidate, str], ...]


def on_the_page(candidates: tuple[Candidate, ...], light: Light, labels: np.ndarray, tuning: Tuning) -> Sifted:
    """Drops what lies off the paper or runs along the frame: tables, page edges, shadows.

    This runs before pieces are merged, as a page edge's box can hold the whole page's writing.
    """
    height, width = light.ink.shape
    kept, dropped = [], []
    for candidate in candidates:
        if not _on_surface(candidate, light):
            dropped.append((candidate, result.OFF_THE_PAPER))
        elif _touches_frame(candidate, width, height) and not _is_tight_crop(candidate, labels, tuning):
            dropped.append((candidate, result.TOUCHES_FRAME))
        else:
            kept.append(candidate)
    return Sifted(tuple(kept), tuple(dropped))


def plausible_digits(
    candidates: tuple[Candidate, ...] | list[Candidate], light: Light, ink_mask: InkMask, labels: np.ndarray,
    tuning: Tuning,
) -> Sifted:
    """Drops specks, dots, dashes, lines, blobs and faint smudges; the kept ones get their ink mass."""
    kept, dropped = [], []
    minimum_mean_ink = _min_mean_ink(ink_mask, tuning)
    for candidate in candidates:
        reason = _implausible(candidate, light, ink_mask, labels, tuning)
        if reason is None:
            candidate = candidate.with_mass(_ink_mass(candidate, light.ink, labels))
            if candidate.mass < minimum_mean_ink * candidate.area:
                reason = result.TOO_FAINT
        if reason is None:
            kept.append(candidate)
        else:
            dropped.append((candidate, reason))
    if kept:
        # Far taller than the other candidates (or mostly empty), with paper on one side only: a
        # page edge that picked up the ends of grid or ruled lines, however wide that makes it.
        heights = sorted(candidate.height for candidate in kept)
        tall = tuning.edge_height_ratio * heights[(len(heights) - 1) // 2] if len(kept) >= 2 else math.inf
        reach = max(2, round(tuning.edge_reach * ink_mask.stroke_width))
        checked = []
        for candidate in kept:
            if (
                candidate.height <= tall and candidate.area >= tuning.edge_max_fill * candidate.width * candidate.height
            ) or not is_page_edge(candidate, light, ink_mask, tuning, reach):
                checked.append(candidate)
            else:
                dropped.append((candidate, result.PAGE_EDGE))
        kept = checked
    kept = _fit_their_line(kept, dropped, tuning)
    return Sifted(tuple(kept), tuple(dropped))


def _implausible(
    candidate: Candidate, light: Light, ink_mask: InkMask, labels: np.ndarray, tuning: Tuning
) -> str | None:
    """Why the candidate on its own is no digit, or None."""
    if candidate.height < tuning.min_digit_height:
        return result.TOO_SHORT
    if candidate.width > tuning.max_aspect * candidate.height:
        return result.TOO_WIDE
    if _is_blob(candidate, candidate.area, ink_mask.stroke_width, tuning):
        return result.BLOB
    if _is_line(candidate, labels, ink_mask.stroke_width, tuning):
        return result.THIN_LINE
    if candidate.height > tuning.edge_elongation * candidate.width and is_page_edge(
        candidate, light, ink_mask, tuning
    ):
        return result.PAGE_EDGE
    if candidate.height > tuning.line_piece_elongation * candidate.width and _on_long_line(
        candidate, light, ink_mask, labels, tuning
    ):
        return result.LONG_LINE
    return None


def _min_mean_ink(ink_mask: InkMask, tuning: Tuning) -> float:
    """Ink that on average barely passes the threshold is a smudge, a shadow edge or paper grain."""
    return max(tuning.min_ink_over_noise * ink_mask.noise_floor, tuning.min_ink_over_threshold * ink_mask.threshold)


def _on_surface(candidate: Candidate, light: Light) -> bool:
    """Writing sits on the paper: ink on a background darker than any paper is a table's texture."""
    centre = light.background[candidate.y + candidate.height // 2, candidate.x + candidate.width // 2]
    return int(centre) >= light.surface_floor


def _touches_frame(candidate: Candidate, width: int, height: int) -> bool:
    return candidate.x == 0 or candidate.y == 0 or candidate.right == width or candidate.bottom == height


def _is_tight_crop(candidate: Candidate, labels: np.ndarray, tuning: Tuning) -> bool:
    """A digit may touch the frame only when it fills much of it: a picture cropped to the digit.

    Such a digit is tall or wide in the frame, near its centre, and touches the frame with the ends of
    strokes only, where a page edge, a table or a shadow runs along it.
    """
    height, width = labels.shape
    fill = candidate.area / (candidate.width * candidate.height)
    centre_x = (candidate.x + candidate.right) / 2
    centre_y = (candidate.y + candidate.bottom) / 2
    # Half the frame's height, or of its width: a wide digit in a portrait photo fills it sideways.
    if max(candidate.height / height, candidate.width / width) < 0.5 or fill >= tuning.tight_crop_max_fill:
        return False
    if not (0.2 * width <= centre_x <= 0.8 * width and 0.2 * height <= centre_y <= 0.8 * height):
        return False
    members = member_mask(candidate, labels)
    contact = 0
    if candidate.y == 0:
        contact += int(np.count_nonzero(members[0]))
    if candidate.bottom == height:
        contact += int(np.count_nonzero(members[-1]))
    if candidate.x == 0:
        contact += int(np.count_nonzero(members[:, 0]))
    if candidate.right == width:
        contact += int(np.count_nonzero(members[:, -1]))
    return contact <= tuning.tight_crop_max_contact * max(candidate.width, candidate.height)


def _ink_mass(candidate: Candidate, ink: np.ndarray, labels: np.ndarray) -> float:
    region = ink[candidate.y : candidate.bottom, candidate.x : candidate.right]
    return float(region[member_mask(candidate, labels)].sum(dtype=np.float64))


def _is_blob(candidate: Candidate, ink_area: int, page_stroke_width: float, tuning: Tuning) -> bool:
    """A solid, roundish patch thicker than strokes; a 1 is just as solid but long and narrow."""
    fill = ink_area / (candidate.width * candidate.height)
    shorter, longer = sorted((candidate.width, candidate.height))
    return (
        fill > tuning.blob_fill
        and shorter > 3 * page_stroke_width
        and longer < tuning.blob_max_elongation * shorter
    )


def _is_line(candidate: Candidate, labels: np.ndarray, page_stroke_width: float, tuning: Tuning) -> bool:
    """A line drawn on the page (its edge, a margin, a stray rule) rather than a digit.

    Stroke length is ink area divided by the candidate's own stroke width: a thin line has about
    one box width of it, digits two or more (a 1 is long for its width; a 7, the least inked of
    the others, has about two and a half widths). Printed lines are also much finer than the
    strokes of the writing on the same page.
    """
    members = member_mask(candidate, labels).view(np.uint8)
    own_stroke_width = stroke_width(members)
    if own_stroke_width < tuning.min_stroke_ratio * page_stroke_width:
        return True
    stroke_length = candidate.area / own_stroke_width
    if stroke_length < tuning.min_stroke_per_width * candidate.width:
        # Strokes one or two pixels wide (a ballpoint on a large page, at working resolution) all
        # measure two pixels wide, which halves their length; half their outline is their length.
        contours, _ = cv2.findContours(members, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        stroke_length = max(stroke_length, sum(cv2.arcLength(contour, True) for contour in contours) / 2)
    return stroke_length < tuning.min_stroke_per_width * candidate.width


def _on_long_line(candidate: Candidate, light: Light, ink_mask: InkMask, labels: np.ndarray, tuning: Tuning) -> bool:
    """A thin piece of a long straight line too tilted (or too broken) to be erased as a rule.

    The piece's own axis is followed across the paper above and below it: a margin line goes on,
    a 1 ends where it was written. A short piece gives its tilt only roughly, so tilts near it are
    tried too.
    """
    members = member_mask(candidate, labels).view(np.uint8)
    moments = cv2.moments(members, binaryImage=True)
    if moments["m00"] == 0 or moments["mu02"] == 0:
        return False
    slope = moments["mu11"] / moments["mu02"]  # dx / dy of the axis
    centre_x = candidate.x + moments["m10"] / moments["m00"]
    centre_y = candidate.y + moments["m01"] / moments["m00"]
    height, width = labels.shape
    side = tuning.line_side
    rows = np.arange(height)
    tilts = np.asarray(tuning.line_tilts)[:, np.newaxis]
    columns = np.rint(centre_x + (slope + tilts) * (rows - centre_y)).astype(np.intp)  # a row of columns per tilt
    outside = (rows < candidate.y - tuning.rule_gap) | (rows >= candidate.bottom + tuning.rule_gap)
    valid = outside & (columns >= side) & (columns < width - side)
    columns = np.clip(columns, side, width - side - 1)
    valid &= light.background[rows, columns] >= light.surface_floor  # on the paper
    # Followed in the ink before rules were erased: a margin erased as a rule for most of its length
    # leaves pieces where it fades or crosses the ruling, and only the raw ink shows where it goes on.
    # A horizontal rule crossing a 1's axis has ink beside the axis too, so it does not count.
    inked = ink_mask.raw
    # A line is thin: ink on the axis (give or take a pixel) with paper beside it, unlike texture.
    on_axis = inked[rows, columns - 1] | inked[rows, columns] | inked[rows, columns + 1]
    beside = inked[rows, columns - side] | inked[rows, columns + side]
    followed = np.count_nonzero(valid, axis=1)
    continued = np.count_nonzero(valid & on_axis & ~beside, axis=1)
    return bool(np.any((followed >= candidate.height) & (continued >= tuning.line_continues * followed)))


def is_page_edge(
    candidate: Candidate, light: Light, ink_mask: InkMask, tuning: Tuning, reach: int | None = None
) -> bool:
    """A long thin stroke with paper on one side and something much darker on the other.

    A 1 has paper on both sides (the ink of its neighbours does not count); the edge of a sheet
    lying on a table has the table on one.
    """
    width = light.gray.shape[1]
    reach = max(2, candidate.width) if reach is None else reach
    rows = slice(candidate.y, candidate.bottom)
    left_columns = slice(max(0, candidate.x - 2 * reach), max(0, candidate.x - reach))
    right_columns = slice(min(width, candidate.right + reach), min(width, candidate.right + 2 * reach))
    # Near the frame, the side between the stroke and the frame (but for the stroke's blur) is used.
    if left_columns.start == left_columns.stop:
        left_columns = slice(0, max(0, candidate.x - 2))
    if right_columns.start == right_columns.stop:
        right_columns = slice(min(width, candidate.right + 2), width)
    left = _paper_brightness(light.gray, ink_mask.raw, rows, left_columns)
    right = _paper_brightness(light.gray, ink_mask.raw, rows, right_columns)
    if left is None or right is None:
        return True  # a long stroke squeezed against the frame, or between other strokes
    # Light falling off across the page is no edge: each side is compared with the page's overall
    # slope of light (a plane through the paper's brightness), which a sheet's edge does not follow.
    middle = (candidate.y + candidate.bottom) / 2
    left /= max(1.0, light.paper_on_plane((left_columns.start + left_columns.stop) / 2, middle))
    right /= max(1.0, light.paper_on_plane((right_columns.start + right_columns.stop) / 2, middle))
    return abs(left - right) > tuning.edge_side_contrast * max(left, right, 1e-6)


def _paper_brightness(gray: np.ndarray, raw_mask: np.ndarray, rows: slice, columns: slice) -> float | None:
    gray = gray[rows, columns]
    if gray.size == 0:
        return None
    paper = cv2.bitwise_not(raw_mask[rows, columns])
    if cv2.countNonZero(paper) == 0:
        return None
    return cv2.mean(gray, mask=paper)[0]


def _fit_their_line(candidates: list[Candidate], dropped: list, tuning: Tuning) -> list[Candidate]:
    """Drops thin lines much taller than the digits beside them, then dots and specks much shorter.

    The reference is the median height of the text line, so that one tall stray line (a margin
    or a page edge) cannot make every digit beside it look like a speck; a candidate with fewer
    than two others on its line is compared with the whole page. Tall thin lines go first, with
    the page's lower median as reference, so that a margin fragment beside a lone digit neither
    stays nor makes the digit look like a speck. What is dropped is added to `dropped`.
    """
    if len(candidates) >= 2 and any(_is_thin(candidate, tuning) for candidate in candidates):
        candidates = _drop_by_height(candidates, dropped, tuning, lower=True, specks=False)
    return _drop_by_height(candidates, dropped, tuning, lower=False, specks=True)


_PAIRS_IN_PYTHON = 8
"""Up to this many candidates, `_line_heights` asks `share_line` pair by pair; beyond, numpy
(`sharing_line`) for each candidate against all the others (at 3 Python is quicker, at 8 about even)."""


def _line_heights(candidates: list[Candidate]) -> list:
    """For each candidate, the sorted heights of the candidates on its text line (itself included).

    A page of printed text holds hundreds of pieces: asked pair by pair in Python, this took 90 ms of
    a 280 ms read.
    """
    if len(candidates) <= _PAIRS_IN_PYTHON:
        return [sorted(other.height for other in candidates if share_line(candidate, other))
                for candidate in candidates]
    tops = np.array([candidate.y for candidate in candidates], np.int64)
    heights = np.array([candidate.height for candidate in candidates], np.int64)
    return [np.sort(heights[sharing_line(candidate, tops, heights)]) for candidate in candidates]


def _drop_by_height(
    candidates: list[Candidate], dropped: list, tuning: Tuning, lower: bool, specks: bool
) -> list[Candidate]:
    if not candidates:
        return candidates
    page_heights = sorted(candidate.height for candidate in candidates)
    page_typical = page_heights[(len(page_heights) - 1) // 2 if lower else len(page_heights) // 2]
    line_heights = _line_heights(candidates)
    kept = []
    for candidate, heights in zip(candidates, line_heights):
        typical = heights[len(heights) // 2] if len(heights) >= 3 else page_typical
        if specks and candidate.height < tuning.min_line_height_fraction * max(
            typical, heights[-1] if len(heights) < 3 else 0
        ):
            dropped.append((candidate, result.TOO_SHORT_FOR_LINE))
            continue
        if (
            _is_thin(candidate, tuning)
            and len(page_heights) >= 2
            and candidate.height > tuning.max_line_height_ratio * typical
        ):
            dropped.append((candidate, result.TOO_TALL_FOR_LINE))
            continue
        kept.append(candidate)
    return kept


def _is_thin(candidate: Candidate, tuning: Tuning) -> bool:
    return candidate.height > tuning.edge_elongation * candidate.width


def most_prominent(
    candidates: tuple[Candidate, ...] | list[Candidate], shape: tuple[int, int], single: bool, max_digits: int
) -> Sifted:
    """The `max_digits` with the most ink mass, or with `single` the one digit whose ink mass,
    weighted down by up to half with its distance from the centre of an image of `shape`, is largest."""
    limit = 1 if single else max_digits
    if len(candidates) <= limit:
        return Sifted(tuple(candidates), ())
    if not single:
        ranked = sorted(candidates, key=lambda candidate: candidate.mass, reverse=True)
        return Sifted(tuple(ranked[:limit]), tuple((candidate, result.NOT_PROMINENT) for candidate in ranked[limit:]))
    height, width = shape
    half_diagonal = 0.5 * math.hypot(width, height)

    def score(candidate: Candidate) -> float:
        off_x = candidate.x + candidate.width / 2 - width / 2
        off_y = candidate.y + candidate.height / 2 - height / 2
        return candidate.mass * (1.0 - 0.5 * math.hypot(off_x, off_y) / half_diagonal)

    best = max(candidates, key=score)
    others = tuple((candidate, result.NOT_PROMINENT) for candidate in candidates if candidate is not best)
    return Sifted((best,), others)
