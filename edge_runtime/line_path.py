"""The line path of `DigitReader`: a text line's ink cut from the photo and read whole by the CTC line model.

Cutting a number into digits fails where digits touch, overlap or run together; the line model
reads the line's strip without cutting (see `edge_runtime.line_reader`). Segmentation still finds
the lines: each line's region is the union of its pieces' boxes, padded, and its ink is measured
against the region's own paper, with long straight rules (a table's lines) taken out.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import constants
from edge_runtime.segment import boxes, crop as crop_module, light
from edge_runtime.segment.components import Candidate
from edge_runtime.segment.mask import straight_runs
from edge_runtime.segment.tuning import Tuning

PAD = (0.25, 0.15)
"""Padding of a line's region, as a share of its height: x, y."""

STRIP_SHARE = 0.4
"""A line at least this share of the image's height is read across the image's whole width."""

EDGE_SHARE = 0.08
"""Columns this near a strip's left or right end that hold a long vertical run are a cell's border."""

CELL_EDGE_SHARE = 0.12
"""The same, for a whole cut-out cell read as one strip, whose ends are the cell's own sides."""

CELL_INK_FLOORS = (0.1, 0.2, 0.3, 0.4)
"""Ink floors a whole cut-out cell is read at; the reader keeps the reading most of them agree on (ties:
the one whose least certain digit is surest)."""

BORDER_HEIGHT = 0.6
"""A piece at a strip's end at least this share of the strip's height ..."""

BORDER_WIDTH = 0.25
"""... and at most this share as wide as it is tall is a cell's side border."""

INK_FLOOR = 0.2
"""Ink weaker than this share of the region's strong ink is paper grain, set to black."""

WORK_HEIGHT = 96
"""Line regions taller than this many pixels are shrunk to it before their ink is found: three times
the model's 32-pixel strip. On the 640x480 photos this took `--reader line` from 5.5 to 4.3 ms an
image with no read lost (real photos 150/154 and 40/55 against 150 and 39; realistic set 674/700
and 85/100 against 669 and 85)."""

RULE_LENGTH = 1.5
"""Straight horizontal runs longer than this many line heights are rules, not strokes."""
RULE_BRIDGE = 3
"""Rows a rule in the padding above a line's digits is thickened to before its straight runs are found
(1: none). adelian's `561247`, a plain 1 under a rule tilted by a degree, read `567247`: real numbers
43 -> 44 of 55; the photos made harder: numbers 296 -> 303 of 550; the synthetic sets and the forms
unchanged. Applied across the whole strip, 10 of Meza's cells were lost (their digits run into the
cells' borders) and a 2 whose base runs along its rule lost the base; a cut-out cell's rules are
found unthickened."""

CROSSING_HEIGHT = 0.95
"""Vertical runs this share of the region's height that reach its top and bottom rows are a table's column
lines, wherever they stand: a line's region is padded above and below its digits, and in a whole
cut-out cell a digit seldom touches both the cell's top and bottom edges (a 1 that does is taken
for a column line)."""

STUB_HEIGHT = 0.35
"""A straight upright piece at least this share of the region's height ..."""

STUB_EDGE = 0.06
"""... that starts or ends within this share of the height from the region's top or bottom ..."""

STUB_STRAIGHTNESS = 0.5
"""... whose rows' centres lie within this many pixels of one straight line ..."""

STUB_LEAN = 0.06
"""... leaning no more than this (dx / dy) ..."""

STUB_INK = 0.6
"""... and on average fainter than this share of the region's strong ink is a table's printed column
line, broken off or faded, not a 1: a printed line runs on past the writing, straight and grey, while
a 1 written by hand wavers by a pixel or more, ends inside the region, and is as dark as the other
digits. Meza's logbook cells: a 3 beside a column line read 31; the real photos made harder
(`scripts/robustness.py`) 1,464 -> 1,469 singles of 1,540, numbers unchanged (286 of 550); both
synthetic sets and the forms unchanged."""

CELL_STUB_INK = 1.0
"""`STUB_INK` in a whole cut-out cell: none. A cell's border is printed as dark as the writing as often
as not, and at 34 pixels a pen's 1 and a border's stub are equally dark, so in a cell a straight upright
piece from its top or bottom edge is its border whatever its ink (in a line region the ink test stays:
a straight MNIST 1 at a date's top read as a stub). With the line model trained on lead-in 1s, which
reads a thin stroke as a 1 more readily, Meza's `2` beside its column line read `21` (eleventh session).
Real photos under everyday changes (`scripts/robustness.py --set everyday`): singles 1,198 -> 1,203 of
1,232, numbers unchanged (330 of 440); made harder: singles 1,471 -> 1,476, numbers 353 -> 354; the
photos as they are: singles 149 -> 150; synthetic seeds 21-26 and 31-36, forms, dates, labels and
large photos unchanged."""

LOCAL_PAPER = 0.5
"""The paper under a line is measured locally, over squares this share of the region's height (wider
than any stroke), so a shadow or a light falling off across the line is not ink: a flat paper level
lost the dim end of shaded lines (a shaded "197" read 97). The real photos in light falling to 55%
across them: numbers 11 -> 15 of 55; a synthetic set made with another seed (1,200 photos): singles
1011 -> 1016 of 1050, numbers 131 -> 133 of 150; the real photos as they are: unchanged."""

LOCAL_PAPER_MIN_HEIGHT = 40
"""Regions lower than this many pixels (a cut-out cell) are not measured in squares: a few pixels hold
no square wider than a stroke, and the cells' ink floors (`CELL_INK_FLOORS`) were chosen with one
paper level. Their paper may still slope (`PAPER_SLOPE`)."""

PAPER_SLOPE = 20.0
"""A cell, or a region lower than `LOCAL_PAPER_MIN_HEIGHT`, whose paper brightens or darkens by at least
this many levels (of 255) from one side to the other has that slope taken out before its ink is
measured: a plane fitted to its paper. Below it the paper keeps one level, as before, so cells in even
light read exactly as they did. In light falling to 55% across them (`scripts/robustness.py`, "shaded"),
the real photos' numbers, mostly Meza's 34-pixel logbook cells, read 17 -> 37 of 55 with the page's
polarity (`segment.light.page_polarity`), singles 139 -> 148 of 154; the other changes, the forms,
synthetic seed 0 and the photos as they are: unchanged (seed 7: singles 1,019 -> 1,017)."""

_SLOPE_MIN_SIDE = 4
"""A region narrower or lower than this many pixels keeps one paper level."""

_PAPER_SHARE = 0.5
"""The paper slope is fitted to the half of the region's pixels with the least ink. With 60%, a line
region in even light whose digits fill its lower rows was fitted a slope of 22 levels from the digits'
ink (Meza's `2200`, whose line reading then fell from 0.97 to 0.82 and whose number, right, was capped
to 0.25 by the cell vote). Real numbers at the CLI's default 25 -> 26 of 55; shaded numbers 35 -> 37;
nothing else changed."""

_TUNING = Tuning()
"""The segmentation's thresholds, for the form boxes that cross a strip (`segment.boxes`)."""


def region(boxes: list[tuple[int, int, int, int]], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """x, y, width, height of a line's padded region, inside the image."""
    left = min(box[0] for box in boxes)
    top = min(box[1] for box in boxes)
    right = max(box[0] + box[2] for box in boxes)
    bottom = max(box[1] + box[3] for box in boxes)
    height = bottom - top
    pad_x, pad_y = int(PAD[0] * height), int(PAD[1] * height)
    left, top = max(0, left - pad_x), max(0, top - pad_y)
    right, bottom = min(shape[1], right + pad_x), min(shape[0], bottom + pad_y)
    if bottom - top >= STRIP_SHARE * shape[0]:
        # The line fills a cut-out strip or cell: the whole width is this number, including the
        # pieces that segmentation dropped or never found.
        left, right = 0, shape[1]
    return left, top, right - left, bottom - top


def line_ink(image: np.ndarray, box: tuple[int, int, int, int], polarity: str,
             cell_ink_floor: float | None = None, work_height: int | None = WORK_HEIGHT) -> np.ndarray:
    """The line's ink, white on black in [0, 1]: contrast against the region's paper, grain and rules removed.

    The paper is measured locally in a line region at least `LOCAL_PAPER_MIN_HEIGHT` high, and as one
    level, less any slope it has (`PAPER_SLOPE`), in a cut-out cell or a lower region.

    Args:
        image: The uint8 gray or BGR image.
        box: The line's region (see `region`).
        polarity: constants.INK_DARK_ON_LIGHT or INK_LIGHT_ON_DARK (the reader passes the page's, see
            `segment.light.page_polarity`), or INK_AUTO to decide by the region alone.
        cell_ink_floor: The box is a whole cut-out cell, whose sides are borders more often than digits,
            and ink weaker than this share of its strong ink is paper (default: a line's `INK_FLOOR`).
        work_height: A taller region is shrunk to this height first (None: never), so the ink
            comes back smaller than `box`, with its aspect kept.
    """
    x, y, width, height = box
    patch = image[y:y + height, x:x + width]
    if work_height and height > work_height:
        # The model sees the line 32 pixels high: finding its ink at full resolution in a large photo
        # costs several times more and shows the model nothing more.
        factor = work_height / height
        patch = cv2.resize(patch, (max(1, round(width * factor)), work_height), interpolation=cv2.INTER_AREA)
    if patch.ndim == 2:
        gray = patch
    elif polarity == constants.INK_LIGHT_ON_DARK:
        gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    else:  # the darkest channel: blue and red ink stay dark
        blue, green, red = cv2.split(patch[..., :3])
        gray = cv2.min(cv2.min(blue, green), red)
    # Medians and percentiles from 256-bin histograms (exactly numpy's, in a tenth of the time).
    dark_on_light = polarity == constants.INK_DARK_ON_LIGHT or (
        polarity == constants.INK_AUTO and _quantile(_counts(gray), 0.5) >= cv2.mean(gray)[0])
    ink_levels = cv2.bitwise_not(gray) if dark_on_light else gray
    if cell_ink_floor is None and height >= LOCAL_PAPER_MIN_HEIGHT:
        ink_levels = cv2.subtract(ink_levels, _paper_levels(ink_levels))
    else:
        ink_levels = _without_paper_slope(ink_levels)
    counts = _counts(ink_levels)
    paper = _quantile(counts, 0.5)  # the paper is the region's most common level
    strong = _quantile(counts, 0.99) - paper
    ink = ink_levels.astype(np.float32) - np.float32(paper)
    if strong <= 8.0:
        return np.zeros(ink.shape, np.float32)
    ink = np.clip(ink / np.float32(strong), 0.0, 1.0)
    cell = cell_ink_floor is not None
    ink[ink < (cell_ink_floor if cell else INK_FLOOR)] = 0.0
    cleaned = _without_rules(ink, CELL_EDGE_SHARE if cell else EDGE_SHARE, 1 if cell else RULE_BRIDGE,
                             CELL_STUB_INK if cell else STUB_INK)
    # A cell's own border is handled by the rules above, with the ink floors its reading was tuned with.
    return cleaned if cell else _without_boxes(cleaned)


def _paper_levels(ink_levels: np.ndarray) -> np.ndarray:
    """The paper's own level under each pixel: an opening wider than the strokes, shading kept.

    Light varies slowly, so the opening runs at a quarter of the size (a sixteenth of the cost).
    """
    height, width = ink_levels.shape
    small = cv2.resize(ink_levels, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    side = max(3, int(LOCAL_PAPER * small.shape[0]) | 1)
    paper = cv2.morphologyEx(small, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    return cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)


def _without_paper_slope(ink_levels: np.ndarray) -> np.ndarray:
    """The ink levels with the paper's slope (a plane, see `PAPER_SLOPE`) taken out, or as they are.

    The plane is fitted on a copy at most 48 x 16 pixels, three times, each time to the pixels
    nearest paper (`_PAPER_SHARE`), so the ink does not pull it.
    """
    height, width = ink_levels.shape
    if height < _SLOPE_MIN_SIDE or width < _SLOPE_MIN_SIDE:
        return ink_levels  # a few pixels across hold no slope to speak of
    small = cv2.resize(ink_levels, (min(width, 48), min(height, 16)), interpolation=cv2.INTER_AREA)
    design = light.plane_design(*small.shape)
    values = small.ravel().astype(np.float64)
    paper = np.ones(values.size, bool)
    keep = int(_PAPER_SHARE * (values.size - 1))
    for _ in range(3):
        coefficients = light.fit_plane(design[:, paper], values[paper])
        residuals = values - coefficients @ design
        paper = residuals <= np.partition(residuals, keep)[keep]
    if abs(coefficients[1]) + abs(coefficients[2]) < PAPER_SLOPE:
        return ink_levels
    slope = coefficients[1] * light.centred_axis(width)[np.newaxis, :] \
        + coefficients[2] * light.centred_axis(height)[:, np.newaxis]
    return np.clip(ink_levels - slope, 0, 255).astype(np.uint8)


def _counts(levels: np.ndarray) -> np.ndarray:
    """Cumulative pixel counts per uint8 level."""
    return np.cumsum(cv2.calcHist([np.ascontiguousarray(levels)], [0], None, [256], [0, 256]).ravel())


def _quantile(cumulative: np.ndarray, share: float) -> float:
    """numpy's `quantile` (linear interpolation between order statistics) of the pixels counted."""
    rank = share * (cumulative[-1] - 1)
    low = int(np.floor(rank))
    first = int(np.searchsorted(cumulative, low + 1))  # the level of the (low)th smallest pixel, from 0
    second = int(np.searchsorted(cumulative, low + 2)) if rank > low else first
    return first + (rank - low) * (second - first)


def _without_rules(ink: np.ndarray, edge_share: float = EDGE_SHARE, rule_bridge: int = 1,
                   stub_ink: float = STUB_INK) -> np.ndarray:
    """Takes out long horizontal rules (thickened to `rule_bridge` rows first), a cell's vertical
    borders at the strip's ends, and column lines broken off at its top or bottom (`_is_column_stub`,
    fainter than `stub_ink`)."""
    height, width = ink.shape
    binary = (ink > 0).astype(np.uint8)
    cleaned = ink.copy()
    length = int(RULE_LENGTH * height)
    if 3 <= length < width:
        rules = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
        if rule_bridge > 1:
            # In the padding above the digits, rules are also found thickened by a pixel each side, as
            # the page's are: a rule tilted by a degree or two holds no straight run of the length, and
            # its pieces left above a 1 made it a 7. Not where the digits are, nor below them: the base
            # of a 2 runs along its rule.
            band = int(PAD[1] / (1 + 2 * PAD[1]) * height)
            rules[:band] |= straight_runs(binary[:band + 1], (length, 1), 1, rule_bridge)[:band] & binary[:band]
        cleaned[rules.astype(bool)] = 0.0
    crossing = int(CROSSING_HEIGHT * height)
    if crossing >= 3:
        # Widened by a pixel each side first, so a line tilted by a degree or two is still one run.
        runs = straight_runs(binary, (1, crossing), 3, 1)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
        for index in range(1, count):
            top, run_height = stats[index, cv2.CC_STAT_TOP], stats[index, cv2.CC_STAT_HEIGHT]
            if top <= 1 and top + run_height >= height - 1:  # from edge to edge: a column line, not a 1
                cleaned[cv2.dilate((labels == index).astype(np.uint8), np.ones((1, 3), np.uint8)).astype(bool)] = 0.0
    edge = max(1, int(edge_share * width))
    border = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((max(3, int(0.7 * height)), 1), np.uint8))
    for columns in (slice(0, edge), slice(width - edge, width)):
        cleaned[:, columns][border[:, columns].astype(bool)] = 0.0
    # A cell's side border, broken or tilted, is a thin tall piece at the strip's end, which reads as a 1.
    count, labels, stats, _ = cv2.connectedComponentsWithStats((cleaned > 0).astype(np.uint8), connectivity=8)
    for index in range(1, count):
        x, y, piece_width, piece_height, _ = stats[index]
        at_end = x <= edge or x + piece_width >= width - edge
        thin = piece_width <= BORDER_WIDTH * piece_height
        if thin and piece_height >= BORDER_HEIGHT * height and at_end:
            cleaned[labels == index] = 0.0
        elif (thin and piece_height >= STUB_HEIGHT * height
              and _is_column_stub(ink, labels, index, stats[index], stub_ink)):
            cleaned[labels == index] = 0.0
    return cleaned


def _is_column_stub(ink: np.ndarray, labels: np.ndarray, index: int, stat: np.ndarray,
                    stub_ink: float = STUB_INK) -> bool:
    """Whether a thin upright piece is a table's column line broken off at the region's top or bottom
    (`STUB_*`; fainter on average than `stub_ink` of the region's strong ink)."""
    x, y, piece_width, piece_height = (int(value) for value in stat[:4])
    height = ink.shape[0]
    reach = STUB_EDGE * height
    if y > reach and y + piece_height < height - reach:
        return False
    piece = labels[y:y + piece_height, x:x + piece_width] == index
    if float(ink[y:y + piece_height, x:x + piece_width][piece].mean()) > stub_ink:
        return False
    counts = piece.sum(axis=1)
    rows = np.flatnonzero(counts)
    if len(rows) < 3:
        return False
    centres = (piece[rows] * np.arange(piece_width)).sum(axis=1) / counts[rows]
    lean, offset = np.polyfit(rows, centres, 1)
    wavering = np.abs(centres - (lean * rows + offset)).max()
    return abs(lean) <= STUB_LEAN and wavering <= STUB_STRAIGHTNESS


def _without_boxes(ink: np.ndarray) -> np.ndarray:
    """Takes out the lines of a form's boxes that cross the strip (see `segment.boxes`): their sides read as 1s."""
    binary = (ink > 0).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, cv2.CV_32S, cv2.CCL_GRANA)
    tall = np.flatnonzero(stats[1:, cv2.CC_STAT_HEIGHT] >= BORDER_HEIGHT * ink.shape[0]) + 1
    if not len(tall):
        return ink
    candidates = tuple(Candidate(int(x), int(y), int(width), int(height), (int(index),), int(area))
                       for index, (x, y, width, height, area) in zip(tall, stats[tall, :5].tolist()))
    frames = boxes.find_frames(candidates, labels, _TUNING, in_strip=True)
    if not frames:
        return ink
    kept = boxes.erase_frames(binary * 255, frames, labels, _TUNING)
    # Boxes cut by the strip's ends leave a lone side: straight upright runs as tall as the boxes' sides.
    side = int(_TUNING.box_line_share * float(np.median([frame.height for frame in frames])))
    if side >= 3:
        sides = straight_runs((kept > 0).astype(np.uint8), (1, side), 3, 1)
        kept[cv2.dilate(sides, np.ones((1, 3), np.uint8)).astype(bool)] = 0
    return np.where(kept > 0, ink, np.float32(0.0)).astype(np.float32)


def digit_crop(ink: np.ndarray, x_range: tuple[int, int]) -> np.ndarray:
    """The 28x28 MNIST-style image of one digit the line model read, for overlays and collecting."""
    part = ink[:, max(0, x_range[0]):max(x_range[0] + 1, x_range[1])]
    return crop_module.to_mnist(part) if part.any() else np.zeros((constants.IMAGE_SIZE,) * 2, np.float32)
