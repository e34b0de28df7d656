"""Finding handwritten digits in photos, scans and tiles and turning each into an MNIST-style 28x28 image.

Photos and scans go through these stages, at a working resolution of about 320 pixels (the input
halved until it fits, which OpenCV does fast), so that a 640x480 frame costs about 2 ms:

1. Light: gray is the darkest colour channel (blue and red ink stay dark); polarity comes from how
   bright the frame and its centre are; the paper (or board) brightness is estimated by a closing
   (opening) on a copy reduced four more times, and ink is the contrast relative to it, which
   cancels shadows and uneven light.
2. Mask: a threshold above the paper's own grain, measured on the paper; ruled and grid lines
   (long thin straight runs) are erased, but for ink much darker than the rules running along them
   (the base of a 2 written on the line).
3. Components: what touches the frame (page edges, tables) or lies off the paper is dropped;
   pieces of one digit are merged (a 5's detached bar, a digit cut by an erased rule, the sides of
   a 0 joined by fainter ink); specks, dots, dashes, blobs, page edges and pieces of long tilted
   lines (margins) are dropped; touching digits are cut apart, through more ink when a component
   is several digits wide.
4. Order: text lines by vertical overlap, top to bottom, each left to right.
5. Crops: each digit's own anti-aliased ink, contrast-stretched, fitted into 20x20 and centred by
   its centre of mass in 28x28, as MNIST was made. Lines of small digits are segmented again from
   the input at full resolution first.

Small gray tiles (MNIST itself) skip all this: see `extract_digits`.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from edge_runtime import constants

__all__ = ["DigitCrop", "PreprocessOptions", "extract_digits", "to_mnist"]

TILE_MAX_SIDE = 64
"""Gray images no larger than this (and roughly square) hold one digit and take the fast tile path."""

_MNIST_CENTRE = constants.IMAGE_SIZE / 2  # MNIST put the centre of mass at pixel index 14.0

# Tiles.
_TILE_MAX_ASPECT = 1.5  # longer / shorter side: longer strips may hold several digits
_TILE_INK_LEVEL = 0.3  # of the tile's contrast: brighter pixels are ink when finding the digit's box
_TILE_MIN_CONTRAST = 48  # gray levels between background and ink; less is a blank tile
_TILE_CLEAN_BORDER = 16  # a darker border mean is MNIST's black plus a few ink pixels, kept as is
_TILE_FULL_INK = 192  # tiles whose brightest ink is dimmer than this are stretched to full ink
_MNIST_SHIFT_TOLERANCE = 1.0  # pixels the centre of mass may be off before a tile is re-centred

# Light: polarity and background.
_SMALL_SIDE = 64  # the background is estimated on a copy whose longer side is 64..127 pixels
_BACKGROUND_KERNEL_FRACTION = 0.2  # of the copy's shorter side: narrower strokes leave the background
_LIGHT_SURFACE = 100  # median gray level: photographed paper is brighter, chalkboards much darker
_PAPER_PERCENTILE = 0.9  # of the background: the brightness of well-lit paper
_SHADOW_DEPTH = 0.35  # paper in shadow is at least this bright relative to lit paper
_CHALK_BLUR = 1.0  # sigma in working pixels, to make grainy chalk strokes solid
_CHALK_FULL_CONTRAST = 128  # gray levels above the board that count as full-contrast chalk

# Threshold.
_NOISE_SPREAD = 4  # the threshold is this many (median - lower quartile) steps above the median
_NOISE_MARGIN = 8  # ... plus this many ink levels
_MAX_PAPER_INK = 64  # a paper whose median pixel has more ink contrast than this is a texture
_STRONG_INK_PERCENTILE = 0.995  # the darkest half percent of the paper is the core of the strokes
_STRONG_INK_SHARE = 0.45  # of the strong ink level: the threshold, to keep soft stroke edges out
_THRESHOLD_CAP = 64  # ink levels: a higher threshold would lose faint ink beside strong ink

# Stroke width and ruled lines (measured at half the working resolution).
_POOL_KERNEL = np.ones((2, 2), np.uint8)
_MAX_STROKE_FRACTION = 0.035  # of the shorter side: thicker regions do not count as strokes
_RULE_MIN_FRACTION = (0.3, 0.6)  # of the width, height: shorter straight runs are never rules
_RULE_STROKE_FACTOR = (15, 30)  # horizontal, vertical rules are also this many stroke widths long
_RULE_BRIDGE_ALONG = 3  # pixels: gaps this long between the dashes of a faint rule are bridged
_RULE_BRIDGE_ACROSS = 3  # pixels: thickening a rule this much lets it tilt by about 2 degrees
_THICK_MARGIN_KERNEL = np.ones((_RULE_BRIDGE_ACROSS, _RULE_BRIDGE_ACROSS), np.uint8)
_RULE_INK_PERCENTILE = 0.9  # of the erased rule pixels' ink: the level the rules themselves reach
_RULE_INK_MARGIN = 16  # ink levels above it (at least) ...
_RULE_INK_SHARE = 0.3  # ... or this share of the way from it to full ink: a pen stroke on a rule
_RULE_GAP = 2 * _RULE_BRIDGE_ACROSS  # working pixels: an erased rule leaves gaps this much wider than itself

# Components and digits (working-resolution pixels).
_MIN_AREA = 6  # smaller components are specks
_MAX_CANDIDATES = 96  # components kept (largest first) before merging, to bound the time
_MIN_DIGIT_HEIGHT = 7
_LINE_ASPECT = 4  # width / height: a piece this flat ...
_LINE_OVERHANG = 2.5  # ... and this many times wider than the piece it would join is a line, not a bar
_FAINT_JOIN_LEVEL = 0.5  # of the threshold: ink this strong joins side-by-side pieces into one digit
_FAINT_JOIN_MIN_RATIO = 0.6  # such pieces are about as tall as each other and share most of their rows
_FAINT_JOIN_MAX_GAP = 0.3  # of the taller one's height: the widest gap between them
_FAINT_JOIN_MAX_ASPECT = 1.0  # width / height of the joined piece: wider is two digits
_MIN_LINE_HEIGHT_FRACTION = 0.4  # of the line's typical digit; shorter ones are dots and specks
_MAX_LINE_HEIGHT_RATIO = 2.0  # thin strokes taller than this times the line's typical digit are lines
_MAX_ASPECT = 3.0  # width / height: wider candidates are lines or dashes (touching digits stay <= 3)
_BLOB_FILL = 0.75  # of the bounding box: fuller candidates thicker than strokes are blobs, not digits
_BLOB_MAX_ELONGATION = 2.5  # a solid patch longer than this times its width may be a 1
_MIN_STROKE_PER_WIDTH = 1.7  # stroke length over box width: less is a line (see `_is_line`)
_MIN_STROKE_RATIO = 0.45  # of the page's stroke width: finer strokes are printed lines
_EDGE_ELONGATION = 4  # height / width: strokes this thin are checked for being a page edge
_EDGE_SIDE_CONTRAST = 0.25  # of the brighter side: a larger difference across a stroke is a page edge
_EDGE_HEIGHT_RATIO = 2.5  # times the lower median height: taller candidates are checked for being a page edge
_EDGE_MAX_FILL = 0.1  # of the box: candidates with less ink are checked for being a page edge too
_EDGE_REACH = 3  # stroke widths beside such a candidate where its two sides are compared
_LINE_PIECE_ELONGATION = 3  # height / width: thinner strokes are checked for being part of a long line
_LINE_TILTS = (0.0, -0.02, 0.02, -0.04, 0.04)  # dx / dy added to a thin piece's own tilt when following it
_LINE_SIDE = 4  # working pixels off a line's axis where there is paper, not ink
_LINE_CONTINUES = 0.25  # of the paper along such a stroke's axis: inked this much, the stroke is a line
_MIN_INK_OVER_NOISE = 1.3  # a digit's mean ink must exceed the noise floor by this factor
_MIN_INK_OVER_THRESHOLD = 1.1  # ... and the threshold by this one
_TIGHT_CROP_MAX_FILL = 0.6  # strokes fill less of their box than shadows and objects do
_TIGHT_CROP_MAX_CONTACT = 0.2  # of its longer side: a digit touches the frame with stroke ends only
_SPLIT_ASPECT = 1.25  # width / height: wider components may be digits written touching
_SPLIT_LINE_WIDTH = 1.6  # ... and so may components this much wider than the line's typical digit
_NARROW_DIGIT = 0.45  # width / height: narrower candidates (1s) do not set a line's digit width
_MANY_DIGITS_WIDTH = 1.8  # times the line's digit width: surely several digits, cut through more ink
_MANY_DIGITS_ASPECT = 1.6  # width / height: ... as is a component this much wider than tall
_MANY_MAX_CROSSING = 2.5  # stroke widths of ink in the column where such a component is cut
_SPLIT_MIN_PART = 0.25  # of the height: the narrowest part a cut may leave
_SPLIT_MIN_HEIGHT = 0.6  # of the height: the shortest part a cut may leave
_SPLIT_MAX_CROSSING = 1.5  # stroke widths of ink in the column where touching digits are cut
_CUT_SLANTS = (0.0, 0.2, -0.2, 0.4)  # dx / dy of the cuts tried; handwriting leans right (positive)
_TOUCH_ASPECT = 0.85  # width / height: squarer components are cut only where two digits barely touch
_TOUCH_MAX_CROSSING = 1.0  # stroke widths of ink in such a cut
_TOUCH_MIN_HEIGHT = 0.75  # of the height: the shortest part such a cut may leave

# Second look at small digits.
_ZOOM_BELOW_HEIGHT = 20  # working pixels: lines of shorter digits are segmented again at full resolution
_ZOOM_PAD = (1.0, 0.6)  # of the digit height, around the line's digits: x, y

# Crops.
_CROP_FROM_SOURCE_HEIGHT = 24  # digits shorter than this at working resolution are cut from the input
_CROP_FLOOR = 0.35  # of the threshold: fainter ink around a digit becomes black
_CROSSING_KERNEL = np.ones((2 * _RULE_GAP + 3, 1), np.uint8)
_STROKE_THIN = 1.3  # strokes thinner than this in the 20-pixel box (MNIST: about 2.1) are thickened
_THICKEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_MAX_THICKEN_GAIN = 3.0  # brightening a thin faint stroke more than this would amplify noise


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
    fitted = cv2.resize(digit, (new_width, new_height), interpolation=interpolation).reshape(new_height, new_width)
    return np.clip(fitted, 0.0, 1.0, out=fitted)  # interpolation can round a hair past 1


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
    area: int  # ink pixels
    mass: float = 0.0  # ink contrast summed over the ink pixels
    members: np.ndarray | None = None  # its pixels within its box when labels alone do not say (a cut part)

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
        self.area += other.area


@dataclasses.dataclass
class _Page:
    """What the segmentation stages share about one image; all arrays at working resolution."""

    source: np.ndarray  # the image given, gray or BGR
    scale: int  # source pixels per working pixel
    gray: np.ndarray  # before normalising the light
    ink: np.ndarray  # uint8, 0 = paper, 255 = full-contrast ink
    background: np.ndarray  # the paper's (or board's) brightness
    dark_on_light: bool
    surface_floor: int  # backgrounds darker than this are not paper (dark-on-light only)
    noise_floor: int = 0  # ink level of the paper's grain
    threshold: int = 0  # ink level of the mask
    stroke_width: float = 2.0  # typical, in working pixels
    raw_mask: np.ndarray | None = None  # the thresholded ink before rules were erased
    rules_erased: bool = False
    rule_ink: int = 256  # ink level clearly darker than the erased rules: pen on a rule (256: none)
    labels: np.ndarray | None = None  # connected components of the mask without rules
    mask: np.ndarray | None = None  # the mask without rules (0 or 255)


def _segment(image: np.ndarray, options: PreprocessOptions, zoom: bool = True) -> list[DigitCrop]:
    """Normalises light, thresholds, removes ruled lines, then groups components into digits.

    Text lines whose digits came out small at working resolution are segmented again from the
    input at full resolution (see `_zoom_in`), where touching small digits come apart.
    """
    if min(image.shape[:2]) < _MIN_DIGIT_HEIGHT:
        return []
    page = _prepare_page(image, options)
    mask = _ink_mask(page, options)
    if mask is None:
        return []
    candidates = _candidates(page, mask)
    candidates = _on_the_page(candidates, page)
    candidates = _merge_pieces(candidates, page.stroke_width)
    candidates = _merge_faint_joins(candidates, page)
    candidates = _plausible_digits(candidates, page)
    if not options.single and candidates:
        split = _split_touching(candidates, page)
        candidates = _keep_unsplit(candidates, split, _plausible_digits(split, page))
    if not candidates:
        return []
    candidates = _most_prominent(candidates, page, options)
    crops = []
    for line_index, line in enumerate(_reading_order(candidates)):
        zoomed = _zoom_in(line, page, options) if zoom else None
        if zoomed:
            crops += [dataclasses.replace(crop, line=line_index) for crop in zoomed]
        else:
            crops += [DigitCrop(_source_box(candidate, page), _crop(candidate, page), line_index) for candidate in line]
    return crops


def _zoom_in(line: list[_Candidate], page: _Page, options: PreprocessOptions) -> list[DigitCrop] | None:
    """Segments a line of small digits again, on its own region of the input at full resolution.

    Returns None when the digits are not small, when the image was not reduced, or when the
    second look finds nothing (the first look stands then).
    """
    heights = sorted(candidate.height for candidate in line)
    typical = heights[len(heights) // 2]
    if page.scale == 1 or options.single or typical >= _ZOOM_BELOW_HEIGHT:
        return None
    height, width = page.ink.shape
    pad_x, pad_y = int(_ZOOM_PAD[0] * typical), int(_ZOOM_PAD[1] * typical)
    left = max(0, min(candidate.x for candidate in line) - pad_x)
    right = min(width, max(candidate.right for candidate in line) + pad_x)
    top = max(0, min(candidate.y for candidate in line) - pad_y)
    bottom = min(height, max(candidate.bottom for candidate in line) + pad_y)
    scale = page.scale
    region = page.source[top * scale : bottom * scale, left * scale : right * scale]
    polarity = constants.INK_DARK_ON_LIGHT if page.dark_on_light else constants.INK_LIGHT_ON_DARK
    crops = _segment(np.ascontiguousarray(region), dataclasses.replace(options, polarity=polarity), zoom=False)
    if not crops:
        return None
    return [dataclasses.replace(crop, box=_offset(crop.box, left * scale, top * scale)) for crop in crops]


def _offset(box: tuple[int, int, int, int], dx: int, dy: int) -> tuple[int, int, int, int]:
    return (box[0] + dx, box[1] + dy, box[2], box[3])


def _prepare_page(image: np.ndarray, options: PreprocessOptions) -> _Page:
    """The working copy, its polarity, background and ink map (stage 1 in the module docstring)."""
    work, scale = _halve_until(image, options.work_side)
    gray = _channel_minimum(work) if work.ndim == 3 else work
    dark_on_light, small_background = _polarity_and_background(gray, options.polarity)
    if not dark_on_light and work.ndim == 3:
        # Chalk can be coloured: luma sees the yellow chalk that the darkest channel loses.
        gray = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
        _, small_background = _polarity_and_background(gray, constants.INK_LIGHT_ON_DARK)
    background = _upsample_background(small_background, gray.shape)
    surface_floor = _surface_floor(small_background, dark_on_light)
    ink = _relative_ink(gray, background, dark_on_light, surface_floor)
    if not dark_on_light:
        # Chalk leaves grainy strokes that would threshold into dust; a light blur makes them solid.
        ink = cv2.GaussianBlur(ink, (0, 0), _CHALK_BLUR)
    return _Page(image, scale, gray, ink, background, dark_on_light, surface_floor)


def _surface_floor(small_background: np.ndarray, dark_on_light: bool) -> int:
    """Darkest background still taken for lit or shadowed paper rather than a table or a frame."""
    if not dark_on_light:
        return 0
    cumulative = np.cumsum(cv2.calcHist([small_background], [0], None, [256], [0, 256]).ravel())
    paper = int(np.searchsorted(cumulative, _PAPER_PERCENTILE * cumulative[-1]))
    return max(1, int(_SHADOW_DEPTH * paper))


def _relative_ink(gray: np.ndarray, background: np.ndarray, dark_on_light: bool, surface_floor: int) -> np.ndarray:
    """Ink contrast 0..255 relative to the local paper (or board), so that shadows do not matter.

    Dividing by the background would make every grain of a dark table strong ink: the divisor
    never drops below `surface_floor`, the darkest brightness still taken for paper.
    """
    if dark_on_light:
        divisor = cv2.max(background, surface_floor)
        return cv2.divide(cv2.subtract(background, gray), divisor, scale=255)
    # Chalk never gets near white: full contrast is a fixed step above the board.
    headroom = cv2.min(cv2.max(cv2.bitwise_not(background), 1), _CHALK_FULL_CONTRAST)
    return cv2.divide(cv2.subtract(gray, background), headroom, scale=255)


def _halve_until(image: np.ndarray, work_side: int) -> tuple[np.ndarray, int]:
    """Halves with area averaging (OpenCV's fast path) until the longer side is below 2 * work_side."""
    scale = 1
    while max(image.shape[:2]) >= 2 * work_side and min(image.shape[:2]) >= 2 * _MIN_DIGIT_HEIGHT:
        height, width = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[: 2 * height, : 2 * width], (width, height), interpolation=cv2.INTER_AREA)
        scale *= 2
    return image, scale


def _channel_minimum(bgr: np.ndarray) -> np.ndarray:
    """Darkest channel: blue and red ink stay as dark as black ink, unlike a luma conversion."""
    blue, green, red = cv2.split(bgr)
    return cv2.min(cv2.min(blue, green), red)


def _polarity_and_background(gray: np.ndarray, polarity: str) -> tuple[bool, np.ndarray]:
    """Decides the polarity and estimates the paper (closing) or board (opening) brightness.

    Everything runs on a copy reduced about four times. The kernel is a fifth of its shorter side,
    so strokes up to that width vanish into the background estimate while shadows and page edges,
    which are wider, stay in it.
    """
    small, _ = _halve_until(gray, _SMALL_SIDE)
    side = max(3, int(_BACKGROUND_KERNEL_FRACTION * min(small.shape)) | 1)
    if polarity == constants.INK_AUTO:
        dark_on_light = _ink_is_dark(small)
    else:
        dark_on_light = polarity == constants.INK_DARK_ON_LIGHT
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    operation = cv2.MORPH_CLOSE if dark_on_light else cv2.MORPH_OPEN
    return dark_on_light, cv2.morphologyEx(small, operation, kernel)


def _ink_is_dark(small: np.ndarray) -> bool:
    """Paper is bright and boards are dark; when the frame and its centre disagree, shape decides.

    They disagree for a sheet of paper on a dark table (bright centre, dark frame) and for a
    close-up of chalk strokes (the same). What the centre shows is the writing surface if it is a
    solid region, which survives an erosion by a quarter of the image, and ink strokes otherwise.
    """
    height, width = small.shape
    centre = small[height // 4 : height - height // 4, width // 4 : width - width // 4]
    frame_is_light = _median(small) >= _LIGHT_SURFACE
    centre_is_light = _median(centre) >= _LIGHT_SURFACE
    if frame_is_light == centre_is_light:
        return frame_is_light
    mode = cv2.THRESH_BINARY if centre_is_light else cv2.THRESH_BINARY_INV
    centre_phase = cv2.threshold(small, 0, 255, mode | cv2.THRESH_OTSU)[1]
    side = max(3, min(height, width) // 4)
    solid = cv2.erode(centre_phase, np.ones((side, side), np.uint8))
    centre_is_surface = cv2.countNonZero(solid[height // 4 : height - height // 4, width // 4 : width - width // 4]) > 0
    return centre_is_light == centre_is_surface


def _median(image: np.ndarray) -> int:
    cumulative = np.cumsum(cv2.calcHist([image], [0], None, [256], [0, 256]).ravel())
    return int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))


def _upsample_background(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    smooth = cv2.blur(small, (3, 3))
    return cv2.resize(smooth, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _ink_mask(page: _Page, options: PreprocessOptions) -> np.ndarray | None:
    """Thresholds the ink map above the paper's own texture, then erases long ruled lines.

    Thick regions and rules are found on a copy of the mask at half resolution (each pixel the
    maximum of four), where long morphological kernels cost an eighth as much.
    """
    surface = None
    if page.surface_floor > 1:
        surface = cv2.threshold(page.background, page.surface_floor - 1, 255, cv2.THRESH_BINARY)[1]
    levels = _ink_threshold(page.ink, surface, options.min_contrast)
    if levels is None:
        return None
    page.noise_floor, page.threshold = levels
    mask = cv2.threshold(page.ink, page.threshold, 255, cv2.THRESH_BINARY)[1]
    page.raw_mask = mask
    half = _max_pool(mask)
    side = max(3, int(_MAX_STROKE_FRACTION * min(half.shape)) | 1)
    thick_half = cv2.morphologyEx(half, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    thin = cv2.subtract(mask, _upsample(thick_half, mask.shape))
    # Measured on the paper only: a table's texture is no writing.
    page.stroke_width = _stroke_width(thin if surface is None else cv2.bitwise_and(thin, surface))
    cleaned = _remove_rules(mask, half, thick_half, page.stroke_width)
    page.rules_erased = cleaned is not mask
    if page.rules_erased:
        erased = cv2.subtract(mask, cleaned)
        page.rule_ink = _rule_ink(page.ink, erased)
        if page.rule_ink <= 255:
            # Ink much darker than the rules is a pen stroke along a rule (the base of a 2): kept.
            # Only runs along the rule count: where a line crosses a rule, the overlap is dark too.
            strokes = cv2.threshold(page.ink, page.rule_ink - 1, 255, cv2.THRESH_BINARY)[1]
            strokes = cv2.bitwise_and(erased, strokes)
            x, y, width, height = cv2.boundingRect(strokes)  # few pixels, where digits are: a small region
            if width > 0:
                along = np.ones((1, 2 * int(page.stroke_width) + 3), np.uint8)
                region = (slice(y, y + height), slice(x, x + width))
                runs = cv2.morphologyEx(strokes[region], cv2.MORPH_OPEN, along)
                cleaned[region] |= runs
    return cleaned


def _max_pool(mask: np.ndarray) -> np.ndarray:
    """Half resolution, each pixel set if any of its four source pixels is."""
    grown = cv2.dilate(mask, _POOL_KERNEL, anchor=(0, 0))
    return np.ascontiguousarray(grown[::2, ::2])


def _upsample(half: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(half, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def _ink_threshold(ink: np.ndarray, surface: np.ndarray | None, min_contrast: float) -> tuple[int, int] | None:
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
    floor = max(min_contrast * 255.0, median + _NOISE_SPREAD * (median - lower_quartile) + _NOISE_MARGIN)
    if floor >= 250 or median > _MAX_PAPER_INK:
        return None
    strong_ink = int(np.searchsorted(cumulative, _STRONG_INK_PERCENTILE * total))
    return int(floor), int(max(floor, min(_STRONG_INK_SHARE * strong_ink, _THRESHOLD_CAP)))


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width as 2 * area / boundary length, which is exact for long strokes."""
    area = cv2.countNonZero(mask)
    if area == 0:
        return 1.0
    boundary = area - cv2.countNonZero(cv2.erode(mask, None))
    return max(1.0, 2.0 * area / max(boundary, 1))


def _remove_rules(mask: np.ndarray, half: np.ndarray, thick_half: np.ndarray, stroke_width: float) -> np.ndarray:
    """Erases straight runs far longer than any digit stroke: ruled and grid lines.

    Works on the half-resolution `half`. It is thickened first so that slightly tilted lines
    (staircases of short runs) and dashed ones (a faint line thresholded in pieces) still contain
    one long straight run. Runs through thick ink (`thick_half`) are kept: they are marker strokes
    (the bar of a 4 written with a felt pen) or table edges, left to the component filters.
    """
    height, width = half.shape
    horizontal = int(max(_RULE_MIN_FRACTION[0] * width, _RULE_STROKE_FACTOR[0] * stroke_width / 2))
    vertical = int(max(_RULE_MIN_FRACTION[1] * height, _RULE_STROKE_FACTOR[1] * stroke_width / 2))
    rules = None
    if horizontal < width:
        rules = _straight_runs(half, (horizontal, 1), _RULE_BRIDGE_ALONG, _RULE_BRIDGE_ACROSS)
    if vertical < height:
        vertical_rules = _straight_runs(half, (1, vertical), _RULE_BRIDGE_ACROSS, _RULE_BRIDGE_ALONG)
        rules = vertical_rules if rules is None else cv2.bitwise_or(rules, vertical_rules)
    if rules is None or cv2.countNonZero(rules) == 0:
        return mask
    rules = cv2.subtract(rules, cv2.dilate(thick_half, _THICK_MARGIN_KERNEL))
    return cv2.bitwise_and(mask, cv2.bitwise_not(_upsample(rules, mask.shape)))


def _straight_runs(mask: np.ndarray, length: tuple[int, int], bridge_x: int, bridge_y: int) -> np.ndarray:
    """Pixels on straight runs at least `length` (width, height) long, after bridging small gaps."""
    bridged = cv2.dilate(mask, np.ones((bridge_y, bridge_x), np.uint8))
    return cv2.morphologyEx(bridged, cv2.MORPH_OPEN, np.ones((length[1], length[0]), np.uint8))


def _candidates(page: _Page, mask: np.ndarray) -> list[_Candidate]:
    """Connected components that are not specks, largest first, at most `_MAX_CANDIDATES`."""
    # Grana's algorithm is about three times faster than OpenCV's default here.
    _, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    page.labels = labels
    page.mask = mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    min_area = _MIN_AREA
    keep = np.flatnonzero(areas >= min_area) + 1
    if len(keep) > _MAX_CANDIDATES:
        keep = keep[np.argsort(areas[keep - 1])[::-1][:_MAX_CANDIDATES]]
    return [
        _Candidate(int(x), int(y), int(width), int(height), [int(label)], int(area))
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


def _merge_faint_joins(candidates: list[_Candidate], page: _Page) -> list[_Candidate]:
    """Joins side-by-side pieces that fainter ink connects: the two sides of a 0 or an 8 whose
    hairline top and bottom fell below the threshold, the stem and the bar of a thin-topped 7.

    Digits of a number joined this way are cut apart again where no strong ink joins them, if the
    joined piece is wider than a digit (see `_split_touching`).
    """
    if len(candidates) < 2:
        return candidates
    level = max(page.noise_floor + 1, int(_FAINT_JOIN_LEVEL * page.threshold))
    candidates = sorted(candidates, key=lambda candidate: candidate.x)
    index = 0
    while index < len(candidates) - 1:
        first, second = candidates[index], candidates[index + 1]
        if _side_by_side(first, second) and _faintly_joined(first, second, page, level):
            first.absorb(candidates.pop(index + 1))
            first.members = None
        else:
            index += 1
    return candidates


def _side_by_side(first: _Candidate, second: _Candidate) -> bool:
    shorter, taller = sorted((first.height, second.height))
    overlap_y = min(first.bottom, second.bottom) - max(first.y, second.y)
    gap = second.x - first.right
    return (
        first.members is None
        and second.members is None
        and shorter >= _FAINT_JOIN_MIN_RATIO * taller
        and overlap_y >= _FAINT_JOIN_MIN_RATIO * shorter
        and gap <= _FAINT_JOIN_MAX_GAP * taller
        and max(first.right, second.right) - first.x <= _FAINT_JOIN_MAX_ASPECT * taller
    )


def _faintly_joined(first: _Candidate, second: _Candidate, page: _Page, level: int) -> bool:
    x, y = first.x, min(first.y, second.y)
    right, bottom = max(first.right, second.right), max(first.bottom, second.bottom)
    weak = cv2.threshold(page.ink[y:bottom, x:right], level - 1, 255, cv2.THRESH_BINARY)[1]
    _, labels = cv2.connectedComponents(weak, connectivity=8)
    region = page.labels[y:bottom, x:right]
    first_labels = np.unique(labels[np.isin(region, first.labels)])
    second_labels = np.unique(labels[np.isin(region, second.labels)])
    common = np.intersect1d(first_labels, second_labels)
    return bool(np.count_nonzero(common))


def _same_digit(first: _Candidate, second: _Candidate, stroke_width: float) -> bool:
    overlap_x = min(first.right, second.right) - max(first.x, second.x)
    overlap_y = min(first.bottom, second.bottom) - max(first.y, second.y)
    smaller = first if first.area <= second.area else second
    if overlap_y > 0 and overlap_x * overlap_y >= 0.5 * smaller.width * smaller.height:
        return True  # mostly inside the other's box: a stroke of the same digit
    if overlap_x < 0.5 * min(first.width, second.width):
        return False
    line, other = (first, second) if first.width * second.height > second.width * first.height else (second, first)
    if line.width > _LINE_ASPECT * line.height and line.width > _LINE_OVERHANG * other.width:
        return False  # a stroke of a digit is never that long beside the rest: a line under or over it
    gap = -overlap_y
    tallest = max(first.height, second.height)
    union = max(first.bottom, second.bottom) - min(first.y, second.y)
    if gap <= _RULE_GAP + 1.5 * stroke_width and union <= 2.5 * tallest:
        return True  # a digit cut by an erased rule, or a pen that skipped
    return gap <= 0.3 * tallest and union <= 1.6 * tallest


def _on_the_page(candidates: list[_Candidate], page: _Page) -> list[_Candidate]:
    """Drops what lies off the paper or runs along the frame: tables, page edges, shadows.

    This runs before pieces are merged, as a page edge's box can hold the whole page's writing.
    """
    height, width = page.ink.shape
    return [
        candidate
        for candidate in candidates
        if _on_surface(candidate, page)
        and (not _touches_frame(candidate, width, height) or _is_tight_crop(candidate, page))
    ]


def _split_touching(candidates: list[_Candidate], page: _Page) -> list[_Candidate]:
    """Cuts components wider than a digit where a single stroke crosses: digits written touching.

    The wider a component, the more ink the cut may cross: a component wider than tall (or much
    wider than the other digits of its line) may be cut through one stroke; a squarer one only
    where two digits barely touch, and only into two parts both nearly as tall as the whole, as a
    4 or a 6 also has columns crossed by a single stroke.
    """
    result: list[_Candidate] = []
    pending = list(candidates)
    while pending:
        candidate = pending.pop()
        parts = None
        widths = _line_digit_widths(candidate, result + pending)
        if widths >= _MANY_DIGITS_WIDTH or candidate.width >= _MANY_DIGITS_ASPECT * candidate.height:
            parts = _split_once(candidate, page, _MANY_MAX_CROSSING, _SPLIT_MIN_HEIGHT)
        if parts is None and (widths > _SPLIT_LINE_WIDTH or candidate.width > _SPLIT_ASPECT * candidate.height):
            parts = _split_once(candidate, page, _SPLIT_MAX_CROSSING, _SPLIT_MIN_HEIGHT)
        if parts is None and candidate.width > _TOUCH_ASPECT * candidate.height:
            parts = _split_once(candidate, page, _TOUCH_MAX_CROSSING, _TOUCH_MIN_HEIGHT)
        if parts is None:
            result.append(candidate)
        else:
            pending.extend(parts)
    return result


def _keep_unsplit(whole: list[_Candidate], split: list[_Candidate], parts: list[_Candidate]) -> list[_Candidate]:
    """The plausible parts, and the candidates that were cut but none of whose parts is plausible:
    a cut that leaves only strokes and specks took one digit for two."""
    uncut = {id(candidate) for candidate in split}
    kept = list(parts)
    for candidate in whole:
        if id(candidate) not in uncut and not any(
            candidate.x <= part.x + part.width // 2 < candidate.right
            and candidate.y <= part.y + part.height // 2 < candidate.bottom
            for part in parts
        ):
            kept.append(candidate)
    return kept


def _line_digit_widths(candidate: _Candidate, others: list[_Candidate]) -> float:
    """The candidate's width over the typical width of the other digits of its line (its parts cut
    so far included); 0 when there are none. Narrow strokes (1s) do not set the typical width."""
    widths = sorted(
        other.width
        for other in others
        if other.width >= _NARROW_DIGIT * other.height and _share_line(candidate, other)
    )
    return candidate.width / widths[len(widths) // 2] if widths else 0.0


def _split_once(
    candidate: _Candidate, page: _Page, max_crossing: float, min_height: float
) -> tuple[_Candidate, _Candidate] | None:
    """Two parts cut along the (upright or slanted) line with the least ink, if that line crosses
    at most `max_crossing` stroke widths of ink and both parts are at least `min_height` of the
    whole's height. Slanted cuts part slanted handwriting, whose digits overlap in x."""
    members = _member_mask(candidate, page.labels)
    cut = _least_ink_cut(members.view(np.uint8), int(_SPLIT_MIN_PART * candidate.height) + 1)
    if cut is None or cut[0] > max_crossing * page.stroke_width:
        return None
    _, column, slant = cut
    rows = np.arange(candidate.height, dtype=np.float32)[:, np.newaxis] - candidate.height / 2
    left_side = np.arange(candidate.width, dtype=np.float32)[np.newaxis, :] < column + slant * rows
    left = _part(candidate, members & left_side)
    right = _part(candidate, members & ~left_side)
    if left is None or right is None:
        return None
    # Both parts must be about as tall as the whole: cutting off the end of a 7's bar is not a split.
    if min(left.height, right.height) < min_height * candidate.height:
        return None
    return left, right


def _least_ink_cut(members: np.ndarray, margin: int) -> tuple[int, float, float] | None:
    """(ink, column at mid-height, slant) of the straight cut crossing the least ink, upright first."""
    height, width = members.shape
    if width - 2 * margin < 1:
        return None
    pad = int(max(abs(slant) for slant in _CUT_SLANTS) * height / 2) + 1
    best = None
    for slant in _CUT_SLANTS:
        # Shearing by -slant makes the slanted cut lines vertical: pixel (x, y) lands on column
        # x - slant * (y - height / 2) + pad.
        shear = np.float32([[1, -slant, slant * height / 2 + pad], [0, 1, 0]])
        sheared = cv2.warpAffine(members, shear, (width + 2 * pad, height), flags=cv2.INTER_NEAREST)
        columns = np.count_nonzero(sheared[:, pad + margin : pad + width - margin], axis=0)
        index = int(np.argmin(columns))
        if best is None or columns[index] < best[0]:
            best = (int(columns[index]), float(margin + index), slant)
    return best


def _part(candidate: _Candidate, members: np.ndarray) -> _Candidate | None:
    x, y, width, height = cv2.boundingRect(members.view(np.uint8))
    if width == 0:
        return None
    own = members[y : y + height, x : x + width]
    area = int(np.count_nonzero(own))
    return _Candidate(candidate.x + x, candidate.y + y, width, height, list(candidate.labels), area, members=own)


def _plausible_digits(candidates: list[_Candidate], page: _Page) -> list[_Candidate]:
    """Drops specks, dots, dashes, lines, blobs and faint smudges."""
    kept = []
    for candidate in candidates:
        if candidate.height < _MIN_DIGIT_HEIGHT or candidate.width > _MAX_ASPECT * candidate.height:
            continue
        ink_area = candidate.area
        if _is_blob(candidate, ink_area, page.stroke_width) or _is_line(candidate, page):
            continue
        if candidate.height > _EDGE_ELONGATION * candidate.width and _is_page_edge(candidate, page):
            continue
        if candidate.height > _LINE_PIECE_ELONGATION * candidate.width and _on_long_line(candidate, page):
            continue
        candidate.mass = _ink_mass(candidate, page)
        if candidate.mass < _min_mean_ink(page) * ink_area:
            continue
        kept.append(candidate)
    if kept:
        # Far taller than the other candidates (or mostly empty), with paper on one side only: a
        # page edge that picked up the ends of grid or ruled lines, however wide that makes it.
        heights = sorted(candidate.height for candidate in kept)
        tall = _EDGE_HEIGHT_RATIO * heights[(len(heights) - 1) // 2] if len(kept) >= 2 else math.inf
        reach = max(2, round(_EDGE_REACH * page.stroke_width))
        kept = [
            candidate
            for candidate in kept
            if (candidate.height <= tall and candidate.area >= _EDGE_MAX_FILL * candidate.width * candidate.height)
            or not _is_page_edge(candidate, page, reach)
        ]
    return _fit_their_line(kept)


def _min_mean_ink(page: _Page) -> float:
    """Ink that on average barely passes the threshold is a smudge, a shadow edge or paper grain."""
    return max(_MIN_INK_OVER_NOISE * page.noise_floor, _MIN_INK_OVER_THRESHOLD * page.threshold)


def _on_surface(candidate: _Candidate, page: _Page) -> bool:
    """Writing sits on the paper: ink on a background darker than any paper is a table's texture."""
    centre = page.background[candidate.y + candidate.height // 2, candidate.x + candidate.width // 2]
    return int(centre) >= page.surface_floor


def _touches_frame(candidate: _Candidate, width: int, height: int) -> bool:
    return candidate.x == 0 or candidate.y == 0 or candidate.right == width or candidate.bottom == height


def _is_tight_crop(candidate: _Candidate, page: _Page) -> bool:
    """A digit may touch the frame only when it fills much of it: a picture cropped to the digit.

    Such a digit is tall in the frame, near its centre, and touches the frame with the ends of
    strokes only, where a page edge, a table or a shadow runs along it.
    """
    height, width = page.labels.shape
    fill = candidate.area / (candidate.width * candidate.height)
    centre_x = (candidate.x + candidate.right) / 2
    centre_y = (candidate.y + candidate.bottom) / 2
    if candidate.height < 0.5 * height or fill >= _TIGHT_CROP_MAX_FILL:
        return False
    if not (0.2 * width <= centre_x <= 0.8 * width and 0.2 * height <= centre_y <= 0.8 * height):
        return False
    members = _member_mask(candidate, page.labels)
    contact = 0
    if candidate.y == 0:
        contact += int(np.count_nonzero(members[0]))
    if candidate.bottom == height:
        contact += int(np.count_nonzero(members[-1]))
    if candidate.x == 0:
        contact += int(np.count_nonzero(members[:, 0]))
    if candidate.right == width:
        contact += int(np.count_nonzero(members[:, -1]))
    return contact <= _TIGHT_CROP_MAX_CONTACT * max(candidate.width, candidate.height)


def _member_mask(candidate: _Candidate, labels: np.ndarray) -> np.ndarray:
    if candidate.members is not None:
        return candidate.members
    region = labels[candidate.y : candidate.bottom, candidate.x : candidate.right]
    if len(candidate.labels) == 1:
        return region == candidate.labels[0]
    return np.isin(region, candidate.labels)


def _ink_mass(candidate: _Candidate, page: _Page) -> float:
    region = page.ink[candidate.y : candidate.bottom, candidate.x : candidate.right]
    return float(region[_member_mask(candidate, page.labels)].sum(dtype=np.float64))


def _is_blob(candidate: _Candidate, ink_area: int, stroke_width: float) -> bool:
    """A solid, roundish patch thicker than strokes; a 1 is just as solid but long and narrow."""
    fill = ink_area / (candidate.width * candidate.height)
    shorter, longer = sorted((candidate.width, candidate.height))
    return fill > _BLOB_FILL and shorter > 3 * stroke_width and longer < _BLOB_MAX_ELONGATION * shorter


def _is_line(candidate: _Candidate, page: _Page) -> bool:
    """A line drawn on the page (its edge, a margin, a stray rule) rather than a digit.

    Stroke length is ink area divided by the candidate's own stroke width: a thin line has about
    one box width of it, digits two or more (a 1 is long for its width; a 7, the least inked of
    the others, has about two and a half widths). Printed lines are also much finer than the
    strokes of the writing on the same page.
    """
    members = _member_mask(candidate, page.labels).view(np.uint8)
    stroke_width = _stroke_width(members)
    if stroke_width < _MIN_STROKE_RATIO * page.stroke_width:
        return True
    return candidate.area / stroke_width < _MIN_STROKE_PER_WIDTH * candidate.width


def _on_long_line(candidate: _Candidate, page: _Page) -> bool:
    """A thin piece of a long straight line too tilted (or too broken) to be erased as a rule.

    The piece's own axis is followed across the paper above and below it: a margin line goes on,
    a 1 ends where it was written. A short piece gives its tilt only roughly, so tilts near it are
    tried too.
    """
    members = _member_mask(candidate, page.labels).view(np.uint8)
    moments = cv2.moments(members, binaryImage=True)
    if moments["m00"] == 0 or moments["mu02"] == 0:
        return False
    slope = moments["mu11"] / moments["mu02"]  # dx / dy of the axis
    centre_x = candidate.x + moments["m10"] / moments["m00"]
    centre_y = candidate.y + moments["m01"] / moments["m00"]
    height, width = page.labels.shape
    rows = np.arange(height)
    tilts = np.asarray(_LINE_TILTS)[:, np.newaxis]
    columns = np.rint(centre_x + (slope + tilts) * (rows - centre_y)).astype(np.intp)  # a row of columns per tilt
    outside = (rows < candidate.y - _RULE_GAP) | (rows >= candidate.bottom + _RULE_GAP)
    valid = outside & (columns >= _LINE_SIDE) & (columns < width - _LINE_SIDE)
    columns = np.clip(columns, _LINE_SIDE, width - _LINE_SIDE - 1)
    valid &= page.background[rows, columns] >= page.surface_floor  # on the paper
    inked = page.mask
    # A line is thin: ink on the axis (give or take a pixel) with paper beside it, unlike texture.
    on_axis = inked[rows, columns - 1] | inked[rows, columns] | inked[rows, columns + 1]
    beside = inked[rows, columns - _LINE_SIDE] | inked[rows, columns + _LINE_SIDE]
    followed = np.count_nonzero(valid, axis=1)
    continued = np.count_nonzero(valid & on_axis & ~beside, axis=1)
    return bool(np.any((followed >= candidate.height) & (continued >= _LINE_CONTINUES * followed)))


def _is_page_edge(candidate: _Candidate, page: _Page, reach: int | None = None) -> bool:
    """A long thin stroke with paper on one side and something much darker on the other.

    A 1 has paper on both sides (the ink of its neighbours does not count); the edge of a sheet
    lying on a table has the table on one.
    """
    width = page.gray.shape[1]
    reach = max(2, candidate.width) if reach is None else reach
    rows = slice(candidate.y, candidate.bottom)
    left_columns = slice(max(0, candidate.x - 2 * reach), max(0, candidate.x - reach))
    right_columns = slice(min(width, candidate.right + reach), min(width, candidate.right + 2 * reach))
    # Near the frame, the side between the stroke and the frame (but for the stroke's blur) is used.
    if left_columns.start == left_columns.stop:
        left_columns = slice(0, max(0, candidate.x - 2))
    if right_columns.start == right_columns.stop:
        right_columns = slice(min(width, candidate.right + 2), width)
    left = _paper_brightness(page, rows, left_columns)
    right = _paper_brightness(page, rows, right_columns)
    if left is None or right is None:
        return True  # a long stroke squeezed against the frame, or between other strokes
    return abs(left - right) > _EDGE_SIDE_CONTRAST * max(left, right, 1.0)


def _paper_brightness(page: _Page, rows: slice, columns: slice) -> float | None:
    gray = page.gray[rows, columns]
    if gray.size == 0:
        return None
    paper = cv2.bitwise_not(page.raw_mask[rows, columns])
    if cv2.countNonZero(paper) == 0:
        return None
    return cv2.mean(gray, mask=paper)[0]


def _fit_their_line(candidates: list[_Candidate]) -> list[_Candidate]:
    """Drops thin lines much taller than the digits beside them, then dots and specks much shorter.

    The reference is the median height of the text line, so that one tall stray line (a margin
    or a page edge) cannot make every digit beside it look like a speck; a candidate with fewer
    than two others on its line is compared with the whole page. Tall thin lines go first, with
    the page's lower median as reference, so that a margin fragment beside a lone digit neither
    stays nor makes the digit look like a speck.
    """
    if len(candidates) >= 2 and any(_is_thin(candidate) for candidate in candidates):
        candidates = _drop_by_height(candidates, lower=True, specks=False)
    return _drop_by_height(candidates, lower=False, specks=True)


def _drop_by_height(candidates: list[_Candidate], lower: bool, specks: bool) -> list[_Candidate]:
    if not candidates:
        return candidates
    page_heights = sorted(candidate.height for candidate in candidates)
    page_typical = page_heights[(len(page_heights) - 1) // 2 if lower else len(page_heights) // 2]
    kept = []
    for candidate in candidates:
        heights = sorted(other.height for other in candidates if _share_line(candidate, other))
        typical = heights[len(heights) // 2] if len(heights) >= 3 else page_typical
        if specks and candidate.height < _MIN_LINE_HEIGHT_FRACTION * max(
            typical, heights[-1] if len(heights) < 3 else 0
        ):
            continue
        if _is_thin(candidate) and len(page_heights) >= 2 and candidate.height > _MAX_LINE_HEIGHT_RATIO * typical:
            continue
        kept.append(candidate)
    return kept


def _is_thin(candidate: _Candidate) -> bool:
    return candidate.height > _EDGE_ELONGATION * candidate.width


def _share_line(first: _Candidate, second: _Candidate) -> bool:
    overlap = min(first.bottom, second.bottom) - max(first.y, second.y)
    return overlap >= 0.5 * min(first.height, second.height)


def _most_prominent(candidates: list[_Candidate], page: _Page, options: PreprocessOptions) -> list[_Candidate]:
    """The `max_digits` with the most ink mass, or with `single` the one digit whose ink mass,
    weighted down by up to half with its distance from the image centre, is largest."""
    limit = 1 if options.single else options.max_digits
    if len(candidates) <= limit:
        return candidates
    if not options.single:
        return sorted(candidates, key=lambda candidate: candidate.mass, reverse=True)[:limit]
    height, width = page.ink.shape
    half_diagonal = 0.5 * math.hypot(width, height)

    def score(candidate: _Candidate) -> float:
        off_x = candidate.x + candidate.width / 2 - width / 2
        off_y = candidate.y + candidate.height / 2 - height / 2
        return candidate.mass * (1.0 - 0.5 * math.hypot(off_x, off_y) / half_diagonal)

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
    return _Candidate(0, int(centre - median_height / 2), 1, median_height, [], 0)


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
            members = _restore_rule_crossings(members, page, candidate)
    # The dilated member mask keeps the soft edges below the threshold but not the neighbours' ink.
    digit = cv2.bitwise_and(ink, ink, mask=cv2.dilate(members, None))
    level = _stroke_level(ink, members)
    floor = int(_CROP_FLOOR * page.threshold)
    if level > floor + 1:
        digit = cv2.convertScaleAbs(cv2.subtract(digit, floor), alpha=255.0 / (level - floor))
    mnist = to_mnist(digit)
    return _thicken_if_thin(mnist, _stroke_width(members) * constants.DIGIT_BOX / max(members.shape))


def _restore_rule_crossings(members: np.ndarray, page: _Page, candidate: _Candidate) -> np.ndarray:
    """Gives back the stroke pixels that erasing a rule took, where the stroke crosses the rule.

    Growing the digit only vertically reaches across a horizontal rule where a stroke continues on
    the other side, without taking in the rule's length between strokes. Where a stroke runs
    along a rule (the base of a 2 written on the line), the ink is darker than the rule alone:
    such pixels come back too.
    """
    rows, columns = slice(candidate.y, candidate.bottom), slice(candidate.x, candidate.right)
    raw = page.raw_mask[rows, columns].view(np.uint8) & 1
    across = cv2.dilate(members, _CROSSING_KERNEL)
    restored = cv2.bitwise_or(members, cv2.bitwise_and(across, raw))
    if page.rule_ink <= 255:
        darker = (page.ink[rows, columns] >= page.rule_ink).view(np.uint8)
        restored = cv2.bitwise_or(restored, cv2.bitwise_and(raw, darker))
    return restored


def _rule_ink(ink: np.ndarray, rules: np.ndarray) -> int:
    """An ink level that rule pixels rarely reach: their 90th percentile, plus a margin."""
    # Every other row is plenty for a percentile; bincount is faster than calcHist with a mask here.
    cumulative = np.cumsum(np.bincount(ink[::2][rules[::2].view(bool)], minlength=256))
    if cumulative[-1] == 0:
        return 256
    level = int(np.searchsorted(cumulative, _RULE_INK_PERCENTILE * cumulative[-1]))
    return level + max(_RULE_INK_MARGIN, int(_RULE_INK_SHARE * (255 - level)))


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
    ink = _relative_ink(gray, background, page.dark_on_light, page.surface_floor)
    if not page.dark_on_light:
        ink = cv2.GaussianBlur(ink, (0, 0), _CHALK_BLUR * scale)
    members = _member_mask(candidate, page.labels).view(np.uint8)
    if page.rules_erased:
        members = _restore_rule_crossings(members, page, candidate)
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
