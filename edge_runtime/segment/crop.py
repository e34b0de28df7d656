"""Crop: each digit's own ink turned into a 28x28 MNIST-style image, and the fast path for small tiles.

Each digit's own anti-aliased ink is contrast-stretched, fitted into 20x20 and centred by its
centre of mass in 28x28, as MNIST was made. Small digits are cut from the input at full resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import constants
from edge_runtime.segment.components import Candidate, member_mask
from edge_runtime.segment.light import Light, as_gray, luma, relative_ink
from edge_runtime.segment.mask import InkMask, stroke_width
from edge_runtime.segment.result import DigitCrop
from edge_runtime.segment.tuning import Tuning

__all__ = ["digit_image", "is_tile", "source_box", "source_boxes", "tile_digits", "to_mnist"]

_MNIST_CENTRE = constants.IMAGE_SIZE / 2  # MNIST put the centre of mass at pixel index 14.0
_THICKEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))  # symmetric: keeps the centre of mass


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


# --- the tile fast path ---------------------------------------------------------------------


def is_tile(image: np.ndarray, tuning: Tuning) -> bool:
    """Small and roughly square: one digit, as MNIST's tiles."""
    height, width = image.shape[:2]
    longer, shorter = max(height, width), min(height, width)
    return longer <= tuning.tile_max_side and longer <= tuning.tile_max_aspect * shorter


def is_mnist_tile(image: np.ndarray, tuning: Tuning) -> bool:
    """A tile as MNIST's are: gray, with a clean black border (a scanned or drawn digit, not a photo)."""
    return image.ndim == 2 and is_tile(image, tuning) and _border_mean(image) < tuning.tile_clean_border


def tile_digits(tile: np.ndarray, polarity: str, tuning: Tuning) -> tuple[list[DigitCrop], bool]:
    """One digit from a small gray tile; MNIST tiles come back unchanged (as floats).

    Returns:
        The digit (none for a blank tile), and whether the tile was taken for dark ink on light.
    """
    border = _border_mean(tile)
    dark_on_light = _tile_is_dark_on_light(border, polarity)
    if dark_on_light:
        tile = cv2.bitwise_not(tile)
        border = 255.0 - border
    # MNIST borders are black but for a few ink pixels: only a real paper background is removed.
    background = int(border + 0.5) if border >= tuning.tile_clean_border else 0
    peak = int(cv2.minMaxLoc(tile)[1])
    if peak - background < tuning.tile_min_contrast:
        return [], dark_on_light
    if background > 0:
        tile = cv2.subtract(tile, background)
        peak -= background
    ink_threshold = max(1, int(tuning.tile_ink_level * peak))
    box = cv2.boundingRect(cv2.threshold(tile, ink_threshold, 255, cv2.THRESH_BINARY)[1])
    if box[2] == 0:
        return [], dark_on_light
    return [DigitCrop(box=box, image=_tile_to_mnist(tile, box, peak, tuning), line=0)], dark_on_light


def _border_mean(tile: np.ndarray) -> float:
    height, width = tile.shape
    inner = cv2.sumElems(tile[1:-1, 1:-1])[0] if height > 2 and width > 2 else 0.0
    return (cv2.sumElems(tile)[0] - inner) / max(1, tile.size - max(0, height - 2) * max(0, width - 2))


def _tile_is_dark_on_light(border: float, polarity: str) -> bool:
    if polarity == constants.INK_AUTO:
        return border > 127.5
    return polarity == constants.INK_DARK_ON_LIGHT


def _tile_to_mnist(tile: np.ndarray, box: tuple[int, int, int, int], peak: int, tuning: Tuning) -> np.ndarray:
    """Keeps an MNIST-sized, centred tile as it is; otherwise shifts or refits it."""
    x, y, width, height = box
    fits_box = width <= constants.DIGIT_BOX and height <= constants.DIGIT_BOX
    size = constants.IMAGE_SIZE
    scale = 1.0 / 255.0 if peak >= tuning.tile_full_ink else 1.0 / peak  # stretch faint tiles to full ink
    if tile.shape == (size, size) and fits_box:
        moments = cv2.moments(tile)
        shift_x = _MNIST_CENTRE - moments["m10"] / moments["m00"]
        shift_y = _MNIST_CENTRE - moments["m01"] / moments["m00"]
        result = tile.astype(np.float32)
        result *= np.float32(scale)
        if scale != 1.0 / 255.0:
            np.minimum(result, 1.0, out=result)
        if abs(shift_x) <= tuning.mnist_shift_tolerance and abs(shift_y) <= tuning.mnist_shift_tolerance:
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


# --- cutting out each digit of a segmented page ---------------------------------------------


def source_box(box: tuple[int, int, int, int], scale: int, source_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A working-resolution box in the input's coordinates, clipped to the input."""
    source_height, source_width = source_shape[:2]
    x, y, width, height = box
    right = min((x + width) * scale, source_width)
    bottom = min((y + height) * scale, source_height)
    return (x * scale, y * scale, right - x * scale, bottom - y * scale)


def source_boxes(boxes: np.ndarray, scale: int, source_shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """`source_box` for an (N, 4) array of boxes at once."""
    source_height, source_width = source_shape[:2]
    scaled = boxes.astype(np.int64) * scale
    scaled[:, 2] = np.minimum(scaled[:, 0] + scaled[:, 2], source_width) - scaled[:, 0]
    scaled[:, 3] = np.minimum(scaled[:, 1] + scaled[:, 3], source_height) - scaled[:, 1]
    return [tuple(box) for box in scaled.tolist()]


def digit_image(
    candidate: Candidate, source: np.ndarray, light: Light, ink_mask: InkMask, labels: np.ndarray, tuning: Tuning
) -> np.ndarray:
    """The digit's own ink, anti-aliased as MNIST's, scaled so that strokes reach full brightness."""
    if light.scale > 1 and candidate.height < tuning.crop_from_source_height:
        ink, members = _source_ink(candidate, source, light, ink_mask, labels, tuning)
    else:
        ink = light.ink[candidate.y : candidate.bottom, candidate.x : candidate.right]
        members = member_mask(candidate, labels).view(np.uint8)
        if ink_mask.rules_erased:
            members = _restore_rule_crossings(members, light, ink_mask, candidate, tuning)
    # The dilated member mask keeps the soft edges below the threshold but not the neighbours' ink.
    digit = cv2.bitwise_and(ink, ink, mask=cv2.dilate(members, None))
    level = _stroke_level(ink, members)
    floor = int(tuning.crop_floor * ink_mask.threshold)
    if level > floor + 1:
        digit = cv2.convertScaleAbs(cv2.subtract(digit, floor), alpha=255.0 / (level - floor))
    mnist = to_mnist(digit)
    return _thicken_if_thin(mnist, stroke_width(members) * constants.DIGIT_BOX / max(members.shape), tuning)


def _restore_rule_crossings(
    members: np.ndarray, light: Light, ink_mask: InkMask, candidate: Candidate, tuning: Tuning
) -> np.ndarray:
    """Gives back the stroke pixels that erasing a rule took, where the stroke crosses the rule.

    Growing the digit only vertically reaches across a horizontal rule where a stroke continues on
    the other side, without taking in the rule's length between strokes. Where a stroke runs
    along a rule (the base of a 2 written on the line), the ink is darker than the rule alone:
    such pixels come back too.
    """
    rows, columns = slice(candidate.y, candidate.bottom), slice(candidate.x, candidate.right)
    raw = ink_mask.raw[rows, columns].view(np.uint8) & 1
    across = cv2.dilate(members, np.ones((2 * tuning.rule_gap + 3, 1), np.uint8))
    restored = cv2.bitwise_or(members, cv2.bitwise_and(across, raw))
    if ink_mask.rule_ink <= 255:
        darker = (light.ink[rows, columns] >= ink_mask.rule_ink).view(np.uint8)
        restored = cv2.bitwise_or(restored, cv2.bitwise_and(raw, darker))
    return restored


def _stroke_level(ink: np.ndarray, members: np.ndarray) -> float:
    """About the 70th percentile of the digit's ink: the core of its strokes."""
    mean, deviation = cv2.meanStdDev(ink, mask=members)
    return float(mean[0, 0] + 0.5 * deviation[0, 0])


def _source_ink(
    candidate: Candidate, source: np.ndarray, light: Light, ink_mask: InkMask, labels: np.ndarray, tuning: Tuning
) -> tuple[np.ndarray, np.ndarray]:
    """Ink of a small digit at the input's full resolution, with the working background upsampled."""
    scale = light.scale
    x, y, right, bottom = candidate.x * scale, candidate.y * scale, candidate.right * scale, candidate.bottom * scale
    region_of_source = source[y:bottom, x:right]
    gray = as_gray(region_of_source) if light.dark_on_light else luma(region_of_source)
    size = (gray.shape[1], gray.shape[0])
    region = light.background[candidate.y : candidate.bottom, candidate.x : candidate.right]
    background = cv2.resize(region, size, interpolation=cv2.INTER_LINEAR)
    ink = relative_ink(gray, background, light.dark_on_light, light.surface_floor, tuning)
    if not light.dark_on_light:
        ink = cv2.GaussianBlur(ink, (0, 0), tuning.chalk_blur * scale)
    members = member_mask(candidate, labels).view(np.uint8)
    if ink_mask.rules_erased:
        members = _restore_rule_crossings(members, light, ink_mask, candidate, tuning)
    members = cv2.resize(members, size, interpolation=cv2.INTER_NEAREST)
    near = cv2.dilate(members, None, iterations=scale)
    return ink, cv2.bitwise_and(near, (ink > ink_mask.threshold).view(np.uint8))


def _thicken_if_thin(mnist: np.ndarray, stroke_width_in_box: float, tuning: Tuning) -> np.ndarray:
    """A fine pen on a large digit leaves hair-thin strokes once fitted into 20 pixels; MNIST has none.

    Dilating the 28x28 result with a symmetric cross keeps the centre of mass where it was.
    """
    if stroke_width_in_box >= tuning.stroke_thin:
        return mnist
    thick = cv2.dilate(mnist, _THICKEN_KERNEL)
    peak = float(thick.max())
    if peak > 0:
        thick *= np.float32(min(1.0 / peak, tuning.max_thicken_gain))
        np.minimum(thick, 1.0, out=thick)
    return thick
