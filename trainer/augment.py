"""Cheap OpenCV augmentation aimed at real handwriting: geometry, stroke thickness, blur and continental styles."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

SIZE = 28


@dataclasses.dataclass(frozen=True)
class AugmentOptions:
    """Ranges of the random distortions; each image draws its own.

    Attributes:
        rotation_degrees: Maximum absolute rotation.
        shift_pixels: Maximum absolute shift along each axis.
        scale_range: Smallest and largest scale factor.
        shear: Maximum absolute horizontal shear (slanted handwriting).
        thickness_probability: Chance of thickening or thinning the strokes (half each).
        blur_probability: Chance of a slight Gaussian blur (out-of-focus webcams).
        style_probability: Chance that a 7 gets a crossbar or a 1 a flag, as continental writers draw
            them (MNIST has few of either: crossed 7s were read as 4 or 1, flagged 1s as 7).
        marker_probability: Chance of a heavy marker stroke (dilated twice), which MNIST lacks.
    """

    rotation_degrees: float = 10.0
    shift_pixels: float = 2.0
    scale_range: tuple[float, float] = (0.88, 1.1)
    shear: float = 0.12
    thickness_probability: float = 0.25
    blur_probability: float = 0.1
    style_probability: float = 0.3
    marker_probability: float = 0.05


_THICKEN = np.ones((2, 2), np.uint8)
# Thinning along one axis only: a 2x2 erosion wipes out most of a thin MNIST stroke.
_THIN = (np.ones((1, 2), np.uint8), np.ones((2, 1), np.uint8))

LEAD_IN_LENGTH = (0.4, 0.85)
"""Length of a 1's lead-in, as a share of the digit's height."""
LEAD_IN_ANGLE = (35.0, 65.0)
"""Its angle below the horizontal, in degrees."""


def augment_batch(images: np.ndarray, rng: np.random.Generator, options: AugmentOptions,
                  labels: np.ndarray | None = None) -> np.ndarray:
    """Returns randomly distorted copies of uint8 (N, 28, 28) white-on-black images.

    With `labels`, some 7s are crossed and some 1s flagged first (see `AugmentOptions.style_probability`).
    """
    if labels is not None and options.style_probability > 0:
        images = add_styles(images, labels, rng, options.style_probability)
    count = len(images)
    angles = np.radians(rng.uniform(-options.rotation_degrees, options.rotation_degrees, count))
    scales = rng.uniform(*options.scale_range, count)
    shears = rng.uniform(-options.shear, options.shear, count)
    shifts = rng.uniform(-options.shift_pixels, options.shift_pixels, (count, 2))
    thickness = rng.random(count)
    blur = rng.random(count) < options.blur_probability
    output = np.empty_like(images)
    for index in range(count):
        matrix = _affine(angles[index], scales[index], shears[index], shifts[index])
        image = cv2.warpAffine(images[index], matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if thickness[index] > 1.0 - options.marker_probability:
            image = cv2.dilate(image, _THICKEN, iterations=2)
        elif thickness[index] < options.thickness_probability / 2:
            image = cv2.dilate(image, _THICKEN)
        elif thickness[index] < options.thickness_probability:
            image = cv2.erode(image, _THIN[index % 2])
        if blur[index]:
            image = cv2.GaussianBlur(image, (3, 3), 0.6)
        output[index] = image
    return output


def _affine(angle: float, scale: float, shear: float, shift: np.ndarray) -> np.ndarray:
    """2x3 matrix: shear and rotate-scale about the image centre, then shift."""
    cosine, sine = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cosine, -sine], [sine, cosine]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    centre = np.array([SIZE / 2 - 0.5, SIZE / 2 - 0.5])
    offset = centre - linear @ centre + shift
    return np.hstack([linear, offset[:, None]]).astype(np.float32)


def add_styles(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Crosses some 7s through the middle of their stem and gives some 1s a flag at the top."""
    output = images.copy()
    chosen = rng.random(len(images)) < probability
    for index in np.flatnonzero(chosen & ((labels == 7) | (labels == 1))):
        image = output[index]
        inked = _inked_rows(image)
        if inked is None:
            continue
        top, height = inked
        thickness = int(rng.integers(1, 3))
        if labels[index] == 7:
            row = top + int(height * rng.uniform(0.45, 0.6))
            columns = np.flatnonzero(image[row] > _INK)
            if len(columns) == 0:
                continue
            centre, reach = float(columns.mean()), height * rng.uniform(0.18, 0.3)
            tilt = rng.uniform(-1.5, 1.5)
            cv2.line(image, (round(centre - reach), round(row + tilt)), (round(centre + reach), round(row - tilt)),
                     255, thickness, cv2.LINE_AA)
        else:
            _stroke_down_left(image, top, height * rng.uniform(0.2, 0.4), rng.uniform(20, 50), thickness)
    return output


def add_lead_ins(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Gives some 1s a long lead-in stroke, from the top of the stem down to the left.

    Many writers start a 1 near the baseline and run up into the stem, so the lead-in is half to most
    of the digit's height, not the short flag of `add_styles`. MNIST has few such 1s, and the line
    model read them as `11` or `4` in logbook cells (`1100` as `11100`).
    """
    output = images.copy()
    for index in np.flatnonzero((labels == 1) & (rng.random(len(images)) < probability)):
        image = output[index]
        inked = _inked_rows(image)
        if inked is None:
            continue
        top, height = inked
        # As thick as the stem: half the inked width of the digit's middle row.
        thickness = int(np.clip(np.count_nonzero(image[top + height // 2] > _INK) // 2, 1, 3))
        _stroke_down_left(image, top, height * rng.uniform(*LEAD_IN_LENGTH), rng.uniform(*LEAD_IN_ANGLE), thickness)
    return output


_INK = 96
"""A tile's pixels above this level are ink, for finding where to add a stroke."""


def _inked_rows(image: np.ndarray) -> tuple[int, int] | None:
    """The first inked row of a digit tile and the ink's height; None when under 8 rows hold ink."""
    rows = np.flatnonzero(image.max(axis=1) > _INK)
    if len(rows) < 8:
        return None
    return int(rows[0]), int(rows[-1] - rows[0] + 1)


def _stroke_down_left(image: np.ndarray, top: int, length: float, degrees: float, thickness: int) -> None:
    """Draws, in place, a stroke from the middle of row `top`'s ink down to the left, `degrees` below the
    horizontal (a 1's flag or lead-in)."""
    columns = np.flatnonzero(image[top] > _INK)
    x = int(columns.mean()) if len(columns) else image.shape[1] // 2
    angle = np.radians(degrees)
    end = (round(x - length * np.cos(angle)), round(top + length * np.sin(angle)))
    cv2.line(image, (x, top), end, 255, thickness, cv2.LINE_AA)
