"""Separators inside a number: the slashes of a date or an ID, which the digit model reads as 1s.

A slash is a straight stroke like a 1, and on its own 28x28 crop the two cannot be told apart. The line
tells them apart: a slash leans further than most handwritten 1s, and reaches above or below the
digits around it. Only a piece between two digits of its line can be one; it is then no digit,
and the number's group ends there (`12/05/2026` reads `12 05 2026`).
"""

from __future__ import annotations

import statistics

import cv2
import numpy as np

REASON = "a separator (/)"

SLANT = 0.3
"""A "1" leaning right by at least this (dx / dy of its axis) ..."""

HEIGHT = 1.15
"""... this many times as tall as the median of the other digits of its line, between two of them, ..."""

REACH = 0.1
"""... and reaching this share of their height above their tops or below their bottoms is a slash.
Of the 74 1s in the real photos' numbers, two lean 0.4-0.5 and the rest under 0.25, and none of them
is both 1.12 times as tall as its neighbours and leaning 0.3. Leaning alone does not tell: MNIST's
1s lean as far as slashes do; nor does height alone: a 1 in a form's box stands 1.12 times as tall as
the round 0s beside it."""


def lean(image: np.ndarray) -> float:
    """dx / dy of a crop's ink axis, positive when its top leans right (as in "/")."""
    moments = cv2.moments((image > 0.3).astype(np.uint8), binaryImage=True)
    return -moments["mu11"] / moments["mu02"] if moments["mu02"] else 0.0


def slashes(boxes: list[tuple[int, int, int, int]], images: list[np.ndarray], labels: list[str],
            lines: list[int]) -> list[int]:
    """Indices of the pieces read as "1" that are slashes (see the module).

    Args:
        boxes: Each digit's box, x, y, width, height, upright.
        images: Each digit's 28x28 crop, white on black.
        labels: What the digit model read.
        lines: Each digit's text line.
    """
    found = []
    for index, (box, image, label, line) in enumerate(zip(boxes, images, labels, lines)):
        if label != "1":
            continue
        others = [other for position, other in enumerate(boxes) if lines[position] == line and position != index]
        centre = box[0] + box[2] / 2
        if not (any(other[0] + other[2] / 2 < centre for other in others)
                and any(other[0] + other[2] / 2 > centre for other in others)):
            continue  # a slash stands between two digits
        height = statistics.median(other[3] for other in others)
        top = statistics.median(other[1] for other in others)
        bottom = statistics.median(other[1] + other[3] for other in others)
        reaches = max(top - box[1], box[1] + box[3] - bottom) >= REACH * height
        if box[3] >= HEIGHT * height and reaches and lean(image) >= SLANT:
            found.append(index)
    return found


def breaks(dropped) -> list[tuple[int, int, int, int]]:
    """The boxes of the separators among a reading's dropped pieces ((box, reason) pairs)."""
    return [box for box, reason in dropped if reason == REASON]


def on_separator(box: tuple[int, int, int, int], separators: list[tuple[int, int, int, int]]) -> bool:
    """Whether a digit's box (from the line model, as tall as its line) is centred on a separator."""
    centre = box[0] + box[2] / 2
    return any(other[0] <= centre <= other[0] + other[2]
               and min(box[1] + box[3], other[1] + other[3]) - max(box[1], other[1]) >= 0.5 * other[3]
               for other in separators)
