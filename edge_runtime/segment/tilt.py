"""Tilt: a page photographed a few degrees askew, measured from its long ruled lines and turned level.

Rule removal (`mask`) finds straight runs that lean by a degree or two at most. A ruled or squared
page photographed at 5-20 degrees keeps its rules, which then touch the digits, run into the
frame and take the digits with them. Such rules are long, thin and straight: their slope is the
page's tilt, and the page is segmented again turned level, its boxes mapped back to the photo.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge_runtime.segment.components import Candidate
from edge_runtime.segment.tuning import Tuning

Box = tuple[int, int, int, int]

_FIT_POINTS = 2000
"""A long line's pixels are thinned to about this many before a line is fitted through them."""


def rule_tilt(candidates: tuple[Candidate, ...], labels: np.ndarray, stroke_width: float,
              tuning: Tuning) -> float | None:
    """The tilt of the page's long straight lines in degrees (positive: falling to the right), or None.

    A candidate counts when it spans `Tuning.tilt_min_length` of the width, most of its pixels lie
    within a few stroke widths of one straight line, and that line leans by `Tuning.tilt_range`.
    Rules come ruled: at least `Tuning.tilt_min_rules` such lines must lean alike (within
    `Tuning.tilt_agreement` degrees of their median), where the edge of a sheet on a table is one.
    """
    width = labels.shape[1]
    reach = max(2.0, 2.0 * stroke_width)
    low, high = (math.tan(math.radians(limit)) for limit in tuning.tilt_range)
    angles = []
    for candidate in candidates:
        if candidate.width < tuning.tilt_min_length * width:
            continue
        # Cheap tests first: a straight line's box is as high as its slope makes it (plus a stroke or
        # two), and its ink is a thin band along its length, not a sheet or a table.
        slope = max(0.0, candidate.height - 2 * reach) / candidate.width
        if not 0.5 * low <= slope <= high + 0.1 or candidate.area > 2 * reach * math.hypot(candidate.width,
                                                                                          candidate.height):
            continue
        region = labels[candidate.y:candidate.bottom, candidate.x:candidate.right]
        members = region == candidate.labels[0] if len(candidate.labels) == 1 else np.isin(region, candidate.labels)
        rows, columns = np.nonzero(members)
        step = max(1, len(rows) // _FIT_POINTS)
        points = np.column_stack([columns[::step], rows[::step]]).astype(np.float32)
        direction_x, direction_y, origin_x, origin_y = cv2.fitLine(points, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        # Distance of each pixel from the fitted line: a rule lies along it, a scrawl does not.
        distances = np.abs((points[:, 0] - origin_x) * direction_y - (points[:, 1] - origin_y) * direction_x)
        if np.mean(distances <= reach) < tuning.tilt_straightness:
            continue
        angle = math.degrees(math.atan2(direction_y, direction_x))
        angle = (angle + 90.0) % 180.0 - 90.0
        if tuning.tilt_range[0] <= abs(angle) <= tuning.tilt_range[1]:
            angles.append(angle)
    if len(angles) < tuning.tilt_min_rules:
        return None
    median = float(np.median(angles))
    alike = sum(abs(angle - median) <= tuning.tilt_agreement for angle in angles)
    return median if alike >= tuning.tilt_min_rules else None


def level(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `angle` degrees so that lines with that tilt run level, on a canvas that
    holds all of it (the corners filled with the paper's median colour), and the affine matrix that
    maps the levelled image's points back to the image's."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cosine, sine = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = int(round(height * sine + width * cosine)), int(round(height * cosine + width * sine))
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    paper = np.median(image.reshape(-1, image.shape[2] if image.ndim == 3 else 1), axis=0)
    levelled = cv2.warpAffine(image, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in paper))
    return levelled, cv2.invertAffineTransform(matrix)


def box_back(box: Box, inverse: np.ndarray, shape: tuple[int, int]) -> Box:
    """A box in the levelled image as the upright box around it in the image of `shape` (height, width)."""
    x, y, width, height = box
    corners = np.array([[x, y, 1], [x + width, y, 1], [x, y + height, 1], [x + width, y + height, 1]], np.float64)
    points = corners @ inverse.T
    left, top = np.floor(points.min(axis=0)).astype(int)
    right, bottom = np.ceil(points.max(axis=0)).astype(int)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(shape[1], int(right)), min(shape[0], int(bottom))
    return (left, top, max(1, right - left), max(1, bottom - top))
