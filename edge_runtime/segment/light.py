"""Light: the working copy, its polarity, the paper's brightness and each pixel's ink contrast against it.

Gray is the darkest colour channel (blue and red ink stay dark); polarity comes from how bright the
frame and its centre are; the paper (or board) brightness is estimated by a closing (opening) on a
copy reduced four more times, and ink is the contrast relative to it, which cancels shadows and
uneven light.
"""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

from edge_runtime import constants
from edge_runtime.segment.tuning import Tuning

__all__ = ["Light", "as_gray", "centred_axis", "channel_minimum", "fit_plane", "halve_until", "luma", "measure_light",
           "page_polarity", "plane_design", "relative_ink"]


@dataclasses.dataclass(frozen=True, eq=False)
class Light:
    """The working copy's light; all arrays at working resolution.

    Attributes:
        scale: Input pixels per working pixel (a power of two).
        gray: Working gray, before normalising the light.
        ink: uint8 ink contrast, 0 = paper, 255 = full-contrast ink.
        background: The paper's (or board's) brightness.
        dark_on_light: Pen on paper (True) or chalk on a board (False).
        surface_floor: Backgrounds darker than this are not paper (dark-on-light only; 0 otherwise).
    """

    scale: int
    gray: np.ndarray
    ink: np.ndarray
    background: np.ndarray
    dark_on_light: bool
    surface_floor: int

    @property
    def polarity(self) -> str:
        return constants.INK_DARK_ON_LIGHT if self.dark_on_light else constants.INK_LIGHT_ON_DARK

    @functools.cached_property
    def _plane(self) -> np.ndarray:
        """A plane fitted to the paper's brightness (see `fit_plane`) on a `_PLANE_GRID`-cell copy;
        fitted once a page, when first asked for."""
        small = cv2.resize(self.background, (_PLANE_GRID, _PLANE_GRID), interpolation=cv2.INTER_AREA)
        return fit_plane(plane_design(_PLANE_GRID, _PLANE_GRID), small.astype(np.float64).ravel())

    def paper_on_plane(self, x: float, y: float) -> float:
        """The page's overall slope of light (a plane through the paper's brightness) at working pixel (x, y)."""
        height, width = self.background.shape
        return float(self._plane @ [1.0, x / width - 0.5, y / height - 0.5])


_PLANE_GRID = 16
"""The background estimate is reduced to this many cells a side before a plane is fitted to it."""


@functools.lru_cache(maxsize=64)
def plane_design(rows: int, columns: int) -> np.ndarray:
    """(3, rows * columns): 1, x and y of every pixel of a rows x columns array, row by row; x and y run
    from -0.5 to 0.5 across it (pixel centres), so a plane's slopes are its change from side to side."""
    across, down = np.tile(centred_axis(columns), rows), np.repeat(centred_axis(rows), columns)
    return np.stack([np.ones(rows * columns), across, down])


def centred_axis(size: int) -> np.ndarray:
    """Pixel centres of `size` pixels along one axis, from -0.5 to 0.5 across it (a plane's x or y)."""
    return (np.arange(size) + 0.5) / size - 0.5


def fit_plane(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Offset, slope across and slope down of the plane nearest `values` (least squares) at the points of
    `design` (columns of `plane_design`)."""
    try:
        return np.linalg.solve(design @ design.T, design @ values)
    except np.linalg.LinAlgError:  # the points all lie in one row or column
        return np.linalg.lstsq(design.T, values, rcond=None)[0]


def measure_light(image: np.ndarray, polarity: str, work_side: int, tuning: Tuning) -> Light:
    """The working copy, its polarity, background and ink map.

    Args:
        image: uint8 gray or BGR, as checked by `segment_image`.
        polarity: "auto", "dark-on-light" or "light-on-dark".
        work_side: The copy is halved until its longer side is below twice this.
        tuning: Thresholds and sizes.
    """
    work, scale, gray = _working_gray(image, work_side, tuning)
    dark_on_light, small_background = _polarity_and_background(gray, polarity, tuning)
    if not dark_on_light and work.ndim == 3:
        # Chalk can be coloured: luma sees the yellow chalk that the darkest channel loses.
        gray = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
        _, small_background = _polarity_and_background(gray, constants.INK_LIGHT_ON_DARK, tuning)
    background = _upsample_background(small_background, gray.shape)
    surface_floor = _surface_floor(small_background, dark_on_light, tuning)
    ink = relative_ink(gray, background, dark_on_light, surface_floor, tuning)
    if not dark_on_light:
        # Chalk leaves grainy strokes that would threshold into dust; a light blur makes them solid.
        ink = cv2.GaussianBlur(ink, (0, 0), tuning.chalk_blur)
    return Light(scale, gray, ink, background, dark_on_light, surface_floor)


def page_polarity(image: np.ndarray, polarity: str, work_side: int, tuning: Tuning) -> str:
    """The page's polarity as `measure_light` decides it ("auto" resolved), for passes that work on a part.

    A part of the page cannot decide it alone: in a small cell whose light falls off across it, the
    shaded half is darker than the mean and the paper's median drops below it, which reads as chalk.
    """
    if polarity != constants.INK_AUTO:
        return polarity
    _, _, gray = _working_gray(image, work_side, tuning)
    return constants.INK_DARK_ON_LIGHT if _ink_is_dark(_small(gray, tuning), tuning) else constants.INK_LIGHT_ON_DARK


def _working_gray(image: np.ndarray, work_side: int, tuning: Tuning) -> tuple[np.ndarray, int, np.ndarray]:
    """The working copy (see `halve_until`), its scale, and its gray: the darkest channel of a BGR copy."""
    work, scale = halve_until(image, work_side, tuning.min_digit_height)
    return work, scale, channel_minimum(work) if work.ndim == 3 else work


def _small(gray: np.ndarray, tuning: Tuning) -> np.ndarray:
    """The copy, reduced about four times more, on which polarity and background are decided."""
    return halve_until(gray, tuning.small_side, tuning.min_digit_height)[0]


def _surface_floor(small_background: np.ndarray, dark_on_light: bool, tuning: Tuning) -> int:
    """Darkest background still taken for lit or shadowed paper rather than a table or a frame."""
    if not dark_on_light:
        return 0
    cumulative = np.cumsum(cv2.calcHist([small_background], [0], None, [256], [0, 256]).ravel())
    paper = int(np.searchsorted(cumulative, tuning.paper_percentile * cumulative[-1]))
    return max(1, int(tuning.shadow_depth * paper))


def relative_ink(
    gray: np.ndarray, background: np.ndarray, dark_on_light: bool, surface_floor: int, tuning: Tuning
) -> np.ndarray:
    """Ink contrast 0..255 relative to the local paper (or board), so that shadows do not matter.

    Dividing by the background would make every grain of a dark table strong ink: the divisor
    never drops below `surface_floor`, the darkest brightness still taken for paper.
    """
    if dark_on_light:
        divisor = cv2.max(background, surface_floor)
        return cv2.divide(cv2.subtract(background, gray), divisor, scale=255)
    # Chalk never gets near white: full contrast is a fixed step above the board.
    headroom = cv2.min(cv2.max(cv2.bitwise_not(background), 1), tuning.chalk_full_contrast)
    return cv2.divide(cv2.subtract(gray, background), headroom, scale=255)


def halve_until(image: np.ndarray, work_side: int, min_side: int) -> tuple[np.ndarray, int]:
    """Halves with area averaging (OpenCV's fast path) until the longer side is below 2 * work_side,
    but never below 2 * `min_side` on the shorter side; returns the copy and the scale."""
    scale = 1
    while max(image.shape[:2]) >= 2 * work_side and min(image.shape[:2]) >= 2 * min_side:
        height, width = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[: 2 * height, : 2 * width], (width, height), interpolation=cv2.INTER_AREA)
        scale *= 2
    return image, scale


def channel_minimum(bgr: np.ndarray) -> np.ndarray:
    """Darkest channel: blue and red ink stay as dark as black ink, unlike a luma conversion."""
    blue, green, red = cv2.split(bgr)
    return cv2.min(cv2.min(blue, green), red)


def as_gray(image: np.ndarray) -> np.ndarray:
    """Gray as is; BGR as its darkest channel."""
    if image.ndim == 2:
        return image
    return channel_minimum(np.ascontiguousarray(image))


def luma(image: np.ndarray) -> np.ndarray:
    """Gray as is; BGR as luma (what chalk needs)."""
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)


def _polarity_and_background(gray: np.ndarray, polarity: str, tuning: Tuning) -> tuple[bool, np.ndarray]:
    """Decides the polarity and estimates the paper (closing) or board (opening) brightness.

    Everything runs on a copy reduced about four times. The kernel is a fifth of its shorter side,
    so strokes up to that width vanish into the background estimate while shadows and page edges,
    which are wider, stay in it.
    """
    small = _small(gray, tuning)
    side = max(3, int(tuning.background_kernel_fraction * min(small.shape)) | 1)
    if polarity == constants.INK_AUTO:
        dark_on_light = _ink_is_dark(small, tuning)
    else:
        dark_on_light = polarity == constants.INK_DARK_ON_LIGHT
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    operation = cv2.MORPH_CLOSE if dark_on_light else cv2.MORPH_OPEN
    return dark_on_light, cv2.morphologyEx(small, operation, kernel)


def _ink_is_dark(small: np.ndarray, tuning: Tuning) -> bool:
    """Paper is bright and boards are dark; when the frame and its centre disagree, shape decides.

    They disagree for a sheet of paper on a dark table (bright centre, dark frame) and for a
    close-up of chalk strokes (the same). What the centre shows is the writing surface if it is a
    solid region, which survives an erosion by a quarter of the image, and ink strokes otherwise.
    """
    height, width = small.shape
    centre = small[height // 4 : height - height // 4, width // 4 : width - width // 4]
    frame_is_light = _median(small) >= tuning.light_surface
    centre_is_light = _median(centre) >= tuning.light_surface
    if frame_is_light == centre_is_light:
        return frame_is_light or _dark_tail_dominates(small, tuning)
    mode = cv2.THRESH_BINARY if centre_is_light else cv2.THRESH_BINARY_INV
    centre_phase = cv2.threshold(small, 0, 255, mode | cv2.THRESH_OTSU)[1]
    side = max(3, min(height, width) // 4)
    solid = cv2.erode(centre_phase, np.ones((side, side), np.uint8))
    centre_is_surface = cv2.countNonZero(solid[height // 4 : height - height // 4, width // 4 : width - width // 4]) > 0
    return centre_is_light == centre_is_surface


def _dark_tail_dominates(small: np.ndarray, tuning: Tuning) -> bool:
    """Whether a dim image is paper in poor light rather than a board: its rare pixels (the writing)
    lie far below its typical level, not above it, as black ink on grey paper does and chalk does not."""
    cumulative = _cumulative_histogram(small)
    low, median, high = (_level(cumulative, share) for share in (tuning.tail_share, 0.5, 1 - tuning.tail_share))
    return median - low > tuning.dark_tail_ratio * (high - median)


def _median(image: np.ndarray) -> int:
    return _level(_cumulative_histogram(image), 0.5)


def _cumulative_histogram(image: np.ndarray) -> np.ndarray:
    return np.cumsum(cv2.calcHist([image], [0], None, [256], [0, 256]).ravel())


def _level(cumulative: np.ndarray, share: float) -> int:
    """The gray level below which `share` of the pixels lie."""
    return int(np.searchsorted(cumulative, share * cumulative[-1]))


def _upsample_background(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    smooth = cv2.blur(small, (3, 3))
    return cv2.resize(smooth, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
