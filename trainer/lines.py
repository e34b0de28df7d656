"""Synthetic lines of MNIST digits for the line model: rendering, batches for training and the fixed test set."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from edge_runtime import line_reader
from trainer import nondigits

INK_LEVEL = 25
"""uint8 level above which an MNIST pixel counts as ink when cropping a digit to its box."""

PAD = -1
"""Label padding after a line's digits."""


@dataclasses.dataclass(frozen=True)
class LineOptions:
    """How synthetic lines vary; each line and each digit draws its own values from these ranges.

    Lengths are in units of the MNIST digit height (about 20 pixels, as rendered before the strip
    normalization scales the line's ink rows to the strip's ink band).

    Attributes:
        min_digits: Fewest digits in a line.
        max_digits: Most digits in a line (the strip width must hold them: 12 fit in 256 pixels).
        width: The widest training strip; wider lines are squeezed horizontally to fit.
        digit_scale: Per-digit size factor.
        digit_aspect: Per-digit horizontal stretch (narrow and wide handwriting).
        slant: Largest per-line shear (italic), plus a tenth of it per digit.
        baseline_slope: Largest per-line baseline drift per digit.
        baseline_jitter: Largest per-digit vertical offset.
        gap: Range of ordinary gaps between digits (negative: overlapping).
        touch_probability: Chance that a gap is drawn from the touching/overlapping range instead.
        touch_gap: Range of touching and overlapping gaps.
        group_probability: Chance that a gap is a group gap (digits in groups: 12 345).
        group_gap: Range of group gaps.
        separator_probability: Chance that a group gap holds a separator (-, / or .).
        noise_probability: Chance that a line gets one to three noise pieces (specks, short strokes).
        thickness_probability: Chance of thickening or thinning a line's strokes (half each).
        blur_probability: Chance of a slight blur.
        contrast: Range of the brightest ink level (faint pens to full white).
    """

    min_digits: int = 1
    max_digits: int = 12
    width: int = 256
    digit_scale: tuple[float, float] = (0.85, 1.1)
    digit_aspect: tuple[float, float] = (0.75, 1.25)
    slant: float = 0.3
    baseline_slope: float = 0.03
    baseline_jitter: float = 0.06
    gap: tuple[float, float] = (0.0, 0.35)
    touch_probability: float = 0.3
    touch_gap: tuple[float, float] = (-0.25, 0.0)
    group_probability: float = 0.07
    group_gap: tuple[float, float] = (0.5, 1.2)
    separator_probability: float = 0.6
    noise_probability: float = 0.25
    thickness_probability: float = 0.3
    blur_probability: float = 0.15
    contrast: tuple[float, float] = (0.6, 1.0)

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"min_digits={self.min_digits}, max_digits={self.max_digits}: need 1 <= min <= max")
        if self.width < line_reader.MIN_WIDTH or self.width % line_reader.WIDTH_BUCKET:
            raise ValueError(f"width={self.width}: must be a multiple of {line_reader.WIDTH_BUCKET}, "
                             f"at least {line_reader.MIN_WIDTH}")


@dataclasses.dataclass(frozen=True)
class LineSet:
    """Rendered lines: strips the model reads, their labels, and the line images they came from.

    Attributes:
        strips: float32 (N, 32, W) normalized strips in [0, 1], white ink on black.
        labels: int32 (N, max_digits) digit labels, padded with -1.
        texts: The digits of each line as a string.
        canvases: uint8 line images before normalization (for the runtime's own `read_line`), or None.
    """

    strips: np.ndarray
    labels: np.ndarray
    texts: list[str]
    canvases: list[np.ndarray] | None = None


class DigitPool:
    """MNIST digits cropped to their ink boxes (a view per digit), with their labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        if len(images) == 0:
            raise ValueError("no digits to draw lines from")
        mask = images > INK_LEVEL
        rows, columns = mask.any(axis=2), mask.any(axis=1)
        size = images.shape[1]
        self.top, self.bottom = rows.argmax(axis=1), size - rows[:, ::-1].argmax(axis=1)
        self.left, self.right = columns.argmax(axis=1), size - columns[:, ::-1].argmax(axis=1)
        self.images, self.labels = images, labels.astype(np.int32)

    def __len__(self) -> int:
        return len(self.labels)

    def crop(self, index: int) -> np.ndarray:
        return self.images[index, self.top[index]:self.bottom[index], self.left[index]:self.right[index]]


@dataclasses.dataclass(frozen=True)
class RenderedLine:
    """One drawn line and where its digits went.

    Attributes:
        canvas: The finished line, uint8 white on black (what `render_line` returns).
        digit_spans: Per digit, its tile's (x, width) in the canvas's columns; neighbours may reach in.
        digit_tiles: Per digit, its tile as warped, before the line drew anything beside or over it
            (and before the line's thickness, blur and ink level).
    """

    canvas: np.ndarray
    digit_spans: list[tuple[int, int]]
    digit_tiles: list[np.ndarray]


def render_line(pool: DigitPool, indices: np.ndarray, rng: np.random.Generator,
                options: LineOptions = LineOptions()) -> np.ndarray:
    """Draws one line of the pool's digits `indices` at MNIST scale, as a uint8 white-on-black image."""
    return render_line_parts(pool, indices, rng, options).canvas


def render_line_parts(pool: DigitPool, indices: np.ndarray, rng: np.random.Generator,
                      options: LineOptions = LineOptions()) -> RenderedLine:
    """`render_line`, with each digit's place and tile (the same draws from `rng`, the same canvas)."""
    height = 20.0
    count = len(indices)
    slant = rng.uniform(-options.slant, options.slant)
    slope = rng.uniform(-options.baseline_slope, options.baseline_slope) * height
    tiles, offsets = [], []
    for position, index in enumerate(indices):
        crop = pool.crop(int(index))
        scale = rng.uniform(*options.digit_scale)
        tiles.append(_warp(crop, scale, scale * rng.uniform(*options.digit_aspect),
                           slant + rng.uniform(-0.1, 0.1) * options.slant))
        offsets.append(slope * position + rng.uniform(-1, 1) * options.baseline_jitter * height
                       + (1 - scale) * crop.shape[0] * 0.5)
    gaps, separators = _gaps(count, rng, options)
    pieces = []  # (tile, x, y) in canvas coordinates, before the canvas size is known
    digit_xs = []
    x = 0.0
    for position, tile in enumerate(tiles):
        pieces.append((tile, x, offsets[position] + (height - tile.shape[0]) * 0.5))
        digit_xs.append(x)
        x += tile.shape[1]
        if position < count - 1:
            gap = gaps[position] * height
            if separators[position]:
                mark = _separator(separators[position], rng, height)
                pieces.append((mark, x + (gap - mark.shape[1]) / 2, _separator_y(separators[position], mark, height,
                                                                                  offsets[position])))
            x += gap
    if rng.random() < options.noise_probability:
        for _ in range(int(rng.integers(1, 4))):
            speck = _not_a_digit(rng, height) if rng.random() < 0.6 else _noise_piece(rng, height)
            pieces.append((speck, rng.uniform(-0.3 * height, x + 0.3 * height),
                           rng.uniform(-0.4 * height, 1.2 * height)))
    left = min(piece_x for _, piece_x, _ in pieces)  # where `_compose` puts the canvas's first column
    spans = [(int(round(digit_x - left)), tile.shape[1]) for digit_x, tile in zip(digit_xs, tiles)]
    canvas = _compose(pieces)
    return RenderedLine(_finish(canvas, rng, options), spans, tiles)


def make_batch(pool: DigitPool, count: int, rng: np.random.Generator, options: LineOptions = LineOptions(),
               width: int | None = None, lengths: np.ndarray | None = None,
               keep_canvases: bool = False) -> LineSet:
    """Renders `count` lines and normalizes them into strips of one width.

    Args:
        pool: The digits to draw from.
        count: Lines to render.
        rng: Randomness.
        options: How lines vary.
        width: Strip width; default: the widest line's bucketed width, at most `options.width`.
        lengths: Digits per line; default: uniform in [min_digits, max_digits].
        keep_canvases: Also return the line images before normalization.
    """
    if lengths is None:
        lengths = rng.integers(options.min_digits, options.max_digits + 1, count)
    parts, label_rows, texts = _draw_lines(pool, lengths, rng, options)
    canvases = [part.canvas for part in parts]
    margins = rng.integers(2, 2 * line_reader.MARGIN, count)
    if width is None:
        natural = [line_reader.bucket_width(_scaled_width(canvas), int(margin))
                   for canvas, margin in zip(canvases, margins)]
        width = min(options.width, max(natural))
    strips = np.zeros((count, line_reader.STRIP_HEIGHT, width), np.float32)
    for row, (canvas, margin) in enumerate(zip(canvases, margins)):
        strip = line_reader.normalize_line(canvas, margin=int(margin), width=width)
        if strip is not None:
            strips[row] = strip.pixels
    return LineSet(strips, label_rows, texts, canvases if keep_canvases else None)


def fixed_line_set(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                   options: LineOptions = LineOptions(), keep_canvases: bool = False) -> LineSet:
    """A seeded, reproducible set of lines at the full strip width (the test and validation sets).

    Lengths cycle through min_digits..max_digits so every length is equally represented.
    """
    rng = np.random.default_rng(seed)
    return make_batch(DigitPool(images, labels), count, rng, options, width=options.width,
                      lengths=_cycled_lengths(count, options), keep_canvases=keep_canvases)


def fixed_line_parts(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                     options: LineOptions = LineOptions()) -> tuple[list[RenderedLine], list[str]]:
    """The lines of `fixed_line_set` with the same arguments, as drawn (`render_line_parts`), and their texts."""
    parts, _, texts = _draw_lines(DigitPool(images, labels), _cycled_lengths(count, options),
                                  np.random.default_rng(seed), options)
    return parts, texts


def _cycled_lengths(count: int, options: LineOptions) -> np.ndarray:
    return options.min_digits + np.arange(count) % (options.max_digits - options.min_digits + 1)


def _draw_lines(pool: DigitPool, lengths: np.ndarray, rng: np.random.Generator,
                options: LineOptions) -> tuple[list[RenderedLine], np.ndarray, list[str]]:
    """Draws one line per length: the lines, their padded label rows and their texts."""
    parts, label_rows, texts = [], np.full((len(lengths), options.max_digits), PAD, np.int32), []
    for row, length in enumerate(lengths):
        indices = rng.integers(0, len(pool), int(length))
        parts.append(render_line_parts(pool, indices, rng, options))
        label_rows[row, :length] = pool.labels[indices]
        texts.append("".join(str(int(v)) for v in pool.labels[indices]))
    return parts, label_rows, texts


def _scaled_width(canvas: np.ndarray) -> int:
    bounds = line_reader.ink_bounds(canvas.astype(np.float32) * (1 / 255))
    if bounds is None:
        return 1
    top, bottom, left, right = bounds
    return int(round((right - left) * line_reader.INK_HEIGHT / (bottom - top)))


def _warp(crop: np.ndarray, scale_y: float, scale_x: float, shear: float) -> np.ndarray:
    """Scales and shears one digit crop into a tight tile (positive shear leans the top right)."""
    height, width = crop.shape
    lean = abs(shear) * scale_y * height
    out_width = max(1, int(math.ceil(scale_x * width + lean)) + 1)
    out_height = max(1, int(math.ceil(scale_y * height)) + 1)
    shift = lean if shear > 0 else 0.0
    matrix = np.array([[scale_x, -shear * scale_y, shift], [0.0, scale_y, 0.0]], np.float32)
    return cv2.warpAffine(crop, matrix, (out_width, out_height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _gaps(count: int, rng: np.random.Generator, options: LineOptions) -> tuple[np.ndarray, list[str]]:
    """Gaps between neighbouring digits (in digit heights) and the separator drawn in each ("" for none)."""
    slots = max(count - 1, 0)
    gaps = rng.uniform(*options.gap, slots)
    draw = rng.random(slots)
    touching = draw < options.touch_probability
    gaps[touching] = rng.uniform(*options.touch_gap, int(touching.sum()))
    grouped = draw > 1 - options.group_probability
    gaps[grouped] = rng.uniform(*options.group_gap, int(grouped.sum()))
    separators = ["" for _ in range(slots)]
    for slot in np.flatnonzero(grouped & (rng.random(slots) < options.separator_probability)):
        separators[slot] = "-/."[int(rng.integers(0, 3))]
    return gaps, separators


def _separator(kind: str, rng: np.random.Generator, height: float) -> np.ndarray:
    """A separator mark drawn with anti-aliased OpenCV strokes about as thick as MNIST's."""
    thickness = int(rng.integers(2, 4))
    if kind == "-":
        length = int(rng.uniform(0.3, 0.55) * height)
        tile = np.zeros((thickness + 4, length + 4), np.uint8)
        cv2.line(tile, (2, tile.shape[0] // 2), (length + 1, tile.shape[0] // 2 + int(rng.integers(-1, 2))),
                 255, thickness, cv2.LINE_AA)
    elif kind == "/":
        # Taller, thinner and flatter than a slanted 1, reaching below the baseline, as slashes do;
        # a slash that looked like a 1 would make the labels ambiguous.
        tall = int(rng.uniform(1.3, 1.5) * height)
        wide = int(rng.uniform(0.5, 0.7) * tall)
        tile = np.zeros((tall + 4, wide + 4), np.uint8)
        cv2.line(tile, (2, tall + 1), (wide + 1, 2), 255, 1, cv2.LINE_AA)
    else:
        radius = int(rng.integers(1, 3))
        tile = np.zeros((2 * radius + 5, 2 * radius + 5), np.uint8)
        cv2.circle(tile, (radius + 2, radius + 2), radius, 255, -1, cv2.LINE_AA)
    return tile


def _separator_y(kind: str, mark: np.ndarray, height: float, offset: float) -> float:
    if kind == "-":
        return offset + height * 0.5 - mark.shape[0] / 2
    if kind == "/":
        return offset + height - mark.shape[0] + 0.2 * height
    return offset + height - mark.shape[0] + 1


def _noise_piece(rng: np.random.Generator, height: float) -> np.ndarray:
    """A speck, blob or short stroke, small beside a digit (so it cannot pass for a 1)."""
    size = int(rng.integers(4, int(0.45 * height)))
    tile = np.zeros((size + 4, size + 4), np.uint8)
    centre = (size // 2 + 2, size // 2 + 2)
    if rng.random() < 0.5:
        axes = (int(rng.integers(1, max(2, size // 2))), int(rng.integers(1, max(2, size // 3))))
        cv2.ellipse(tile, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(120, 256)), -1,
                    cv2.LINE_AA)
    else:
        angle = rng.uniform(0, math.pi)
        dx, dy = math.cos(angle) * size / 2, math.sin(angle) * size / 2
        cv2.line(tile, (int(centre[0] - dx), int(centre[1] - dy)), (int(centre[0] + dx), int(centre[1] + dy)),
                 int(rng.integers(120, 256)), int(rng.integers(1, 3)), cv2.LINE_AA)
    return tile


def _not_a_digit(rng: np.random.Generator, height: float) -> np.ndarray:
    """A piece from the digit model's "not a digit" generator (dashes, blobs, crosses, letters), shrunk
    to 30-70% of a digit's height so the line model learns to skip it rather than to read it."""
    piece = nondigits.generate(1, rng)[0]
    mask = piece > INK_LEVEL
    if not mask.any():
        return _noise_piece(rng, height)
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = piece[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    factor = rng.uniform(0.3, 0.7) * height / 20.0
    size = (max(1, int(round(crop.shape[1] * factor))), max(1, int(round(crop.shape[0] * factor))))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def _compose(pieces: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Pastes tiles into one canvas with a maximum, so overlapping strokes merge like ink."""
    left = min(x for _, x, _ in pieces)
    top = min(y for _, _, y in pieces)
    placed = [(tile, int(round(x - left)), int(round(y - top))) for tile, x, y in pieces]
    width = max(x + tile.shape[1] for tile, x, _ in placed)
    height = max(y + tile.shape[0] for tile, _, y in placed)
    canvas = np.zeros((height + 2, width + 2), np.uint8)
    for tile, x, y in placed:
        region = canvas[y:y + tile.shape[0], x:x + tile.shape[1]]
        np.maximum(region, tile, out=region)
    return canvas


_THICKEN = np.ones((2, 2), np.uint8)
_THIN = (np.ones((1, 2), np.uint8), np.ones((2, 1), np.uint8))


def _finish(canvas: np.ndarray, rng: np.random.Generator, options: LineOptions) -> np.ndarray:
    """Line-wide stroke thickness, blur and ink brightness."""
    draw = rng.random()
    if draw < options.thickness_probability / 2:
        canvas = cv2.dilate(canvas, _THICKEN)
    elif draw < options.thickness_probability:
        canvas = cv2.erode(canvas, _THIN[int(rng.integers(0, 2))])
    if rng.random() < options.blur_probability:
        canvas = cv2.GaussianBlur(canvas, (3, 3), 0.6)
    level = rng.uniform(*options.contrast)
    if level < 1.0:
        canvas = (canvas.astype(np.float32) * level).astype(np.uint8)
    return canvas
