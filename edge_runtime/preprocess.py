"""Finding handwritten digits in photos, scans and tiles and turning each into an MNIST-style 28x28 image."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from edge_runtime import constants

__all__ = ["DigitCrop", "PreprocessOptions", "extract_digits", "to_mnist"]

_MNIST_CENTRE = constants.IMAGE_SIZE / 2  # MNIST put the centre of mass at pixel index 14.0
TILE_MAX_SIDE = 64
"""Gray images no larger than this (and roughly square) hold one digit and take the fast tile path."""
_TILE_MAX_ASPECT = 1.5
_TILE_INK_LEVEL = 0.3  # of the tile's contrast: pixels brighter than this are ink when finding the box
_TILE_MIN_CONTRAST = 48  # gray levels between background and ink; less is a blank tile
_TILE_CLEAN_BORDER = 16  # a darker border mean is MNIST's black plus a few ink pixels, kept as is
_TILE_FULL_INK = 192  # tiles whose brightest ink is dimmer than this are stretched to full ink
_MNIST_SHIFT_TOLERANCE = 1.0  # pixels the centre of mass may be off before a tile is re-centred
_SMALL_SIDE = 64  # the background is estimated on a copy whose longer side is 64..127 pixels
_BACKGROUND_KERNEL_FRACTION = 0.2  # of the shorter side: ink strokes narrower than this are removed
_RULE_MIN_FRACTION = (0.3, 0.6)  # of the width, height: shorter straight runs are never rules
_RULE_STROKE_FACTOR = (15, 30)  # horizontal, vertical rules are also this many stroke widths long
_RULE_BRIDGE_KERNEL = np.ones((5, 5), np.uint8)  # joins dashes and the steps of lines tilted up to ~2.5 degrees
_RULE_GAP = 4  # pixels: erasing a rule leaves gaps this much wider than the rule in strokes across it
_MIN_DIGIT_HEIGHT = 7  # pixels at working resolution
_MIN_LINE_HEIGHT_FRACTION = 0.4  # of the tallest digit in its line; shorter ones are dots and specks
_MAX_ASPECT = 3.0  # width / height: wider candidates are lines or dashes (touching digits stay <= 3)
_BLOB_FILL = 0.8  # of the bounding box: fuller candidates thicker than strokes are blobs, not digits
_TIGHT_CROP_MAX_FILL = 0.6  # strokes fill less of their box than shadows and objects do
_MAX_CANDIDATES = 96  # components kept (largest first) before merging, to bound the time
_CROP_FROM_SOURCE_HEIGHT = 24  # digits shorter than this at working resolution are cut from the input
_STROKE_THIN = 1.3  # strokes thinner than this in the 20-pixel box (MNIST: ~2.1) are thickened
_THICKEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_MAX_THICKEN_GAIN = 3.0  # brightening a thin faint stroke more than this would amplify noise
_CROSSING_KERNEL = np.ones((2 * _RULE_GAP + 3, 1), np.uint8)
_CROP_FLOOR = 0.35  # of the threshold: fainter ink around a digit becomes black


@dataclasses.dataclass(frozen=True)
class PreprocessOptions:
    """How `extract_digits` looks for digits.

    Attributes:
        single: Return only the most prominent digit (see `extract_digits`).
        polarity: "auto", "dark-on-light" (ink on paper) or "light-on-dark" (chalk on a board).
        max_digits: At most this many digits are returned, the most prominent ones.
        work_side: Segmentation runs on a copy halved until its longer side is below twice this.
        min_contrast: Ink must differ from the local paper by this fraction of the paper-to-black range.
    """

    single: bool = False
    polarity: str = "auto"
    max_digits: int = 12
    work_side: int = 320
    min_contrast: float = 0.18

    def __post_init__(self) -> None:
        if not isinstance(self.single, bool):
            raise ValueError(f"single must be True or False, not {self.single!r}")
        if self.polarity not in constants.INK_POLARITIES:
            raise ValueError(f"polarity {self.polarity!r} is not one of {', '.join(constants.INK_POLARITIES)}")
        if isinstance(self.max_digits, bool) or not isinstance(self.max_digits, int) or self.max_digits < 1:
            raise ValueError(f"max_digits must be a whole number >= 1, not {self.max_digits!r}")
        if isinstance(self.work_side, bool) or not isinstance(self.work_side, int) or not 64 <= self.work_side <= 4096:
            raise ValueError(f"work_side must be a whole number from 64 to 4096, not {self.work_side!r}")
        if not isinstance(self.min_contrast, (int, float)) or not 0.0 < self.min_contrast < 1.0:
            raise ValueError(f"min_contrast must be a number between 0 and 1 (exclusive), not {self.min_contrast!r}")


@dataclasses.dataclass(frozen=True)
class DigitCrop:
    """One digit found in an image.

    Attributes:
        box: x, y, width, height in the coordinates of the image given to `extract_digits`.
        image: (28, 28) float32 in [0, 1], white digit on black, MNIST-normalised.
        line: 0-based text line (reading order).
    """

    box: tuple[int, int, int, int]
    image: np.ndarray
    line: int


_DEFAULT_OPTIONS = PreprocessOptions()


def extract_digits(image: np.ndarray, options: PreprocessOptions = _DEFAULT_OPTIONS) -> list[DigitCrop]:
    """Finds the digits in an image, in reading order.

    Small gray tiles (at most `TILE_MAX_SIDE` pixels a side, roughly square) are taken to hold one
    digit, as MNIST images do, and are only inverted and re-centred when needed. Other images are
    segmented: see `_segment`. With `options.single`, the most prominent digit is the one with the
    largest ink mass (sum of ink contrast), weighted down by up to half with its distance from the
    image centre.

    Args:
        image: A uint8 gray (HxW) or BGR (HxWx3, or HxWx4 whose alpha is ignored) image.
        options: How to look.

    Returns:
        The digits, text lines top to bottom and left to right within a line; empty if none.

    Raises:
        TypeError: `image` is not a numpy array.
        ValueError: `image` is not uint8, empty, or of an unsupported shape.
    """
    image = _checked_image(image)
    if _is_tile(image):
        return _tile_digits(_as_gray(image), options)
    return _segment(image, options)


def to_mnist(mask: np.ndarray) -> np.ndarray:
    """Turns a tight crop of one digit into a 28x28 MNIST-style image.

    The digit is scaled, keeping its aspect ratio, so that its longer side is 20 pixels, then placed
    in a 28x28 image so that its centre of mass sits at the centre, as MNIST was made.

    Args:
        mask: The digit, ink bright on a dark background: uint8 0..255, bool, or floats 0..1 (or 0..255).

    Returns:
        A (28, 28) float32 array in [0, 1]; all zeros if `mask` has no ink.
    """
    digit = _unit_float(mask)
    x, y, width, height = cv2.boundingRect((digit > 0).view(np.uint8))
    result = np.zeros((constants.IMAGE_SIZE, constants.IMAGE_SIZE), np.float32)
    if width == 0 or height == 0:
        return result
    digit = _fit_box(digit[y : y + height, x : x + width], constants.DIGIT_BOX)
    _paste_centred(result, digit)
    return result


# --- input checks and the tile fast path ----------------------------------------------------


def _checked_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, not {image.dtype}")
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        if image.shape[2] == 1:
            image = image[:, :, 0]
        elif image.shape[2] == 4:
            image = image[:, :, :3]
    elif image.ndim != 2:
        raise ValueError(f"image must be HxW gray or HxWx3 BGR, not shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    return image


def _is_tile(image: np.ndarray) -> bool:
    height, width = image.shape[:2]
    longer, shorter = max(height, width), min(height, width)
    return longer <= TILE_MAX_SIDE and longer <= _TILE_MAX_ASPECT * shorter


def _as_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return _channel_minimum(np.ascontiguousarray(image))


def _tile_digits(tile: np.ndarray, options: PreprocessOptions) -> list[DigitCrop]:
    """One digit from a small tile; MNIST tiles come back unchanged (as floats)."""
    border = _border_mean(tile)
    if _tile_is_dark_on_light(border, options.polarity):
        tile = cv2.bitwise_not(tile)
        border = 255.0 - border
    # MNIST borders are black but for a few ink pixels: only a real paper background is removed.
    background = int(border + 0.5) if border >= _TILE_CLEAN_BORDER else 0
    peak = int(cv2.minMaxLoc(tile)[1])
    if peak - background < _TILE_MIN_CONTRAST:
        return []
    if background > 0:
        tile = cv2.subtract(tile, background)
        peak -= background
    ink_threshold = max(1, int(_TILE_INK_LEVEL * peak))
    box = cv2.boundingRect(cv2.threshold(tile, ink_threshold, 255, cv2.THRESH_BINARY)[1])
    if box[2] == 0:
        return []
    return [DigitCrop(box=box, image=_tile_to_mnist(tile, box, peak), line=0)]


def _border_mean(tile: np.ndarray) -> float:
    height, width = tile.shape
    inner = cv2.sumElems(tile[1:-1, 1:-1])[0] if height > 2 and width > 2 else 0.0
    return (cv2.sumElems(tile)[0] - inner) / max(1, tile.size - max(0, height - 2) * max(0, width - 2))


def _tile_is_dark_on_light(border: float, polarity: str) -> bool:
    if polarity == constants.INK_AUTO:
        return border > 127.5
    return polarity == constants.INK_DARK_ON_LIGHT


def _tile_to_mnist(tile: np.ndarray, box: tuple[int, int, int, int], peak: int) -> np.ndarray:
    """Keeps an MNIST-sized, centred tile as it is; otherwise shifts or refits it."""
    x, y, width, height = box
    fits_box = width <= constants.DIGIT_BOX and height <= constants.DIGIT_BOX
    size = constants.IMAGE_SIZE
    scale = 1.0 / 255.0 if peak >= _TILE_FULL_INK else 1.0 / peak  # stretch faint tiles to full ink
    if tile.shape == (size, size) and fits_box:
        moments = cv2.moments(tile)
        shift_x = _MNIST_CENTRE - moments["m10"] / moments["m00"]
        shift_y = _MNIST_CENTRE - moments["m01"] / moments["m00"]
        result = tile.astype(np.float32)
        result *= np.float32(scale)
        if scale != 1.0 / 255.0:
            np.minimum(result, 1.0, out=result)
        if abs(shift_x) <= _MNIST_SHIFT_TOLERANCE and abs(shift_y) <= _MNIST_SHIFT_TOLERANCE:
            return result
        return _recentre(result, box, round(shift_x), round(shift_y))
    crop = tile[y : y + height, x : x + width].astype(np.float32) * np.float32(scale)
    return to_mnist(np.minimum(crop, 1.0, out=crop))


def _recentre(tile: np.ndarray, box: tuple[int, int, int, int], shift_x: int, shift_y: int) -> np.ndarray:
    """Moves the whole tile by whole pixels, as MNIST did, keeping the digit's box inside it."""
    x, y, width, height = box
    size = constants.IMAGE_SIZE
    shift_x = min(max(shift_x, -x), size - width - x)
    shift_y = min(max(shift_y, -y), size - height - y)
    result = np.zeros_like(tile)
    result[max(shift_y, 0) : size + min(shift_y, 0), max(shift_x, 0) : size + min(shift_x, 0)] = tile[
        max(-shift_y, 0) : size + min(-shift_y, 0), max(-shift_x, 0) : size + min(-shift_x, 0)
    ]
    return result


# --- fitting a crop into the MNIST frame ----------------------------------------------------


def _unit_float(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, not shape {mask.shape}")
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) * np.float32(1.0 / 255.0)
    digit = mask.astype(np.float32)
    if digit.max(initial=0.0) > 1.0:
        digit *= np.float32(1.0 / 255.0)
    return np.clip(digit, 0.0, 1.0, out=digit)


def _fit_box(digit: np.ndarray, side: int) -> np.ndarray:
    height, width = digit.shape
    scale = side / max(height, width)
    new_width = max(1, min(side, round(width * scale)))
    new_height = max(1, min(side, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    fitted = cv2.resize(digit, (new_width, new_height), interpolation=interpolation)
    return fitted.reshape(new_height, new_width)


def _paste_centred(frame: np.ndarray, digit: np.ndarray) -> None:
    """Pastes so that the centre of mass lands on the frame's centre, without leaving the frame."""
    height, width = digit.shape
    moments = cv2.moments(digit)
    mass = moments["m00"]
    centre_x = moments["m10"] / mass if mass > 0 else (width - 1) / 2
    centre_y = moments["m01"] / mass if mass > 0 else (height - 1) / 2
    size = frame.shape[0]
    x = min(max(round(_MNIST_CENTRE - centre_x), 0), size - width)
    y = min(max(round(_MNIST_CENTRE - centre_y), 0), size - height)
    frame[y : y + height, x : x + width] = digit


# --- segmentation of photos and scans -------------------------------------------------------


@dataclasses.dataclass
class _Candidate:
    """A digit or a piece of one, in working-resolution pixels."""

    x: int
    y: int
    width: int
    height: int
    labels: list[int]
    mass: float = 0.0

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def absorb(self, other: _Candidate) -> None:
        right, bottom = max(self.right, other.right), max(self.bottom, other.bottom)
        self.x, self.y = min(self.x, other.x), min(self.y, other.y)
        self.width, self.height = right - self.x, bottom - self.y
        self.labels += other.labels
        self.mass += other.mass


@dataclasses.dataclass
class _Page:
    """What the segmentation stages share about one image."""

    source: np.ndarray  # the image given, gray or BGR
    scale: int  # source pixels per working pixel
    ink: np.ndarray  # working resolution, uint8, 0 = paper, 255 = full contrast ink
    background: np.ndarray  # working resolution estimate of the paper (or board) brightness
    dark_on_light: bool
    threshold: int = 0
    stroke_width: float = 2.0
    labels: np.ndarray | None = None
    raw_mask: np.ndarray | None = None  # the thresholded ink before rules were erased
    rules_erased: bool = False


def _segment(image: np.ndarray, options: PreprocessOptions) -> list[DigitCrop]:
    """Normalises light, thresholds, removes ruled lines, then groups components into digits."""
    page = _prepare_page(image, options)
    mask = _ink_mask(page, options)
    if mask is None:
        return []
    candidates = _candidates(page, mask)
    candidates = _merge_pieces(candidates, page.stroke_width)
    candidates = _plausible_digits(candidates, page)
    if not candidates:
        return []
    candidates = _most_prominent(candidates, page, options)
    lines = _reading_order(candidates)
    return [
        DigitCrop(box=_source_box(candidate, page), image=_crop(candidate, page), line=line_index)
        for line_index, line in enumerate(lines)
        for candidate in line
    ]


def _prepare_page(image: np.ndarray, options: PreprocessOptions) -> _Page:
    work, scale = _halve_until(image, options.work_side)
    gray = _channel_minimum(work) if work.ndim == 3 else work
    dark_on_light, small_background = _polarity_and_background(gray, options.polarity)
    if dark_on_light:
        background = _upsample_background(small_background, gray.shape)
        # Relative contrast: shadows dim ink and paper alike, so the ratio is steady.
        ink = cv2.bitwise_not(cv2.divide(gray, background, scale=255))
    else:
        if work.ndim == 3:  # chalk can be coloured: luma sees yellow chalk that min-channel loses
            gray = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
            _, small_background = _polarity_and_background(gray, constants.INK_LIGHT_ON_DARK)
        background = _upsample_background(small_background, gray.shape)
        headroom = cv2.bitwise_not(background)
        ink = cv2.divide(cv2.subtract(gray, background), cv2.max(headroom, 1), scale=255)
    return _Page(source=image, scale=scale, ink=ink, background=background, dark_on_light=dark_on_light)


def _halve_until(image: np.ndarray, work_side: int) -> tuple[np.ndarray, int]:
    """Halves with area averaging (OpenCV's fast path) until the longer side is below 2 * work_side."""
    scale = 1
    while max(image.shape[:2]) >= 2 * work_side:
        height, width = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[: 2 * height, : 2 * width], (width, height), interpolation=cv2.INTER_AREA)
        scale *= 2
    return image, scale


def _channel_minimum(bgr: np.ndarray) -> np.ndarray:
    """Darkest channel: blue and red ink stay as dark as black ink, unlike a luma conversion."""
    blue, green, red = cv2.split(bgr)
    return cv2.min(cv2.min(blue, green), red)


def _polarity_and_background(gray: np.ndarray, polarity: str) -> tuple[bool, np.ndarray, np.ndarray]:
    """Decides the polarity and estimates the paper (closing) or board (opening) brightness.

    Everything runs on a copy reduced about four times. The kernel is a fifth of its shorter side,
    so strokes up to that width vanish into the background estimate while shadows and page edges,
    which are wider, stay in it.
    """
    small, _ = _halve_until(gray, _SMALL_SIDE)
    side = max(3, int(_BACKGROUND_KERNEL_FRACTION * min(small.shape)) | 1)
    if polarity == constants.INK_AUTO:
        dark_on_light = _ink_is_dark(small, side)
    else:
        dark_on_light = polarity == constants.INK_DARK_ON_LIGHT
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    operation = cv2.MORPH_CLOSE if dark_on_light else cv2.MORPH_OPEN
    return dark_on_light, cv2.morphologyEx(small, operation, kernel)


def _ink_is_dark(small: np.ndarray, side: int) -> bool:
    """Ink is the minority that a median removes: darker than the median for pen on paper.

    A median is used rather than a closing and an opening because a dense row of dark digits
    survives an opening as a dark band, which would count as light ink.
    """
    median = cv2.medianBlur(small, side)
    darker = cv2.sumElems(cv2.subtract(median, small))[0]
    lighter = cv2.sumElems(cv2.subtract(small, median))[0]
    return darker >= lighter


def _upsample_background(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    smooth = cv2.blur(small, (3, 3))
    return cv2.resize(smooth, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _ink_mask(page: _Page, options: PreprocessOptions) -> np.ndarray | None:
    """Thresholds the ink map above the paper's own texture, then erases long ruled lines."""
    threshold = _ink_threshold(page.ink, options.min_contrast)
    if threshold is None:
        return None
    page.threshold = threshold
    mask = cv2.threshold(page.ink, threshold, 255, cv2.THRESH_BINARY)[1]
    page.stroke_width = _stroke_width(mask)
    page.raw_mask = mask
    cleaned = _remove_rules(mask, page.stroke_width)
    page.rules_erased = cleaned is not mask
    return cleaned


def _ink_threshold(ink: np.ndarray, min_contrast: float) -> int | None:
    histogram = cv2.calcHist([ink], [0], None, [256], [0, 256]).ravel()
    cumulative = np.cumsum(histogram)
    total = cumulative[-1]
    median = int(np.searchsorted(cumulative, 0.5 * total))
    upper_quartile = int(np.searchsorted(cumulative, 0.75 * total))
    # Paper texture sets the floor; a page mostly "ink" is noise or a texture, not writing.
    floor = max(min_contrast * 255.0, median + 6 * (upper_quartile - median) + 8)
    if floor >= 250 or median > 64:
        return None
    otsu = _otsu(histogram, cumulative)
    return int(max(floor, 0.6 * otsu))


def _otsu(histogram: np.ndarray, cumulative: np.ndarray) -> float:
    levels = np.arange(256, dtype=np.float64)
    weighted = np.cumsum(histogram * levels)
    total, total_weighted = cumulative[-1], weighted[-1]
    below = cumulative[:-1]
    above = total - below
    valid = (below > 0) & (above > 0)
    mean_below = np.divide(weighted[:-1], below, out=np.zeros(255), where=valid)
    mean_above = np.divide(total_weighted - weighted[:-1], above, out=np.zeros(255), where=valid)
    between = below * above * (mean_below - mean_above) ** 2
    return float(np.argmax(np.where(valid, between, 0.0)))


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width as 2 * area / boundary length, which is exact for long strokes."""
    area = cv2.countNonZero(mask)
    if area == 0:
        return 1.0
    boundary = area - cv2.countNonZero(cv2.erode(mask, None))
    return max(1.0, 2.0 * area / max(boundary, 1))


def _remove_rules(mask: np.ndarray, stroke_width: float) -> np.ndarray:
    """Erases straight runs far longer than any digit stroke: ruled and grid lines, table edges.

    The mask is thickened first so that slightly tilted lines (staircases of short runs) and
    dashed ones (a faint line thresholded in pieces) still contain one long straight run.
    """
    height, width = mask.shape
    horizontal = int(max(_RULE_MIN_FRACTION[0] * width, _RULE_STROKE_FACTOR[0] * stroke_width))
    vertical = int(max(_RULE_MIN_FRACTION[1] * height, _RULE_STROKE_FACTOR[1] * stroke_width))
    if horizontal >= width and vertical >= height:
        return mask
    thick = cv2.dilate(mask, _RULE_BRIDGE_KERNEL)
    rules = np.zeros_like(mask)
    if horizontal < width:
        rules = cv2.morphologyEx(thick, cv2.MORPH_OPEN, np.ones((1, horizontal), np.uint8))
    if vertical < height:
        vertical_rules = cv2.morphologyEx(thick, cv2.MORPH_OPEN, np.ones((vertical, 1), np.uint8))
        rules = cv2.bitwise_or(rules, vertical_rules)
    if cv2.countNonZero(rules) == 0:
        return mask
    return cv2.bitwise_and(mask, cv2.bitwise_not(rules))


def _candidates(page: _Page, mask: np.ndarray) -> list[_Candidate]:
    """Connected components that are not specks, largest first, at most `_MAX_CANDIDATES`."""
    # Grana's algorithm is about three times faster than OpenCV's default here.
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    page.labels = labels
    areas = stats[1:, cv2.CC_STAT_AREA]
    min_area = max(4, int(page.stroke_width**2))
    keep = np.flatnonzero(areas >= min_area) + 1
    if len(keep) > _MAX_CANDIDATES:
        keep = keep[np.argsort(areas[keep - 1])[::-1][:_MAX_CANDIDATES]]
    return [
        _Candidate(int(x), int(y), int(width), int(height), [int(label)], float(area))
        for label, (x, y, width, height, area) in zip(keep.tolist(), stats[keep].tolist())
    ]


def _merge_pieces(candidates: list[_Candidate], stroke_width: float) -> list[_Candidate]:
    """Joins pieces of one digit: a detached bar of a 5, a 4 in two strokes, a digit cut by a rule."""
    candidates = sorted(candidates, key=lambda candidate: candidate.x)
    merged = True
    while merged:
        merged = False
        for first_index, first in enumerate(candidates):
            for second_index in range(first_index + 1, len(candidates)):
                second = candidates[second_index]
                if second.x >= first.right:
                    break  # sorted by x: no later candidate overlaps `first` in x either
                if _same_digit(first, second, stroke_width):
                    first.absorb(candidates.pop(second_index))
                    merged = True
                    break
            if merged:
                break
    return candidates


def _same_digit(first: _Candidate, second: _Candidate, stroke_width: float) -> bool:
    overlap_x = min(first.right, second.right) - max(first.x, second.x)
    overlap_y = min(first.bottom, second.bottom) - max(first.y, second.y)
    smaller, larger = (first, second) if first.mass <= second.mass else (second, first)
    if overlap_y > 0 and overlap_x * overlap_y >= 0.5 * smaller.width * smaller.height:
        return True  # mostly inside the other's box: a stroke of the same digit
    if overlap_x < 0.5 * min(first.width, second.width):
        return False
    gap = -overlap_y
    tallest = max(first.height, second.height)
    union = max(first.bottom, second.bottom) - min(first.y, second.y)
    if gap <= _RULE_GAP + 1.5 * stroke_width and union <= 2.5 * tallest:
        return True  # a digit cut by an erased rule, or a pen that skipped
    return gap <= 0.3 * tallest and union <= 1.6 * tallest


def _plausible_digits(candidates: list[_Candidate], page: _Page) -> list[_Candidate]:
    """Drops specks, dots, dashes, lines, blobs, faint smudges and page edges."""
    height, width = page.ink.shape
    kept = []
    for candidate in candidates:
        if candidate.height < _MIN_DIGIT_HEIGHT or candidate.width > _MAX_ASPECT * candidate.height:
            continue
        ink_area = _ink_area(candidate, page)
        if _is_blob(candidate, ink_area, page.stroke_width):
            continue
        if _touches_frame(candidate, width, height) and not _is_tight_crop(candidate, ink_area, height):
            continue
        candidate.mass = _ink_mass(candidate, page)
        if candidate.mass < 1.3 * page.threshold * ink_area:  # mean contrast too close to the threshold
            continue
        kept.append(candidate)
    return _drop_small_in_line(kept)


def _touches_frame(candidate: _Candidate, width: int, height: int) -> bool:
    return candidate.x == 0 or candidate.y == 0 or candidate.right == width or candidate.bottom == height


def _is_tight_crop(candidate: _Candidate, ink_area: int, height: int) -> bool:
    """A digit may touch the frame only when it fills most of it: a picture cropped to the digit.

    Anything smaller touching the frame is more likely a page edge, a shadow or a cut-off object.
    """
    fill = ink_area / (candidate.width * candidate.height)
    return candidate.height >= 0.5 * height and fill < _TIGHT_CROP_MAX_FILL


def _member_mask(candidate: _Candidate, labels: np.ndarray) -> np.ndarray:
    region = labels[candidate.y : candidate.bottom, candidate.x : candidate.right]
    if len(candidate.labels) == 1:
        return region == candidate.labels[0]
    return np.isin(region, candidate.labels)


def _ink_area(candidate: _Candidate, page: _Page) -> int:
    return int(np.count_nonzero(_member_mask(candidate, page.labels)))


def _ink_mass(candidate: _Candidate, page: _Page) -> float:
    region = page.ink[candidate.y : candidate.bottom, candidate.x : candidate.right]
    return float(region[_member_mask(candidate, page.labels)].sum(dtype=np.float64))


def _is_blob(candidate: _Candidate, ink_area: int, stroke_width: float) -> bool:
    fill = ink_area / (candidate.width * candidate.height)
    return fill > _BLOB_FILL and min(candidate.width, candidate.height) > 3 * stroke_width


def _drop_small_in_line(candidates: list[_Candidate]) -> list[_Candidate]:
    kept = []
    for candidate in candidates:
        neighbours = [other.height for other in candidates if _share_line(candidate, other)]
        if candidate.height >= _MIN_LINE_HEIGHT_FRACTION * max(neighbours):
            kept.append(candidate)
    return kept


def _share_line(first: _Candidate, second: _Candidate) -> bool:
    overlap = min(first.bottom, second.bottom) - max(first.y, second.y)
    return overlap >= 0.5 * min(first.height, second.height)


def _most_prominent(candidates: list[_Candidate], page: _Page, options: PreprocessOptions) -> list[_Candidate]:
    limit = 1 if options.single else options.max_digits
    if len(candidates) <= limit:
        return candidates
    if not options.single:
        return sorted(candidates, key=lambda candidate: candidate.mass, reverse=True)[:limit]
    height, width = page.ink.shape
    half_diagonal = 0.5 * math.hypot(width, height)

    def score(candidate: _Candidate) -> float:
        distance = math.hypot(candidate.x + candidate.width / 2 - width / 2, candidate.y + candidate.height / 2 - height / 2)
        return candidate.mass * (1.0 - 0.5 * distance / half_diagonal)

    return [max(candidates, key=score)]


def _reading_order(candidates: list[_Candidate]) -> list[list[_Candidate]]:
    """Groups into text lines by vertical overlap, lines top to bottom, digits left to right."""
    lines: list[list[_Candidate]] = []
    for candidate in sorted(candidates, key=lambda candidate: candidate.y + candidate.height / 2):
        line = next((line for line in lines if _share_line(candidate, _line_span(line))), None)
        if line is None:
            lines.append([candidate])
        else:
            line.append(candidate)
    for line in lines:
        line.sort(key=lambda candidate: candidate.x)
    return lines


def _line_span(line: list[_Candidate]) -> _Candidate:
    top = min(candidate.y for candidate in line)
    bottom = max(candidate.bottom for candidate in line)
    heights = sorted(candidate.height for candidate in line)
    median_height = heights[len(heights) // 2]
    centre = (top + bottom) / 2
    return _Candidate(0, int(centre - median_height / 2), 1, median_height, [])


def _source_box(candidate: _Candidate, page: _Page) -> tuple[int, int, int, int]:
    scale = page.scale
    source_height, source_width = page.source.shape[:2]
    x, y = candidate.x * scale, candidate.y * scale
    right = min(candidate.right * scale, source_width)
    bottom = min(candidate.bottom * scale, source_height)
    return (x, y, right - x, bottom - y)


# --- cutting out each digit -----------------------------------------------------------------


def _crop(candidate: _Candidate, page: _Page) -> np.ndarray:
    """The digit's own ink, anti-aliased as MNIST's, scaled so that strokes reach full brightness."""
    if page.scale > 1 and candidate.height < _CROP_FROM_SOURCE_HEIGHT:
        ink, members = _source_ink(candidate, page)
    else:
        ink = page.ink[candidate.y : candidate.bottom, candidate.x : candidate.right]
        members = _member_mask(candidate, page.labels).view(np.uint8)
        if page.rules_erased:
            members = _restore_rule_crossings(members, page.raw_mask, candidate)
    # The dilated member mask keeps the soft edges below the threshold but not the neighbours' ink.
    digit = cv2.bitwise_and(ink, ink, mask=cv2.dilate(members, None))
    level = _stroke_level(ink, members)
    floor = _CROP_FLOOR * page.threshold
    if level > floor + 1:
        digit = cv2.convertScaleAbs(digit, alpha=255.0 / (level - floor), beta=-255.0 * floor / (level - floor))
    mnist = to_mnist(digit)
    return _thicken_if_thin(mnist, _stroke_width(members) * constants.DIGIT_BOX / max(members.shape))


def _restore_rule_crossings(members: np.ndarray, raw_mask: np.ndarray, candidate: _Candidate) -> np.ndarray:
    """Gives back the stroke pixels that erasing a rule took, where the stroke crosses the rule.

    Growing the digit only vertically reaches across a horizontal rule where a stroke continues on
    the other side, without taking in the rule's length between strokes.
    """
    raw = raw_mask[candidate.y : candidate.bottom, candidate.x : candidate.right]
    across = cv2.dilate(members, _CROSSING_KERNEL)
    return cv2.bitwise_or(members, cv2.bitwise_and(across, raw.view(np.uint8) & 1))


def _stroke_level(ink: np.ndarray, members: np.ndarray) -> float:
    """About the 70th percentile of the digit's ink: the core of its strokes."""
    mean, deviation = cv2.meanStdDev(ink, mask=members)
    return float(mean[0, 0] + 0.5 * deviation[0, 0])


def _source_ink(candidate: _Candidate, page: _Page) -> tuple[np.ndarray, np.ndarray]:
    """Ink of a small digit at the input's full resolution, with the working background upsampled."""
    scale = page.scale
    x, y, right, bottom = candidate.x * scale, candidate.y * scale, candidate.right * scale, candidate.bottom * scale
    source = page.source[y:bottom, x:right]
    gray = _as_gray(source) if page.dark_on_light else _luma(source)
    size = (gray.shape[1], gray.shape[0])
    region = page.background[candidate.y : candidate.bottom, candidate.x : candidate.right]
    background = cv2.resize(region, size, interpolation=cv2.INTER_LINEAR)
    if page.dark_on_light:
        ink = cv2.bitwise_not(cv2.divide(gray, background, scale=255))
    else:
        ink = cv2.divide(cv2.subtract(gray, background), cv2.max(cv2.bitwise_not(background), 1), scale=255)
    members = _member_mask(candidate, page.labels).view(np.uint8)
    if page.rules_erased:
        members = _restore_rule_crossings(members, page.raw_mask, candidate)
    members = cv2.resize(members, size, interpolation=cv2.INTER_NEAREST)
    near = cv2.dilate(members, None, iterations=scale)
    return ink, cv2.bitwise_and(near, (ink > page.threshold).view(np.uint8))


def _luma(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)


def _thicken_if_thin(mnist: np.ndarray, stroke_width_in_box: float) -> np.ndarray:
    """A fine pen on a large digit leaves hair-thin strokes once fitted into 20 pixels; MNIST has none.

    Dilating the 28x28 result with a symmetric cross keeps the centre of mass where it was.
    """
    if stroke_width_in_box >= _STROKE_THIN:
        return mnist
    thick = cv2.dilate(mnist, _THICKEN_KERNEL)
    peak = float(thick.max())
    if peak > 0:
        thick *= np.float32(min(1.0 / peak, _MAX_THICKEN_GAIN))
        np.minimum(thick, 1.0, out=thick)
    return thick
