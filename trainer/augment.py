"""Cheap OpenCV augmentation aimed at real handwriting: rotation, shift, scale, shear, stroke thickness, blur."""

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
    """

    rotation_degrees: float = 10.0
    shift_pixels: float = 2.0
    scale_range: tuple[float, float] = (0.88, 1.1)
    shear: float = 0.12
    thickness_probability: float = 0.25
    blur_probability: float = 0.1


_THICKEN = np.ones((2, 2), np.uint8)
# Thinning along one axis only: a 2x2 erosion wipes out most of a thin MNIST stroke.
_THIN = (np.ones((1, 2), np.uint8), np.ones((2, 1), np.uint8))


def augment_batch(images: np.ndarray, rng: np.random.Generator, options: AugmentOptions) -> np.ndarray:
    """Returns randomly distorted copies of uint8 (N, 28, 28) white-on-black images."""
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
        if thickness[index] < options.thickness_probability / 2:
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
