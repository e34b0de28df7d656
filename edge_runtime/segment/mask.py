"""Mask: the ink threshold above the paper's own grain, the typical stroke width, and ruled lines erased.

Thick regions and rules are found on a copy of the mask at half resolution (each pixel the maximum
of four), where long morphological kernels cost an eighth as much. Ruled and grid lines (long thin
straight runs) are erased, but for ink much darker than the rules running along them (the base of
a 2 written on the line).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edge_runtime.segment.light import Light
from edge_runtime.segment.tuning import Tuning

__all__ = ["InkMask", "find_ink", "rule_boxes", "stroke_width", "table_boxes"]

_POOL_KERNEL = np.ones((2, 2), np.uint8)  # half resolution: each pixel the maximum of four


@dataclasses.dataclass(frozen=True, eq=False)
class InkMask:
    """The page's ink, thresholded; arrays at working resolution, 0 or 255.

    Attributes:
        noise_floor: Ink level of the paper's grain.
        threshold: Ink level of the mask.
        stroke_width: Typical stroke width of the writing, in working pixels.
        raw: The thresholded ink before rules were erased.
        cleaned: The mask without rules and without what lies off the sheet (`table`): what components
            are found in.
        rules_erased: Whether any rule was erased (`cleaned` is then a different array from `raw`).
        rule_ink: Ink level clearly darker than the erased rules: a pen on a rule (256: none).
        erased: The pixels erased as rules (0 or 255), before pen strokes along a rule were given
            back; None when no rule was erased.
        table: What lies off the sheet (0 or 255), taken out of `cleaned`; None when nothing does.
    """

    noise_floor: int
    threshold: int
    stroke_width: float
    raw: np.ndarray
    cleaned: np.ndarray
    rules_erased: bool = False
    rule_ink: int = 256
    erased: np.ndarray | None = None
    table: np.ndarray | None = None


def find_ink(light: Light, min_contrast: float, tuning: Tuning) -> InkMask | None:
    """Thresholds the ink map above the paper's own texture, then erases long ruled lines.

    Returns:
        The mask, or None when the page holds no writing (blank, or all texture).
    """
    surface = table = None
    if light.surface_floor > 1:
        surface = cv2.threshold(light.background, light.surface_floor - 1, 255, cv2.THRESH_BINARY)[1]
        table = _table(light, tuning)
        if table is not None:
            surface = cv2.subtract(surface, table)
    levels = _ink_threshold(light.ink, surface, min_contrast, tuning)
    if levels is None:
        return None
    noise_floor, threshold = levels
    mask = cv2.threshold(light.ink, threshold, 255, cv2.THRESH_BINARY)[1]
    half = _max_pool(mask)
    side = max(3, int(tuning.max_stroke_fraction * min(half.shape)) | 1)
    thick_half = cv2.morphologyEx(half, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    thin = cv2.subtract(mask, _upsample(thick_half, mask.shape))
    # Measured on the paper only: a table's texture is no writing.
    width = stroke_width(thin if surface is None else cv2.bitwise_and(thin, surface))
    # The table's grain beside the sheet would join the writing near the sheet's edge into one piece.
    on_paper = mask if table is None else cv2.subtract(mask, table)
    cleaned = _remove_rules(on_paper, half, thick_half, width, tuning)
    if cleaned is on_paper:
        return InkMask(noise_floor, threshold, width, mask, on_paper, table=table)
    erased = cv2.subtract(mask, cleaned)
    rule_ink = _rule_ink(light.ink, erased, tuning)
    if rule_ink <= 255:
        # Ink much darker than the rules is a pen stroke along a rule (the base of a 2): kept.
        # Only runs along the rule count: where a line crosses a rule, the overlap is dark too.
        strokes = cv2.threshold(light.ink, rule_ink - 1, 255, cv2.THRESH_BINARY)[1]
        strokes = cv2.bitwise_and(erased, strokes)
        x, y, box_width, box_height = cv2.boundingRect(strokes)  # few pixels, where digits are: a small region
        if box_width > 0:
            along = np.ones((1, 2 * int(width) + 3), np.uint8)
            region = (slice(y, y + box_height), slice(x, x + box_width))
            runs = cv2.morphologyEx(strokes[region], cv2.MORPH_OPEN, along)
            cleaned[region] |= runs
    return InkMask(noise_floor, threshold, width, mask, cleaned, True, rule_ink, erased, table)


def _table(light: Light, tuning: Tuning) -> np.ndarray | None:
    """What lies off the sheet, or None: regions darker than any paper, too wide for a stroke,
    that reach the frame, grown by a margin that takes in the sheet's shadowed edge.

    The background estimate bridges a narrow strip of table between the sheet and the frame, so that
    the ink map shows the table's grain as ink there; the gray itself does not. Found at half the
    working resolution.
    """
    half = cv2.resize(light.gray, (light.gray.shape[1] // 2, light.gray.shape[0] // 2), interpolation=cv2.INTER_AREA)
    dark = cv2.threshold(half, light.surface_floor - 1, 255, cv2.THRESH_BINARY_INV)[1]
    side = max(tuning.table_min_width, int(tuning.table_width_fraction * min(half.shape))) | 1
    wide = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    height, width = wide.shape
    if not (wide[0].any() or wide[-1].any() or wide[:, 0].any() or wide[:, -1].any()):
        return None
    count, labels, stats, _ = cv2.connectedComponentsWithStats(wide, connectivity=4)
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    framed = (left == 0) | (top == 0) | (right == width) | (bottom == height)
    framed[0] = False
    table = np.where(framed[labels], np.uint8(255), np.uint8(0))
    margin = 2 * tuning.table_margin + 1
    table = cv2.dilate(table, np.ones((margin, margin), np.uint8))
    return _upsample(table, light.gray.shape)


def table_boxes(ink_mask: InkMask) -> list[tuple[int, int, int, int]]:
    """Boxes (working pixels) of the regions off the sheet whose ink was taken out of the mask, one per
    region rather than one per grain; computed only when reasons are asked for."""
    if ink_mask.table is None:
        return []
    contours, _ = cv2.findContours(ink_mask.table, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cv2.boundingRect(contour) for contour in contours]


def rule_boxes(ink_mask: InkMask, min_length: int) -> list[tuple[int, int, int, int]]:
    """Boxes (working pixels) of the erased rule pieces at least `min_length` long; shorter ones are
    crumbs where a rule crossed a stroke. Costs up to a few tenths of a millisecond on a grid: it is
    computed only when reasons are asked for."""
    if ink_mask.erased is None:
        return []
    # Outer contours cost a fraction of a labelling here, and a box is all that is reported.
    contours, _ = cv2.findContours(ink_mask.erased, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = (cv2.boundingRect(contour) for contour in contours)
    return [box for box in boxes if max(box[2], box[3]) >= min_length]


def _max_pool(mask: np.ndarray) -> np.ndarray:
    """Half resolution, each pixel set if any of its four source pixels is."""
    grown = cv2.dilate(mask, _POOL_KERNEL, anchor=(0, 0))
    return np.ascontiguousarray(grown[::2, ::2])


def _upsample(half: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(half, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def _ink_threshold(
    ink: np.ndarray, surface: np.ndarray | None, min_contrast: float, tuning: Tuning
) -> tuple[int, int] | None:
    """The paper's noise floor and a threshold above it (measured on the paper only); None for no writing.

    With strong ink the threshold rises with it, which keeps the blurred edges of strokes (and the
    gaps between close digits) out; it is capped so that faint ink next to strong ink survives.
    """
    histogram = cv2.calcHist([ink], [0], surface, [256], [0, 256]).ravel()
    cumulative = np.cumsum(histogram)
    total = cumulative[-1]
    if total == 0:
        return None
    median = int(np.searchsorted(cumulative, 0.5 * total))
    lower_quartile = int(np.searchsorted(cumulative, 0.25 * total))
    # The spread below the median is the paper's own, even when ink covers a third of the image.
    # A page whose typical pixel is "ink" is noise or a texture, not writing.
    floor = max(min_contrast * 255.0, median + tuning.noise_spread * (median - lower_quartile) + tuning.noise_margin)
    if floor >= 250 or median > tuning.max_paper_ink:
        return None
    strong_ink = int(np.searchsorted(cumulative, tuning.strong_ink_percentile * total))
    return int(floor), int(max(floor, min(tuning.strong_ink_share * strong_ink, tuning.threshold_cap)))


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width as 2 * area / boundary length, which is exact for long strokes."""
    area = cv2.countNonZero(mask)
    if area == 0:
        return 1.0
    boundary = area - cv2.countNonZero(cv2.erode(mask, None))
    return max(1.0, 2.0 * area / max(boundary, 1))


def _remove_rules(
    mask: np.ndarray, half: np.ndarray, thick_half: np.ndarray, stroke_width: float, tuning: Tuning
) -> np.ndarray:
    """Erases straight runs far longer than any digit stroke: ruled and grid lines.

    Works on the half-resolution `half`. It is thickened first so that slightly tilted lines
    (staircases of short runs) and dashed ones (a faint line thresholded in pieces) still contain
    one long straight run. Runs through thick ink (`thick_half`) are kept: they are marker strokes
    (the bar of a 4 written with a felt pen) or table edges, left to the component filters.
    Returns `mask` itself when there is no rule.
    """
    height, width = half.shape
    along, across = tuning.rule_bridge_along, tuning.rule_bridge_across
    horizontal = int(max(tuning.rule_min_fraction[0] * width, tuning.rule_stroke_factor[0] * stroke_width / 2))
    vertical = int(max(tuning.rule_min_fraction[1] * height, tuning.rule_stroke_factor[1] * stroke_width / 2))
    rules = None
    if horizontal < width:
        rules = _horizontal_rules(half, horizontal, int(tuning.rule_min_cross * height), along, across)
    if vertical < height:
        vertical_rules = straight_runs(half, (1, vertical), across, along)
        rules = vertical_rules if rules is None else cv2.bitwise_or(rules, vertical_rules)
    if rules is None or cv2.countNonZero(rules) == 0:
        return mask
    rules = cv2.subtract(rules, cv2.dilate(thick_half, np.ones((across, across), np.uint8)))
    return cv2.bitwise_and(mask, cv2.bitwise_not(_upsample(rules, mask.shape)))


def _horizontal_rules(half: np.ndarray, length: int, cross_length: int, along: int, across: int) -> np.ndarray:
    """Horizontal runs at least `length` long that either reach the left or right edge (a rule or a
    cell border, cut by the frame) or are also `cross_length` long.

    A digit's bar is shorter than the digit is tall, so in a crop around one digit an inner run as
    long as the crop is high is no bar; a rule cut off by the crop reaches its edge.
    """
    runs = straight_runs(half, (length, 1), along, across)
    if cross_length <= length or not runs.any():
        return runs
    count, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
    left, run_width = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_WIDTH]
    keep = (left <= 0) | (left + run_width >= half.shape[1]) | (run_width >= cross_length)
    keep[0] = False
    return np.where(keep[labels], np.uint8(255), np.uint8(0))


def straight_runs(mask: np.ndarray, length: tuple[int, int], bridge_x: int, bridge_y: int) -> np.ndarray:
    """Pixels on straight runs at least `length` (width, height) long, after bridging small gaps."""
    bridged = cv2.dilate(mask, np.ones((bridge_y, bridge_x), np.uint8))
    return cv2.morphologyEx(bridged, cv2.MORPH_OPEN, np.ones((length[1], length[0]), np.uint8))


def _rule_ink(ink: np.ndarray, rules: np.ndarray, tuning: Tuning) -> int:
    """An ink level that rule pixels rarely reach: their 90th percentile, plus a margin."""
    # Every other row is plenty for a percentile; bincount is faster than calcHist with a mask here.
    cumulative = np.cumsum(np.bincount(ink[::2][rules[::2].view(bool)], minlength=256))
    if cumulative[-1] == 0:
        return 256
    level = int(np.searchsorted(cumulative, tuning.rule_ink_percentile * cumulative[-1]))
    return level + max(tuning.rule_ink_margin, int(tuning.rule_ink_share * (255 - level)))

