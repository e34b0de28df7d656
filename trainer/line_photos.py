"""Synthetic lines as the runtime sees them in photos: drawn on paper into a cell, degraded, then cut out again.

`trainer.lines` draws clean white-on-black lines of MNIST digits. The runtime never sees those: it
reads a strip that `edge_runtime.line_path` cut from a photo or a cut-out table cell, with the
cell's borders and rules partly taken out, paper grain, blur and JPEG blocks. Here a clean line is
printed dark on paper inside a cell (borders, rules, an underline, shading), shrunk to a few pixels'
height as logbook cells are, compressed, and then passed through the runtime's own `line_ink`, so
the line model trains on what it will read.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edge_runtime import constants, line_path, line_reader
from trainer import lines


@dataclasses.dataclass(frozen=True)
class PhotoOptions:
    """How photographed lines vary; each line draws its own values from these ranges.

    Attributes:
        paper: Paper brightness (gray levels).
        ink_contrast: Darkness of the ink below the paper, as a share of the paper's brightness.
        digit_height: Height in pixels the digits are shrunk to (logbook cells hold 10-30).
        border_probability: Chance of each side of the cell having a border line.
        border_contrast: Darkness of borders and rules, as a share of the ink's.
        underline_probability: Chance of a rule running under or through the digits' feet.
        shading: Largest brightness change across the cell (uneven light), as a share of the paper.
        noise: Largest standard deviation of sensor noise, in gray levels.
        jpeg_quality: JPEG quality range; None for no compression.
        blur_probability: Chance of a blur before shrinking (a soft focus).
    """

    paper: tuple[int, int] = (110, 245)
    ink_contrast: tuple[float, float] = (0.35, 0.9)
    digit_height: tuple[int, int] = (14, 40)
    border_probability: float = 0.5
    border_contrast: tuple[float, float] = (0.2, 0.9)
    underline_probability: float = 0.3
    shading: float = 0.25
    noise: float = 6.0
    jpeg_quality: tuple[int, int] | None = (35, 95)
    blur_probability: float = 0.4


def photo_cell(canvas: np.ndarray, rng: np.random.Generator, options: PhotoOptions = PhotoOptions()) -> np.ndarray:
    """Prints a clean line (uint8, white ink on black, MNIST scale) dark on paper in a cell; a BGR photo."""
    height, width = canvas.shape
    pad_y, pad_x = int(rng.uniform(0.15, 0.6) * height), int(rng.uniform(0.05, 0.5) * height)
    ink = cv2.copyMakeBorder(canvas, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0).astype(np.float32) / 255
    paper = rng.uniform(*options.paper)
    darkness = rng.uniform(*options.ink_contrast) * paper
    image = paper - ink * darkness
    image = _draw_cell_lines(image, rng, darkness, options)
    rows, columns = image.shape
    ramp = 1 + rng.uniform(-options.shading, options.shading) * np.linspace(-1, 1, columns)[None, :]
    ramp = ramp * (1 + rng.uniform(-options.shading, options.shading) * np.linspace(-1, 1, rows)[:, None] / 2)
    image = image * ramp + rng.normal(0, rng.uniform(0, options.noise), image.shape)
    if rng.random() < options.blur_probability:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    factor = rng.uniform(*options.digit_height) / max(1, height)
    if factor < 1:
        size = (max(8, int(round(columns * factor))), max(8, int(round(rows * factor))))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if options.jpeg_quality is not None:
        quality = int(rng.integers(options.jpeg_quality[0], options.jpeg_quality[1] + 1))
        image = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def runtime_ink(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ink the reader hands the line model for a whole cut-out cell, at one of its ink floors."""
    floor = float(rng.choice(line_path.CELL_INK_FLOORS))
    return line_path.line_ink(photo, (0, 0, photo.shape[1], photo.shape[0]), constants.INK_AUTO, floor)


def make_photo_batch(pool: lines.DigitPool, count: int, rng: np.random.Generator,
                     options: lines.LineOptions = lines.LineOptions(), photo: PhotoOptions = PhotoOptions(),
                     width: int | None = None, lengths: np.ndarray | None = None) -> lines.LineSet:
    """Like `lines.make_batch`, but each line is photographed into a cell and cut out by the runtime."""
    clean = lines.make_batch(pool, count, rng, options, width=width, lengths=lengths, keep_canvases=True)
    inks = [runtime_ink(photo_cell(canvas, rng, photo), rng) for canvas in clean.canvases]
    margins = rng.integers(2, 2 * line_reader.MARGIN, count)
    if width is None:
        natural = [line_reader.bucket_width(_scaled_width(ink), int(margin)) for ink, margin in zip(inks, margins)]
        width = min(options.width, max(natural))
    strips = np.zeros((count, line_reader.STRIP_HEIGHT, width), np.float32)
    for row, (ink, margin) in enumerate(zip(inks, margins)):
        strip = line_reader.normalize_line(ink, margin=int(margin), width=width)
        if strip is not None:
            strips[row] = strip.pixels
    return lines.LineSet(strips, clean.labels, clean.texts)


def _scaled_width(ink: np.ndarray) -> int:
    """The ink's width once its height is scaled to the strip's ink band (float ink in [0, 1])."""
    bounds = line_reader.ink_bounds(ink)
    if bounds is None:
        return 1
    top, bottom, left, right = bounds
    return int(round((right - left) * line_reader.INK_HEIGHT / (bottom - top)))


def _draw_cell_lines(image: np.ndarray, rng: np.random.Generator, darkness: float,
                     options: PhotoOptions) -> np.ndarray:
    """Borders on the cell's sides (often broken or cut by the frame) and an underline."""
    rows, columns = image.shape
    for side in range(4):
        if rng.random() >= options.border_probability:
            continue
        level = float(image.max()) - rng.uniform(*options.border_contrast) * darkness
        thickness = int(rng.integers(1, 3))
        inset = int(rng.integers(0, max(1, rows // 8)))
        tilt = int(rng.integers(-2, 3))
        if side < 2:  # left, right
            x = inset if side == 0 else columns - 1 - inset
            cv2.line(image, (x, 0), (x + tilt, rows - 1), level, thickness)
        else:  # top, bottom
            y = inset if side == 2 else rows - 1 - inset
            cv2.line(image, (0, y), (columns - 1, y + tilt), level, thickness)
    if rng.random() < options.underline_probability:
        level = float(image.max()) - rng.uniform(*options.border_contrast) * darkness
        y = int(rows * rng.uniform(0.7, 0.85))
        start, end = int(rng.uniform(0, 0.3) * columns), int(rng.uniform(0.7, 1.0) * columns)
        cv2.line(image, (start, y), (end, y + int(rng.integers(-1, 2))), level, int(rng.integers(1, 3)))
    return image
