"""Page orientation: turning an image by quarter turns, mapping boxes back, and choosing the best reading.

As OCR engines do, a page is read in the orientation whose reading is most confident. Upright
pages pay nothing more: the other turns are tried only when the upright reading is doubtful.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

ORIENTATIONS = ("auto", "0", "90", "180", "270")
"""`--orientation` choices: degrees clockwise that the page was turned, or auto."""

_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def check(orientation: str) -> str:
    """Validates an orientation choice.

    Raises:
        ValueError: Not one of ORIENTATIONS.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation {orientation!r} is not one of {', '.join(ORIENTATIONS)}")
    return orientation


def upright(image: np.ndarray, degrees: int) -> np.ndarray:
    """The image turned back upright, given that the page lies turned `degrees` clockwise."""
    return image if degrees == 0 else cv2.rotate(image, _ROTATE[degrees])


def box_in_original(box: tuple[int, int, int, int], degrees: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Maps a box found in the upright copy back into the image as given.

    Args:
        box: x, y, width, height in the upright copy.
        degrees: How the page lies in the original (clockwise), as given to `upright`.
        shape: Height and width of the original image.
    """
    x, y, width, height = box
    rows, columns = shape
    if degrees == 0:
        return box
    if degrees == 180:
        return (columns - x - width, rows - y - height, width, height)
    if degrees == 90:  # the copy was turned counter-clockwise: its column x was the original row.
        return (columns - y - height, x, height, width)
    return (y, rows - x - width, height, width)  # 270


def box_in_upright(box: tuple[int, int, int, int], degrees: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The inverse of `box_in_original`: a box of the image as given, in its upright copy."""
    if degrees in (0, 180):
        return box_in_original(box, degrees, shape)
    turned_shape = (shape[1], shape[0])
    return box_in_original(box, 360 - degrees, turned_shape)


def score(result) -> float:
    """How believable a reading is: mean log-confidence of its digits, with nothing found scoring lowest.

    The mean rather than the sum, so a turn that breaks a number into more, weaker pieces gains nothing.
    """
    if not result.items:
        return -math.inf
    return sum(math.log(max(item.confidence, 1e-6)) for item in result.items) / len(result.items)
