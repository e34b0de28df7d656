"""The "not a digit" class: seeded pieces that segmentation hands the model but that are no digit.

A photo's segmentation keeps pieces that are not digits: fragments of ruled lines and table borders,
specks and blots, page edges, strokes of letters, two digits left touching. Each is drawn here as ink, then normalised exactly as the runtime normalises a real
piece (`to_mnist`: fitted into 20x20 and centred by mass), so the model sees them as it will meet
them. Shapes a person would read as a digit are never drawn: no near-vertical lone stroke (a 1), no
ring (a 0), no top bar with a stem (a 7), and only letters that look like no digit. Half digits
are not drawn either: most halves, fitted into the frame, are a fair 1 or a bracket.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import preprocess

CANVAS = 64
# Letters whose shapes no reader takes for a digit (no O/o/D/Q for 0, I/l/i/J/T/t/j for 1, Z/z for 2,
# S/s for 5, b/G for 6, B for 8, g/q/a for 9, A/y/Y/h for 4, C/c/e/U for 0 or 6 in a hurry).
LETTERS = "EFHKLMNPRWXkmnrwx"
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
         cv2.FONT_HERSHEY_PLAIN)
KINDS = ("dash", "blob", "corner", "letter", "pair", "grain", "cross")


def generate(count: int, rng: np.random.Generator, digits: np.ndarray | None = None) -> np.ndarray:
    """Draws `count` non-digit pieces as uint8 (count, 28, 28) MNIST-style images, white on black.

    Args:
        count: How many.
        rng: Seeded generator; the same seed gives the same pieces.
        digits: uint8 (N, 28, 28) MNIST digits, for touching pairs (training part only, so no test
            digit leaks); without them pairs are not drawn.
    """
    kinds = KINDS if digits is not None and len(digits) else tuple(k for k in KINDS if k != "pair")
    chosen = rng.choice(len(kinds), count)
    pieces = np.zeros((count, 28, 28), np.uint8)
    for index, kind_index in enumerate(chosen):
        ink = _DRAW[kinds[kind_index]](rng, digits)
        if cv2.countNonZero(ink) == 0:
            ink = _dash(rng, digits)
        pieces[index] = np.round(preprocess.to_mnist(ink) * 255).astype(np.uint8)
    return pieces


def _thickness(rng) -> int:
    return int(rng.integers(1, 7))


def _dash(rng, _digits) -> np.ndarray:
    """A rule or dash fragment: far from vertical, so never a 1."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    angle = np.radians(rng.uniform(-35, 35))
    length = rng.uniform(20, 60)
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    centre = CANVAS / 2
    cv2.line(canvas, (int(centre - dx), int(centre - dy)), (int(centre + dx), int(centre + dy)), 255,
             _thickness(rng), cv2.LINE_AA)
    return canvas


def _blob(rng, _digits) -> np.ndarray:
    """A filled blot, smudge or speck (a ring would be a 0: these are solid)."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    points = rng.normal(0, 1, (int(rng.integers(3, 9)), 2))
    points -= points.mean(axis=0)
    # Squarish: a tall thin blot fitted into the frame is a marker 1.
    points /= np.maximum(np.abs(points).max(axis=0), 1e-3) * rng.uniform(0.7, 1.0, 2)
    points = (points * rng.uniform(4, 20) + CANVAS / 2).astype(np.int32)
    cv2.fillPoly(canvas, [cv2.convexHull(points)], int(rng.integers(120, 256)), cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 2.0))


def _corner(rng, _digits) -> np.ndarray:
    """A table or page corner, or a T junction; never the top-bar-and-stem of a 7."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    thickness = _thickness(rng)
    low, high, mid = 8, CANVAS - 8, CANVAS // 2
    shape = rng.integers(0, 4)
    if shape == 0:    # bottom-left corner: |_
        segments = [((low, low), (low, high)), ((low, high), (high, high))]
    elif shape == 1:  # bottom-right corner: _|
        segments = [((high, low), (high, high)), ((low, high), (high, high))]
    elif shape == 2:  # a T lying on its side: |-
        segments = [((low, low), (low, high)), ((low, mid), (high, mid))]
    else:             # an upside-down T
        segments = [((low, high), (high, high)), ((mid, low), (mid, high))]
    for start, end in segments:
        cv2.line(canvas, start, end, 255, thickness, cv2.LINE_AA)
    return canvas


def _letter(rng, _digits) -> np.ndarray:
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    letter = LETTERS[int(rng.integers(len(LETTERS)))]
    font = FONTS[int(rng.integers(len(FONTS)))]
    cv2.putText(canvas, letter, (12, 48), font, rng.uniform(1.2, 1.6), 255, int(rng.integers(1, 5)), cv2.LINE_AA)
    angle = rng.uniform(-12, 12)
    matrix = cv2.getRotationMatrix2D((CANVAS / 2, CANVAS / 2), angle, 1.0)
    matrix[0, 1] += rng.uniform(-0.2, 0.2)  # slant, as handwriting leans
    return cv2.warpAffine(canvas, matrix, (CANVAS, CANVAS))


def _pair(rng, digits) -> np.ndarray:
    """Two digits left touching or overlapping: a cut segmentation should have made."""
    first, second = (digits[int(rng.integers(len(digits)))] for _ in range(2))
    overlap = int(rng.integers(4, 12))
    canvas = np.zeros((28, 56 - overlap), np.uint8)
    canvas[:, :28] = first
    np.maximum(canvas[:, 28 - overlap:], second, out=canvas[:, 28 - overlap:])
    return canvas


def _grain(rng, _digits) -> np.ndarray:
    """Paper grain or show-through: scattered faint dots with no stroke."""
    canvas = (rng.random((CANVAS // 4, CANVAS // 4)) < rng.uniform(0.05, 0.3)).astype(np.uint8) * 255
    canvas = cv2.resize(canvas, (CANVAS, CANVAS), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(canvas, (0, 0), 1.0)


def _cross(rng, _digits) -> np.ndarray:
    """A grid crossing or a plus sign."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    thickness = _thickness(rng)
    reach = int(rng.uniform(16, 28))
    centre = CANVAS // 2
    cv2.line(canvas, (centre - reach, centre), (centre + reach, centre), 255, thickness, cv2.LINE_AA)
    cv2.line(canvas, (centre, centre - reach), (centre, centre + reach), 255, thickness, cv2.LINE_AA)
    return canvas


_DRAW = {"dash": _dash, "blob": _blob, "corner": _corner, "letter": _letter, "pair": _pair,
         "grain": _grain, "cross": _cross}
