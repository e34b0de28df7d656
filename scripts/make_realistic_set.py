"""Owns the realistic photo test set of handwritten digits that MNIST never saw, and the demo samples."""

# Digits come from Debian handwriting fonts (scripts/install_fonts.sh) and scikit-learn's
# UCI pen digits, drawn on plain, ruled or grid paper or a chalkboard, then "photographed":
# perspective, uneven light and shadow, blur, sensor noise and JPEG compression.

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import importlib.util
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DIGITS = "0123456789"

KINDS = (
    "font_clean",
    "font_photo",
    "ruled",
    "grid",
    "color_ink",
    "chalkboard",
    "pen_digits",
    "multi_digit",
)

FONT_DIRECTORIES = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)

# Font file name -> family. Only fonts whose digits were looked at and read as clear
# handwriting are listed; families are sampled uniformly so a family with several
# weights does not dominate. Rejected after inspection:
#   Breip: open-top 0 reads as U.             Kristi: closed 4 reads as 9.
#   Delphine: 1 reads as a caret, 9 as g.     Femkeklaver: hollow outline glyphs.
#   Leckerli One: fat display face.           dkg italics: 1 is a bare slash.
#   setofont: slashed zero, a typing habit.   setofont-ex: has no digits.
#   Klee One: fine, but a 91 MB package.
HANDWRITING_FONT_FILES = {
    "BecauseWeBuild-Regular.otf": "BecauseWeBuild",
    "BecauseWeConnect-Regular.otf": "BecauseWeConnect",
    "BecauseWeCreate-Regular.otf": "BecauseWeCreate",
    "BecauseWeLearn-Regular.otf": "BecauseWeLearn",
    "BecauseWeMentor-Regular.otf": "BecauseWeMentor",
    "BecauseWeOrganize-Regular.otf": "BecauseWeOrganize",
    "dkg.ttf": "dkg",
    "dkgBd.ttf": "dkg",
    "ComicNeue-Regular.otf": "ComicNeue",
    "ComicNeue-Bold.otf": "ComicNeue",
    "DancingScript-Regular.otf": "DancingScript",
    "DancingScript-Bold.otf": "DancingScript",
    "KaushanScript-Regular.otf": "KaushanScript",
    "Humor-Sans.ttf": "HumorSans",
    "kiloji.ttf": "kiloji",
    "kiloji_b.ttf": "kiloji",
    "Rufscript010.ttf": "Rufscript",
    "SteveHand.ttf": "SteveHand",
    "TomsonTalks.ttf": "TomsonTalks",
    "YuseiMagic-Regular.ttf": "YuseiMagic",
}

# A supplementary private-use code point: no handwriting font maps it, so it shows .notdef.
NOTDEF_PROBE = "\U000f0000"

# UCI pen digits are redrawn at this size before scaling to the output.
PEN_RENDER_SIZE = 96

# Loops a pen digit must show to read as itself (4 may be open or closed).
MIN_LOOPS = {"0": 1, "6": 1, "8": 2, "9": 1}

# Rendering below this height makes stroke-width edits too coarse, so glyphs are drawn
# at least this tall and shrunk afterwards.
MIN_RENDER_HEIGHT = 96

CANVAS_SIZES = (((480, 640), 0.7), ((640, 480), 0.15), ((768, 1024), 0.15))

PAPER_TINTS = (
    (0.97, 0.97, 0.96),  # white copy paper
    (0.96, 0.95, 0.90),  # off-white notebook
    (0.95, 0.93, 0.84),  # cream / recycled
    (0.93, 0.94, 0.95),  # bluish white
    (0.92, 0.91, 0.89),  # grey recycled
)
RULING_BLUE = (0.45, 0.62, 0.88)
MARGIN_RED = (0.90, 0.35, 0.40)
GRID_COLOURS = ((0.50, 0.68, 0.88), (0.60, 0.62, 0.66), (0.55, 0.78, 0.62))
BOARD_COLOURS = ((0.13, 0.24, 0.18), (0.10, 0.10, 0.11), (0.16, 0.19, 0.22))


@dataclasses.dataclass(frozen=True)
class HandwritingFont:
    """A usable handwriting font file.

    Attributes:
        family: Family name used for uniform sampling.
        path: Font file path.
        digit_height_per_size: Median digit ink height divided by the point size.
    """

    family: str
    path: str
    digit_height_per_size: float


@dataclasses.dataclass(frozen=True)
class Glyph:
    """An ink mask with its vertical position relative to the writing baseline.

    Attributes:
        mask: float32 ink coverage in [0, 1], cropped to the ink.
        top: Row of the mask's top edge relative to the baseline (negative = above).
    """

    mask: np.ndarray
    top: float


@dataclasses.dataclass(frozen=True)
class PhotoStyle:
    """How rough the simulated phone photo is; all ranges are sampled uniformly.

    Attributes:
        gradient: Largest brightness change across the frame.
        vignette: Largest corner darkening.
        shadow_probability: Chance of a soft cast shadow (hand/phone).
        tilt: Largest perspective corner shift, as a fraction of the short side.
        desk_probability: Chance that the page is smaller than the frame, showing a desk.
        blur: Gaussian blur sigma range in pixels at 480 px height.
        motion_probability: Chance of camera-shake blur.
        noise: Sensor noise sigma range (image values in [0, 1]).
        jpeg_quality: JPEG quality range.
        exposure: Overall brightness multiplier range.
        white_balance_error: Whether warm/cool colour casts may occur.
    """

    gradient: float
    vignette: float
    shadow_probability: float
    tilt: float
    desk_probability: float
    blur: tuple[float, float]
    motion_probability: float
    noise: tuple[float, float]
    jpeg_quality: tuple[int, int]
    exposure: tuple[float, float] = (0.72, 0.98)
    white_balance_error: bool = True


CLEAN_STYLE = PhotoStyle(0.06, 0.08, 0.0, 0.01, 0.0, (0.0, 0.6), 0.0, (0.003, 0.01), (85, 95),
                         exposure=(0.88, 0.98), white_balance_error=False)
PHOTO_STYLE = PhotoStyle(0.5, 0.35, 0.5, 0.08, 0.35, (0.3, 2.0), 0.15, (0.01, 0.04), (40, 90))
NOTEBOOK_STYLE = PhotoStyle(0.3, 0.25, 0.3, 0.05, 0.25, (0.2, 1.3), 0.08, (0.006, 0.025), (60, 92))
BOARD_STYLE = PhotoStyle(0.35, 0.3, 0.1, 0.05, 0.0, (0.3, 1.5), 0.1, (0.01, 0.03), (55, 90))

# Smallest digit, as a fraction of the image height, after the camera tilt; below
# this a 480-line photo no longer shows the strokes clearly.
MIN_DIGIT_FRACTION = 0.05


@dataclasses.dataclass(frozen=True)
class Ink:
    """Pen or chalk appearance.

    Attributes:
        colour: RGB colour in [0, 1].
        opacity: Peak coverage of a stroke.
        chalk: Chalk is painted over the board; pen ink multiplies the paper.
    """

    colour: tuple[float, float, float]
    opacity: float
    chalk: bool = False


@dataclasses.dataclass(frozen=True)
class Assets:
    """Inputs shared by all images: fonts and the filtered UCI pen digits."""

    fonts: tuple[HandwritingFont, ...]
    pen_images: np.ndarray
    pen_labels: np.ndarray


# ---------------------------------------------------------------------------
# Fonts


def render_text_mask(
    font: ImageFont.FreeTypeFont, text: str, stroke_width: int = 0
) -> tuple[np.ndarray, int]:
    """Draws text white-on-black.

    Args:
        font: Loaded font.
        text: Text to draw.
        stroke_width: Extra outline width in pixels (thickens strokes).

    Returns:
        (uint8 mask, baseline row in the mask).
    """
    left, top, right, bottom = font.getbbox(text, anchor="ls", stroke_width=stroke_width)
    pad = 2
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text(
        (pad - left, pad - top), text, font=font, fill=255, anchor="ls",
        stroke_width=stroke_width, stroke_fill=255,
    )
    return np.asarray(canvas), pad - top


@functools.lru_cache(maxsize=512)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """Loads a font once per (path, size); Pillow parsing is the slow part."""
    return ImageFont.truetype(path, size)


def inspect_font(family: str, path: str) -> HandwritingFont | None:
    """Checks that a font draws ten distinct, non-empty, non-.notdef digits.

    Args:
        family: Family name to record.
        path: Font file.

    Returns:
        The usable font, or None when it cannot render every digit.
    """
    try:
        font = load_font(path, 100)
    except OSError:
        return None
    notdef, _ = render_text_mask(font, NOTDEF_PROBE)
    masks = [render_text_mask(font, digit)[0] for digit in DIGITS]
    rendered = [mask for mask in masks if mask.any()]
    distinct = {mask.tobytes() + bytes(mask.shape) for mask in rendered}
    if len(rendered) < len(DIGITS) or len(distinct) < len(DIGITS):
        return None
    if any(mask.shape == notdef.shape and np.array_equal(mask, notdef) for mask in masks):
        return None
    heights = [np.ptp(np.nonzero(mask.any(axis=1))[0]) + 1 for mask in masks]
    return HandwritingFont(family, path, float(np.median(heights)) / 100.0)


@functools.lru_cache(maxsize=1)
def find_handwriting_fonts(directories: tuple[Path, ...] = FONT_DIRECTORIES) -> tuple[HandwritingFont, ...]:
    """Finds the installed, allow-listed handwriting fonts that render all digits.

    Args:
        directories: Font directories to search recursively.

    Returns:
        Usable fonts sorted by path (sorted so the same seed gives the same set).
    """
    paths = {}
    for directory in directories:
        if directory.is_dir():
            for path in directory.rglob("*"):
                if path.name in HANDWRITING_FONT_FILES:
                    paths.setdefault(path.name, str(path))
    fonts = (inspect_font(HANDWRITING_FONT_FILES[name], path) for name, path in paths.items())
    return tuple(sorted((font for font in fonts if font), key=lambda font: font.path))


def pick_font(rng: np.random.Generator, fonts: tuple[HandwritingFont, ...]) -> HandwritingFont:
    """Picks a family uniformly, then one of its files."""
    families = sorted({font.family for font in fonts})
    family = families[rng.integers(len(families))]
    members = [font for font in fonts if font.family == family]
    return members[rng.integers(len(members))]


# ---------------------------------------------------------------------------
# Ink masks


def stroke_thickness(mask: np.ndarray) -> float:
    """Estimates mean stroke thickness as 2 * area / perimeter (exact for long thin strokes)."""
    binary = (mask > 127).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(contour, True) for contour in contours)
    return 2.0 * float(binary.sum()) / max(perimeter, 1.0)


def crop_to_ink(mask: np.ndarray, baseline: float) -> Glyph:
    """Crops a mask to its ink and records where the baseline was."""
    rows = np.nonzero(mask.max(axis=1) > 0)[0]
    columns = np.nonzero(mask.max(axis=0) > 0)[0]
    cropped = mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    return Glyph(cropped.astype(np.float32) / 255.0, float(rows[0]) - baseline)


def render_glyph(font: HandwritingFont, digit: str, digit_height: float, stroke_ratio: float) -> Glyph:
    """Draws one digit with a chosen pen thickness.

    Args:
        font: Handwriting font.
        digit: One character of DIGITS.
        digit_height: Typical digit height of this font in output pixels.
        stroke_ratio: Wanted stroke thickness as a fraction of digit_height.

    Returns:
        The digit's ink mask at output scale.
    """
    render_height = max(digit_height, MIN_RENDER_HEIGHT)
    size = max(8, int(round(render_height / font.digit_height_per_size)))
    pil_font = load_font(font.path, size)
    mask, baseline = render_text_mask(pil_font, digit)
    current = stroke_thickness(mask)
    wanted = stroke_ratio * render_height
    if wanted > current + 1.5:
        mask, baseline = render_text_mask(pil_font, digit, int(round((wanted - current) / 2)))
    elif wanted < current - 2:
        mask = thin_strokes(mask, int(min((current - wanted) / 2, current / 3)))
    glyph = crop_to_ink(mask, baseline)
    return resize_glyph(glyph, digit_height / render_height)


def thin_strokes(mask: np.ndarray, radius: int) -> np.ndarray:
    """Erodes strokes by up to radius pixels, backing off where that would break a stroke apart.

    Fonts with thick/thin contrast lose their thin joins first (a 4's crossbar), which
    would change what the digit reads as.
    """
    pieces = cv2.connectedComponents((mask > 127).astype(np.uint8))[0]
    for size in range(radius, 0, -1):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * size + 1, 2 * size + 1))
        eroded = cv2.erode(mask, kernel)
        if cv2.connectedComponents((eroded > 127).astype(np.uint8))[0] == pieces:
            return eroded
    return mask


def resize_glyph(glyph: Glyph, factor: float) -> Glyph:
    """Scales a glyph, area-averaging when shrinking so thin strokes fade instead of vanishing."""
    if abs(factor - 1.0) < 1e-3:
        return glyph
    height, width = glyph.mask.shape
    size = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return Glyph(cv2.resize(glyph.mask, size, interpolation=interpolation), glyph.top * factor)


def thin_to_skeleton(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a 0/1 image to one-pixel-wide centre lines."""
    image = np.pad(binary.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            centre = image[1:-1, 1:-1]
            # Neighbours clockwise from north: P2..P9 in the paper's notation.
            ring = [image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:], image[2:, 2:],
                    image[2:, 1:-1], image[2:, :-2], image[1:-1, :-2], image[:-2, :-2]]
            north, east, south, west = ring[0], ring[2], ring[4], ring[6]
            neighbours = sum(n.astype(np.int32) for n in ring)
            transitions = sum(((ring[i] == 0) & (ring[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
            if step == 0:
                side = (north * east * south == 0) & (east * south * west == 0)
            else:
                side = (north * east * west == 0) & (north * south * west == 0)
            remove = (centre == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            if remove.any():
                centre[remove] = 0
                changed = True
    return image[1:-1, 1:-1]


def pen_stroke_mask(image8: np.ndarray, stroke_ratio: float, size: int = PEN_RENDER_SIZE) -> np.ndarray:
    """Redraws an 8x8 UCI pen digit as an even pen stroke (uint8 mask, size x size).

    The 8x8 cells are ink densities, so a direct upscale gives fat blobs. Thresholding
    the smooth upscale at half density recovers the shape, thinning finds the path the
    pen took, and dilation redraws it with a chosen pen width.
    """
    small = cv2.resize(image8, (32, 32), interpolation=cv2.INTER_CUBIC)
    large = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    large = cv2.GaussianBlur(large, (0, 0), size / 64)
    skeleton = thin_to_skeleton(large > 0.45 * float(large.max()))
    radius = max(1, int(round(stroke_ratio * size / 2)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.GaussianBlur(cv2.dilate(skeleton * 255, kernel), (0, 0), 0.8)


def count_holes(mask: np.ndarray) -> int:
    """Number of enclosed background regions (loops) in an ink mask."""
    _, hierarchy = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return 0 if hierarchy is None else int((hierarchy[0, :, 3] >= 0).sum())


def render_pen_digit(mask: np.ndarray, digit_height: float) -> Glyph:
    """Scales a pen stroke mask to digit_height, keeping edges about one pixel soft."""
    glyph = crop_to_ink(mask, 0.0)
    factor = digit_height / glyph.mask.shape[0]
    glyph = resize_glyph(Glyph(glyph.mask, -float(glyph.mask.shape[0])), factor)
    if factor > 1.5:
        # Upscaling smears the edge over `factor` pixels; steepen it back to ink-like.
        return Glyph(np.clip((glyph.mask - 0.5) * factor + 0.5, 0.0, 1.0), glyph.top)
    return glyph


def rotate_mask(mask: np.ndarray, angle: float, pad: int = 3) -> np.ndarray:
    """Rotates a mask by angle degrees (counter-clockwise) onto a canvas that fits it."""
    height, width = mask.shape
    radians = np.deg2rad(angle)
    new_width = int(np.ceil(width * abs(np.cos(radians)) + height * abs(np.sin(radians)))) + 2 * pad
    new_height = int(np.ceil(width * abs(np.sin(radians)) + height * abs(np.cos(radians)))) + 2 * pad
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += (new_width / 2 - width / 2, new_height / 2 - height / 2)
    return cv2.warpAffine(mask, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR)


def compose_number(glyphs: list[Glyph], rng: np.random.Generator) -> Glyph:
    """Lays digits left to right on a shared baseline with handwriting-like spacing.

    Args:
        glyphs: One glyph per digit, same font and pen.
        rng: Random source.

    Returns:
        The whole number as one glyph.
    """
    height = max(glyph.mask.shape[0] for glyph in glyphs)
    spacing = {"tight": (-0.03, 0.04), "normal": (0.05, 0.2), "wide": (0.2, 0.4)}
    gap_range = spacing[("tight", "normal", "normal", "wide")[rng.integers(4)]]
    jitter = 0.04 * height
    tops = [glyph.top + rng.uniform(-jitter, jitter) for glyph in glyphs]
    lowest_top = min(tops)
    canvas_height = int(np.ceil(max(top + g.mask.shape[0] for top, g in zip(tops, glyphs)) - lowest_top)) + 1
    canvas_width = int(sum(g.mask.shape[1] for g in glyphs) + 0.5 * height * len(glyphs)) + 2
    canvas = np.zeros((canvas_height, canvas_width), np.float32)
    cursor = 0
    for glyph, top in zip(glyphs, tops):
        row = int(round(top - lowest_top))
        cursor = place_without_overlap(canvas, glyph.mask, row, cursor)
        cursor += glyph.mask.shape[1] + int(rng.uniform(*gap_range) * height)
    columns = np.nonzero(canvas.max(axis=0) > 0)[0]
    return Glyph(canvas[:, : columns[-1] + 1], lowest_top)


def place_without_overlap(canvas: np.ndarray, mask: np.ndarray, row: int, column: int) -> int:
    """Pastes mask at (row, column), nudging right until at most 3% of its ink overlaps.

    Returns:
        The column actually used.
    """
    height, width = mask.shape
    column = max(column, 0)
    ink = float(mask.sum())
    while column + width < canvas.shape[1]:
        region = canvas[row:row + height, column:column + width]
        if float(np.minimum(region, mask).sum()) <= 0.03 * ink:
            break
        column += 1
    region = canvas[row:row + height, column:column + width]
    np.maximum(region, mask[: region.shape[0], : region.shape[1]], out=region)
    return column


def add_pen_pressure(mask: np.ndarray, rng: np.random.Generator, ink: Ink) -> np.ndarray:
    """Varies ink density along strokes and softens edges like ink soaking into paper."""
    height, width = mask.shape
    pressure = 0.8 + 0.2 * smooth_noise(rng, height, width, max(height, width) / 3)
    softened = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.3, 0.7))
    return np.clip(softened * pressure * ink.opacity, 0.0, 1.0)


def add_chalk_texture(mask: np.ndarray, rng: np.random.Generator, ink: Ink) -> np.ndarray:
    """Turns a stroke into chalk: ragged edges, gaps where the board's tooth skipped, dust halo."""
    height, width = mask.shape
    tooth = smooth_noise(rng, height, width, rng.uniform(1.2, 2.5))
    pressure = 0.55 + 0.45 * smooth_noise(rng, height, width, max(height, width) / 4)
    ragged = np.clip((mask - 0.5 + (tooth - 0.5) * 0.9) * 3.0 + 0.5, 0.0, 1.0)
    gaps = np.clip((tooth - rng.uniform(0.15, 0.4)) * 4.0, 0.0, 1.0)
    alpha = ragged * (0.3 + 0.7 * gaps) * pressure * ink.opacity
    halo = cv2.GaussianBlur(mask, (0, 0), max(2.0, height / 30)) * 0.1
    return np.maximum(alpha, halo)


# ---------------------------------------------------------------------------
# Backgrounds


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise in about [0, 1] with features roughly `cell` pixels wide."""
    grid = rng.random((max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)), dtype=np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def make_paper(rng: np.random.Generator, height: int, width: int, white_only: bool = False) -> np.ndarray:
    """Paper with tint, fibre texture and gentle blotches (RGB float32)."""
    tints = PAPER_TINTS[:2] if white_only else PAPER_TINTS
    tint = np.array(tints[rng.integers(len(tints))], np.float32) * np.float32(rng.uniform(0.97, 1.02))
    cell = rng.uniform(1.5, 4)
    grid_height, grid_width = int(height / cell) + 2, int(width / cell) + 2
    fibres = rng.random((grid_height, grid_width), dtype=np.float32) - 0.5
    fibres *= np.float32(rng.uniform(0.02, 0.05))
    # Blotches are coarse, so they ride on the fibre grid and share its single upscale.
    blotches = smooth_noise(rng, grid_height, grid_width, grid_width / 4) - 0.5
    shade = 1.0 + fibres + blotches * np.float32(rng.uniform(0.0, 0.05))
    return cv2.resize(shade[..., None] * tint, (width, height), interpolation=cv2.INTER_CUBIC)


def multiply_layer(image: np.ndarray, alpha: np.ndarray, colour) -> None:
    """Multiplies a coloured layer into image in place (how ink absorbs reflected light)."""
    image *= 1.0 - alpha[..., None] * (1.0 - np.asarray(colour, np.float32))


def draw_lines(page: np.ndarray, lines, thickness: int, opacity: float, colour) -> None:
    """Prints anti-aliased lines (sub-pixel positions) onto the page in place.

    Only the rows the lines touch are blended: ruled pages are mostly blank paper.
    """
    height, width = page.shape[:2]
    layer = np.zeros((height, width), np.uint8)
    for (x0, y0), (x1, y1) in lines:
        start = (int(round(x0 * 16)), int(round(y0 * 16)))
        end = (int(round(x1 * 16)), int(round(y1 * 16)))
        cv2.line(layer, start, end, 255, thickness, cv2.LINE_AA, shift=4)
    left, top, box_width, box_height = cv2.boundingRect(layer)
    region = page[top:top + box_height, left:left + box_width]
    inked = layer[top:top + box_height, left:left + box_width]
    rows = np.flatnonzero(inked.any(axis=1))
    if len(rows) > box_height // 2:  # grid paper: nearly every row has a line crossing it
        multiply_layer(region, inked.astype(np.float32) * np.float32(opacity / 255.0), colour)
        return
    block = region[rows]
    multiply_layer(block, inked[rows].astype(np.float32) * np.float32(opacity / 255.0), colour)
    region[rows] = block


def draw_ruled_lines(
    page: np.ndarray, rng: np.random.Generator, scale: float
) -> tuple[np.ndarray, float, float]:
    """Draws blue writing lines and a red margin, as on a school notebook page.

    Returns:
        (line y positions, line spacing, x where writing starts after the margin).
    """
    height, width = page.shape[:2]
    spacing = rng.uniform(34, 90) * scale
    rows = np.arange(rng.uniform(0.3, 1.0) * spacing, height, spacing)
    thickness = 1 if rng.random() < 0.7 else 2
    lines = [((0, y), (width - 1, y)) for y in rows]
    draw_lines(page, lines, thickness, rng.uniform(0.45, 0.85), RULING_BLUE)
    margin = rng.uniform(0.06, 0.22) * width
    margin_lines = [((margin, 0), (margin, height - 1))]
    if rng.random() < 0.3:
        margin_lines.append(((margin + 4 * scale, 0), (margin + 4 * scale, height - 1)))
    draw_lines(page, margin_lines, thickness, rng.uniform(0.5, 0.85), MARGIN_RED)
    return rows, spacing, margin + 8 * scale


def draw_grid(page: np.ndarray, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, float]:
    """Draws squared (maths) paper lines.

    Returns:
        (horizontal line y positions, cell size).
    """
    height, width = page.shape[:2]
    cell = rng.uniform(18, 45) * scale
    rows = np.arange(rng.uniform(0, cell), height, cell)
    columns = np.arange(rng.uniform(0, cell), width, cell)
    lines = [((0, y), (width - 1, y)) for y in rows] + [((x, 0), (x, height - 1)) for x in columns]
    colour = GRID_COLOURS[rng.integers(len(GRID_COLOURS))]
    draw_lines(page, lines, 1, rng.uniform(0.3, 0.65), colour)
    return rows, cell


def make_chalkboard(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dark board with erased-chalk haze and eraser swipes.

    Built on a third-resolution grid (board texture is soft) and upscaled once.
    """
    grid_height, grid_width = height // 3 + 1, width // 3 + 1
    base = np.array(BOARD_COLOURS[rng.integers(len(BOARD_COLOURS))], np.float32)
    base *= np.float32(rng.uniform(0.85, 1.2))
    texture = 1.0 + (rng.random((grid_height, grid_width), dtype=np.float32) - 0.5) * np.float32(0.12)
    haze = smooth_noise(rng, grid_height, grid_width, grid_width / 5) - 0.45
    haze = np.clip(haze * 2.0, 0.0, 1.0) * np.float32(rng.uniform(0.06, 0.22))
    swipes = np.zeros((grid_height, grid_width), np.uint8)
    for _ in range(rng.integers(2, 6)):
        points = np.cumsum(rng.normal(0, grid_width / 8, (5, 2)), axis=0)
        points += rng.uniform(0, 1, 2) * (grid_width, grid_height)
        cv2.polylines(swipes, [points.astype(np.int32)], False, 255, int(rng.uniform(8, 24) * height / 480))
    swipes = cv2.GaussianBlur(swipes.astype(np.float32) / 255.0, (0, 0), 4 * height / 480)
    haze += swipes * np.float32(rng.uniform(0.04, 0.12))
    board = texture[..., None] * base
    board += (np.float32(0.75) - board) * haze[..., None]
    return cv2.resize(board, (width, height), interpolation=cv2.INTER_CUBIC)


def make_desk(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A table top around the page: wood grain, grey laminate or a dark surface.

    Built at quarter resolution: the desk is background, usually out of focus.
    """
    grid_height, grid_width = height // 4 + 1, width // 4 + 1
    choice = rng.integers(3)
    if choice == 0:
        base = np.array((0.55, 0.38, 0.22), np.float32) * np.float32(rng.uniform(0.7, 1.1))
        grain = cv2.resize(rng.random((max(2, grid_height), 4), dtype=np.float32), (grid_width, grid_height),
                           interpolation=cv2.INTER_CUBIC)
        small = (1.0 + (grain - 0.5) * 0.35)[..., None] * base
    else:
        base = np.array((0.52, 0.52, 0.50) if choice == 1 else (0.17, 0.16, 0.16), np.float32)
        small = (1.0 + (smooth_noise(rng, grid_height, grid_width, 2) - 0.5) * 0.1)[..., None] * base
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------------------
# Photographing the page


def random_homography(rng: np.random.Generator, shape, ink_box, style: PhotoStyle, desk: bool) -> np.ndarray:
    """A camera tilt that keeps the ink fully in frame (identity if none is found)."""
    height, width = shape
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    x0, y0, x1, y1 = ink_box
    box = np.float32([[[x0, y0]], [[x1, y0]], [[x1, y1]], [[x0, y1]]])
    margin = 0.02 * min(height, width)
    min_height = min(y1 - y0, MIN_DIGIT_FRACTION * height)
    for _ in range(12):
        if desk:
            scale = rng.uniform(0.72, 0.93)
            shift = rng.uniform(-1, 1, 2) * (1 - scale) * 0.5 * np.float32([width, height])
        else:
            # Enlarged past the wobble so the page edge stays outside the frame.
            extra = rng.uniform(0, 0.08)
            scale = 1 + 2.2 * style.tilt + extra
            shift = rng.uniform(-1, 1, 2) * extra * 0.5 * np.float32([width, height])
        wobble = rng.uniform(-1, 1, (4, 2)) * style.tilt * min(height, width)
        target = (corners - (width / 2, height / 2)) * scale + (width / 2, height / 2) + shift + wobble
        homography = cv2.getPerspectiveTransform(corners, target.astype(np.float32))
        moved = cv2.perspectiveTransform(box, homography).reshape(-1, 2)
        low, high = moved.min(axis=0), moved.max(axis=0)
        inside = (low >= margin).all() and (high <= (width - margin, height - margin)).all()
        if inside and np.ptp(moved[:, 1]) >= min_height:
            return homography
    return np.eye(3)


def place_page(page: np.ndarray, ink_box, style: PhotoStyle, rng: np.random.Generator) -> np.ndarray:
    """Warps the page into the frame, with a desk and the page's own shadow where uncovered."""
    height, width = page.shape[:2]
    desk = rng.random() < style.desk_probability
    homography = random_homography(rng, (height, width), ink_box, style, desk)
    warped = cv2.warpPerspective(page, homography, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if covers_frame(homography, height, width):
        return warped
    coverage = cv2.warpPerspective(np.ones((height, width), np.float32), homography, (width, height),
                                   flags=cv2.INTER_LINEAR)
    small = cv2.resize(coverage, (width // 4 + 1, height // 4 + 1), interpolation=cv2.INTER_AREA)
    shadow = cv2.resize(cv2.GaussianBlur(small, (0, 0), height / 480), (width, height))
    background = make_desk(rng, height, width) * (1.0 - 0.35 * shadow)[..., None]
    return warped + background * (1.0 - coverage)[..., None]


def covers_frame(homography: np.ndarray, height: int, width: int) -> bool:
    """True when the warped page fills the whole frame, so no desk shows."""
    corners = np.float32([[[0, 0]], [[width, 0]], [[width, height]], [[0, height]]])
    quad = cv2.perspectiveTransform(corners, homography).reshape(-1, 1, 2)
    frame = [(0.0, 0.0), (width - 1.0, 0.0), (width - 1.0, height - 1.0), (0.0, height - 1.0)]
    return all(cv2.pointPolygonTest(quad, point, True) >= 1.0 for point in frame)


def lighting_field(rng: np.random.Generator, height: int, width: int, style: PhotoStyle) -> np.ndarray:
    """RGB light multiplier: exposure, white balance, gradient, vignette and maybe a shadow.

    Light varies slowly, so it is computed on a quarter-resolution grid and upscaled,
    which is much cheaper than full-resolution math.
    """
    aspect = width / height
    ys = np.linspace(-1, 1, height // 4 + 1, dtype=np.float32)[:, None]
    xs = np.linspace(-aspect, aspect, width // 4 + 1, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0, style.gradient)
    field = 1.0 + gradient * 0.5 * (np.cos(angle) * xs / aspect + np.sin(angle) * ys)
    centre = rng.uniform(-0.3, 0.3, 2)
    radius2 = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (1 + aspect ** 2)
    field = field * (1.0 - rng.uniform(0, style.vignette) * radius2)
    if rng.random() < style.shadow_probability:
        field = field * soft_shadow(rng, xs, ys)
    # Auto-exposure meters the bright paper, so the brightest spot lands near full scale
    # instead of clipping a large area to white.
    field = field / field.max()
    cast = colour_cast(rng) if style.white_balance_error else np.ones(3, np.float32)
    tinted = field[..., None] * (cast * np.float32(rng.uniform(*style.exposure)))
    return cv2.resize(tinted.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def soft_shadow(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A round-edged shadow reaching in from outside the frame, like a hand or phone."""
    direction = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(1.4, 2.2)
    centre_x, centre_y = distance * np.cos(direction) * xs.max(), distance * np.sin(direction)
    reach = rng.uniform(0.3, 1.0)
    radius = np.hypot(centre_x, centre_y) - (np.hypot(xs.max(), 1.0) - reach)
    signed = np.sqrt((xs - centre_x) ** 2 + (ys - centre_y) ** 2) - radius
    softness = rng.uniform(0.03, 0.2)
    inside = 1.0 / (1.0 + np.exp(np.clip(signed / softness, -30, 30)))
    return 1.0 - rng.uniform(0.25, 0.55) * inside


def colour_cast(rng: np.random.Generator) -> np.ndarray:
    """White-balance error of a phone camera: warm lamp, cool daylight or slight drift."""
    roll = rng.random()
    if roll < 0.3:
        base = (1.0, 0.96, 0.9)
    elif roll < 0.45:
        base = (0.93, 0.97, 1.0)
    else:
        base = (1.0, 1.0, 1.0)
    return np.array(base, np.float32) * (1.0 + rng.normal(0, 0.02, 3)).astype(np.float32)


def camera_blur(
    image: np.ndarray, rng: np.random.Generator, style: PhotoStyle, ink_height: float
) -> np.ndarray:
    """Defocus and sometimes shake; blur is capped so small digits stay legible."""
    scale = image.shape[0] / 480
    sigma = min(rng.uniform(*style.blur) * scale, ink_height / 20)
    if sigma > 0.25:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < style.motion_probability:
        length = int(min(rng.uniform(2, 5) * scale, ink_height / 12))
        if length >= 2:
            kernel = np.zeros((2 * length + 1, 2 * length + 1), np.float32)
            angle = rng.uniform(0, np.pi)
            offset = length * np.array((np.cos(angle), np.sin(angle)))
            start, end = (length - offset).astype(int), (length + offset).astype(int)
            cv2.line(kernel, tuple(start), tuple(end), 1.0, 1)
            image = cv2.filter2D(image, -1, kernel / kernel.sum())
    return image


def sensor_noise(image: np.ndarray, rng: np.random.Generator, style: PhotoStyle) -> np.ndarray:
    """Adds grey per-pixel sensor noise plus blotchy low-resolution chroma noise, in place."""
    height, width = image.shape[:2]
    sigma = np.float32(rng.uniform(*style.noise))
    # Uniform noise of the same sigma looks the same after JPEG and is ~6x cheaper to draw.
    luma = rng.random((height, width), dtype=np.float32)
    luma -= 0.5
    luma *= sigma * np.float32(np.sqrt(12.0))
    image += luma[..., None]
    chroma = rng.standard_normal((height // 4 + 1, width // 4 + 1, 3), dtype=np.float32) * (sigma * 0.6)
    image += cv2.resize(chroma, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def phone_sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp masking that phone camera pipelines apply (half of the photos)."""
    if rng.random() < 0.5:
        return image
    blurred = cv2.GaussianBlur(image, (0, 0), 1.2 * image.shape[0] / 480)
    amount = rng.uniform(0.3, 0.8)
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


def photograph(page: np.ndarray, ink_box, style: PhotoStyle, rng: np.random.Generator) -> np.ndarray:
    """Simulates a phone photo of the page.

    Args:
        page: RGB float32 page in [0, 1].
        ink_box: (x0, y0, x1, y1) of the written ink on the page.
        style: How rough the photo is.
        rng: Random source.

    Returns:
        BGR uint8 image of the same size.
    """
    height, width = page.shape[:2]
    image = place_page(page, ink_box, style, rng)
    image *= lighting_field(rng, height, width, style)
    image = camera_blur(image, rng, style, ink_box[3] - ink_box[1])
    image = sensor_noise(image, rng, style)
    image = phone_sharpen(image, rng)
    np.maximum(image, 0.0, out=image)
    # convertScaleAbs rounds and saturates at 255; negatives were cleared just above.
    return cv2.cvtColor(cv2.convertScaleAbs(image, alpha=255.0), cv2.COLOR_RGB2BGR)


# ---------------------------------------------------------------------------
# Writing on the page


def choose_canvas(rng: np.random.Generator) -> tuple[int, int]:
    """Mostly 640x480 landscape, some portrait 480x640 and some 1024x768."""
    weights = [weight for _, weight in CANVAS_SIZES]
    return CANVAS_SIZES[rng.choice(len(CANVAS_SIZES), p=weights)][0]


def choose_dark_ink(rng: np.random.Generator, lightest: float = 0.3) -> Ink:
    """Black to dark-grey pens; `lightest` bounds how faded the ink may be."""
    value = rng.uniform(0.02, lightest)
    return Ink((value, value, value * rng.uniform(1.0, 1.4)), rng.uniform(0.85, 1.0))


def choose_colour_ink(rng: np.random.Generator) -> Ink:
    """Blue ballpoint or red pen."""
    if rng.random() < 0.6:
        colour = (rng.uniform(0.05, 0.18), rng.uniform(0.15, 0.32), rng.uniform(0.5, 0.78))
    else:
        colour = (rng.uniform(0.72, 0.88), rng.uniform(0.06, 0.2), rng.uniform(0.08, 0.22))
    return Ink(colour, rng.uniform(0.85, 1.0))


def choose_chalk(rng: np.random.Generator) -> Ink:
    """White or pale yellow chalk."""
    colour = (0.93, 0.93, 0.9) if rng.random() < 0.85 else (0.95, 0.92, 0.7)
    brightness = rng.uniform(0.85, 1.0)
    return Ink(tuple(channel * brightness for channel in colour), rng.uniform(0.8, 0.95), chalk=True)


def write_ink(page: np.ndarray, glyph: Glyph, centre, angle: float, ink: Ink, rng: np.random.Generator):
    """Writes a glyph on the page centred at `centre`, rotated by `angle` degrees.

    Returns:
        Ink bounding box (x0, y0, x1, y1) on the page.
    """
    patch = rotate_mask(glyph.mask, angle)
    patch = add_chalk_texture(patch, rng, ink) if ink.chalk else add_pen_pressure(patch, rng, ink)
    height, width = page.shape[:2]
    top = int(round(centre[1] - patch.shape[0] / 2))
    left = int(round(centre[0] - patch.shape[1] / 2))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + patch.shape[0], height), min(left + patch.shape[1], width)
    alpha = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    region = page[y0:y1, x0:x1]
    colour = np.asarray(ink.colour, np.float32)
    if ink.chalk:
        region += (colour - region) * alpha[..., None]
    else:
        multiply_layer(region, alpha, colour)
    return ink_bounds(alpha, x0, y0)


def ink_bounds(alpha: np.ndarray, x0: int, y0: int):
    """Bounding box of visible ink in page coordinates."""
    rows = np.nonzero(alpha.max(axis=1) > 0.1)[0]
    columns = np.nonzero(alpha.max(axis=0) > 0.1)[0]
    return (x0 + columns[0], y0 + rows[0], x0 + columns[-1] + 1, y0 + rows[-1] + 1)


def rotated_extent(glyph: Glyph, angle: float) -> tuple[float, float]:
    """Width and height of a glyph's box after rotation."""
    height, width = glyph.mask.shape
    radians = np.deg2rad(angle)
    cos, sin = abs(np.cos(radians)), abs(np.sin(radians))
    return width * cos + height * sin, width * sin + height * cos


def free_position(rng, shape, glyph: Glyph, angle: float, spread: float = 1.0):
    """A random centre keeping the glyph inside the page; spread < 1 keeps it near the middle."""
    height, width = shape
    extent_x, extent_y = rotated_extent(glyph, angle)
    margin = 0.04 * min(height, width)
    room_x = max(0.0, (width - extent_x) / 2 - margin) * spread
    room_y = max(0.0, (height - extent_y) / 2 - margin) * spread
    return width / 2 + rng.uniform(-room_x, room_x), height / 2 + rng.uniform(-room_y, room_y)


def line_position(rng, shape, glyph: Glyph, rows: np.ndarray, start_x: float):
    """A centre that puts the glyph's baseline on one of the ruled/grid lines, or None."""
    height, width = shape
    glyph_height, glyph_width = glyph.mask.shape
    margin = 0.03 * min(height, width)
    sits = rng.uniform(-0.08, 0.04) * glyph_height  # people write a little above or onto the line
    usable = [row for row in rows if row + glyph.top + sits >= margin
              and row + glyph.top + sits + glyph_height <= height - margin]
    low, high = start_x + glyph_width / 2, width - margin - glyph_width / 2
    if not usable or low > high:
        return None
    row = usable[rng.integers(len(usable))]
    return rng.uniform(low, high), row + glyph.top + sits + glyph_height / 2


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform in log space, so small sizes are as common as large ones."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


# ---------------------------------------------------------------------------
# Kinds: each returns a BGR uint8 image and the JPEG quality to save it with.


def font_digit(rng, assets: Assets, label: str, height_px: float, stroke_range=(0.05, 0.14)) -> Glyph:
    """A single font digit with a random pen thickness."""
    font = pick_font(rng, assets.fonts)
    return render_glyph(font, label, height_px, rng.uniform(*stroke_range))


def write_and_photograph(rng, page, glyph, centre, angle, ink, style):
    """Writes the glyph, photographs the page and picks a JPEG quality."""
    ink_box = write_ink(page, glyph, centre, angle, ink, rng)
    image = photograph(page, ink_box, style, rng)
    return image, int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))


def make_font_clean(rng, assets: Assets, label: str, shape):
    """Dark ink digit, centred-ish, on plain white paper in soft even light."""
    page = make_paper(rng, *shape, white_only=True)
    glyph = font_digit(rng, assets, label, rng.uniform(0.25, 0.6) * shape[0])
    angle = rng.uniform(-4, 4)
    centre = free_position(rng, shape, glyph, angle, spread=0.3)
    return write_and_photograph(rng, page, glyph, centre, angle, choose_dark_ink(rng, 0.12), CLEAN_STYLE)


def make_font_photo(rng, assets: Assets, label: str, shape):
    """A rough phone photo: any paper, off-centre digit at 5%-60% of the height."""
    page = make_paper(rng, *shape)
    glyph = font_digit(rng, assets, label, log_uniform(rng, 0.05, 0.6) * shape[0])
    angle = rng.uniform(-12, 12)
    centre = free_position(rng, shape, glyph, angle)
    return write_and_photograph(rng, page, glyph, centre, angle, choose_dark_ink(rng), PHOTO_STYLE)


def make_ruled(rng, assets: Assets, label: str, shape, ink: Ink | None = None):
    """A digit written on the blue lines of a notebook page with a red margin."""
    page = make_paper(rng, *shape)
    rows, spacing, start_x = draw_ruled_lines(page, rng, shape[0] / 480)
    span = rng.uniform(0.65, 0.95) if rng.random() < 0.8 else rng.uniform(1.2, 1.8)
    glyph = font_digit(rng, assets, label, max(MIN_DIGIT_FRACTION * shape[0], span * spacing), (0.05, 0.12))
    angle = rng.uniform(-4, 4)
    centre = line_position(rng, shape, glyph, rows, start_x) or free_position(rng, shape, glyph, angle)
    return write_and_photograph(rng, page, glyph, centre, angle, ink or choose_dark_ink(rng), NOTEBOOK_STYLE)


def make_grid(rng, assets: Assets, label: str, shape, ink: Ink | None = None):
    """A digit on squared maths paper, spanning one to a few cells."""
    page = make_paper(rng, *shape, white_only=True)
    rows, cell = draw_grid(page, rng, shape[0] / 480)
    height = max(MIN_DIGIT_FRACTION * shape[0], rng.uniform(0.8, 3.5) * cell)
    glyph = font_digit(rng, assets, label, height, (0.05, 0.12))
    angle = rng.uniform(-4, 4)
    centre = line_position(rng, shape, glyph, rows, 0.0) or free_position(rng, shape, glyph, angle)
    return write_and_photograph(rng, page, glyph, centre, angle, ink or choose_dark_ink(rng), NOTEBOOK_STYLE)


def make_color_ink(rng, assets: Assets, label: str, shape):
    """Blue or red pen on plain, ruled or grid paper."""
    ink = choose_colour_ink(rng)
    roll = rng.random()
    if roll < 0.25:
        return make_ruled(rng, assets, label, shape, ink)
    if roll < 0.4:
        return make_grid(rng, assets, label, shape, ink)
    page = make_paper(rng, *shape)
    glyph = font_digit(rng, assets, label, log_uniform(rng, 0.1, 0.55) * shape[0])
    angle = rng.uniform(-8, 8)
    centre = free_position(rng, shape, glyph, angle)
    return write_and_photograph(rng, page, glyph, centre, angle, ink, NOTEBOOK_STYLE)


def make_chalkboard_digit(rng, assets: Assets, label: str, shape):
    """A chalk digit on a smudged green or black board."""
    page = make_chalkboard(rng, *shape)
    glyph = font_digit(rng, assets, label, rng.uniform(0.15, 0.6) * shape[0], (0.06, 0.13))
    angle = rng.uniform(-8, 8)
    centre = free_position(rng, shape, glyph, angle)
    return write_and_photograph(rng, page, glyph, centre, angle, choose_chalk(rng), BOARD_STYLE)


def make_pen_digit(rng, assets: Assets, label: str, shape):
    """A UCI pen digit (43 writers) drawn as ink on paper."""
    choices = rng.permutation(np.nonzero(assets.pen_labels == int(label))[0])
    stroke_ratio = rng.uniform(0.06, 0.12)
    for index in choices:
        mask = pen_stroke_mask(assets.pen_images[index], stroke_ratio)
        # 8x8 cells often fill a small loop solid; a 9 or 6 without its loop is not
        # readable as that digit, so such samples are skipped rather than mislabelled.
        if count_holes(mask) >= MIN_LOOPS.get(label, 0):
            break
    page = make_paper(rng, *shape)
    glyph = render_pen_digit(mask, rng.uniform(0.12, 0.55) * shape[0])
    angle = rng.uniform(-8, 8)
    centre = free_position(rng, shape, glyph, angle)
    return write_and_photograph(rng, page, glyph, centre, angle, choose_dark_ink(rng), NOTEBOOK_STYLE)


def make_multi_digit(rng, assets: Assets, label: str, shape, paper: str | None = None):
    """A 2-5 digit number on one line, on plain, ruled or grid paper."""
    paper = paper or ("plain", "ruled", "grid")[rng.integers(3)]
    page = make_paper(rng, *shape, white_only=paper == "grid")
    scale = shape[0] / 480
    rows, start_x, digit_height = None, 0.0, log_uniform(rng, 0.07, 0.3) * shape[0]
    if paper == "ruled":
        rows, spacing, start_x = draw_ruled_lines(page, rng, scale)
        digit_height = rng.uniform(0.65, 0.95) * spacing
    elif paper == "grid":
        rows, cell = draw_grid(page, rng, scale)
        digit_height = rng.uniform(0.8, 2.5) * cell
    font = pick_font(rng, assets.fonts)
    stroke = rng.uniform(0.05, 0.12)
    smallest = MIN_DIGIT_FRACTION * shape[0]
    # Shrink until the number fits 88% of the width; long numbers in big writing overflow.
    for _ in range(6):
        glyphs = [render_glyph(font, digit, max(smallest, digit_height * rng.uniform(0.94, 1.06)), stroke)
                  for digit in label]
        number = compose_number(glyphs, rng)
        if number.mask.shape[1] <= 0.88 * shape[1] or digit_height <= smallest:
            break
        digit_height *= 0.8 * shape[1] / number.mask.shape[1]
    angle = rng.uniform(-5, 5)
    centre = line_position(rng, shape, number, rows, start_x) if rows is not None else None
    centre = centre or free_position(rng, shape, number, angle)
    style = PHOTO_STYLE if rng.random() < 0.4 else NOTEBOOK_STYLE
    return write_and_photograph(rng, page, number, centre, angle, choose_dark_ink(rng), style)


def make_blank_page(rng, assets: Assets, label: str, shape):
    """A sheet with no writing at all (for the demo's negative case)."""
    page = make_paper(rng, *shape)
    height, width = shape
    image = photograph(page, (width // 3, height // 3, 2 * width // 3, 2 * height // 3), NOTEBOOK_STYLE, rng)
    return image, 85


KIND_MAKERS = {
    "font_clean": make_font_clean,
    "font_photo": make_font_photo,
    "ruled": make_ruled,
    "grid": make_grid,
    "color_ink": make_color_ink,
    "chalkboard": make_chalkboard_digit,
    "pen_digits": make_pen_digit,
    "multi_digit": make_multi_digit,
}


# ---------------------------------------------------------------------------
# Assets


def knn_agrees(features: np.ndarray, labels: np.ndarray, neighbours: int = 5) -> np.ndarray:
    """Leave-one-out k-NN check: True where a sample's neighbours vote for its own label."""
    squared = (features ** 2).sum(axis=1)
    distances = squared[:, None] + squared[None, :] - 2.0 * features @ features.T
    np.fill_diagonal(distances, np.inf)
    nearest = np.argpartition(distances, neighbours, axis=1)[:, :neighbours]
    votes = np.zeros((len(labels), 10), np.int64)
    np.add.at(votes, (np.arange(len(labels))[:, None], labels[nearest]), 1)
    return votes.argmax(axis=1) == labels


def read_uci_pen_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 UCI pen digits bundled with scikit-learn: (N x 8 x 8 cell counts 0-16, labels)."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        path = package / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            # The same file and parse as sklearn.datasets.load_digits, without its ~2 s import.
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images, data.target.astype(np.int64)


@functools.lru_cache(maxsize=1)
def load_pen_digits() -> tuple[np.ndarray, np.ndarray]:
    """UCI pen digits scaled to [0, 1], minus the ~1.5% whose neighbours disagree.

    Those few are ambiguous even to a person (e.g. 1/7, 8/9 written alike); keeping them
    would make the test measure label noise rather than the reader.
    """
    images, labels = read_uci_pen_digits()
    images = images.astype(np.float32) / 16.0
    keep = knn_agrees(images.reshape(len(images), -1).astype(np.float64), labels)
    return images[keep], labels[keep]


def load_assets() -> Assets:
    """Loads fonts and pen digits.

    Raises:
        RuntimeError: When no handwriting font is installed.
    """
    fonts = find_handwriting_fonts()
    if not fonts:
        raise RuntimeError("no handwriting fonts found; run: bash scripts/install_fonts.sh")
    pen_images, pen_labels = load_pen_digits()
    return Assets(fonts, pen_images, pen_labels)


# ---------------------------------------------------------------------------
# Output


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Writes via a temp file in the same directory and os.replace, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def encode_jpeg(image: np.ndarray, quality: int, max_bytes: int | None = None) -> bytes:
    """JPEG-encodes a BGR image, lowering quality (not below 40) until it fits max_bytes."""
    while True:
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("cv2.imencode failed to encode JPEG")
        if max_bytes is None or buffer.size <= max_bytes or quality <= 40:
            return buffer.tobytes()
        quality -= 5


def write_labels(out_dir: Path, rows: list[tuple[str, str, str]]) -> None:
    """Writes labels.csv (path,label,kind) atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("path", "label", "kind"))
    writer.writerows(rows)
    write_bytes_atomic(out_dir / "labels.csv", text.getvalue().encode("utf-8"))


def kind_labels(kind_index: int, count: int, seed: int) -> list[int]:
    """Balanced digit labels for a kind (each digit count/10 times), shuffled by seed."""
    labels = np.arange(count) % 10
    return list(np.random.default_rng([seed, kind_index, 1_000_003]).permutation(labels))


def random_number(rng: np.random.Generator) -> str:
    """A 2-5 digit number, no leading zero (CSV readers would strip it); some are years."""
    if rng.random() < 0.2:
        return str(rng.integers(1900, 2100))
    length = int(rng.integers(2, 6))
    return str(rng.integers(1, 10)) + "".join(str(digit) for digit in rng.integers(0, 10, length - 1))


def generate_set(out_dir: Path, per_kind: int = 100, seed: int = 0) -> list[tuple[str, str, str]]:
    """Writes the realistic test set.

    Every image has its own generator seeded by (seed, kind, index), so any one
    image is reproducible on its own and identical across runs.

    Args:
        out_dir: Output directory (created if missing).
        per_kind: Images per kind.
        seed: Base random seed.

    Returns:
        The labels.csv rows (path, label, kind).

    Raises:
        ValueError: If per_kind < 1.
        RuntimeError: If no handwriting font is installed.
    """
    if per_kind < 1:
        raise ValueError(f"per_kind must be at least 1, got {per_kind}")
    assets = load_assets()
    rows = []
    for kind_index, kind in enumerate(KINDS):
        labels = kind_labels(kind_index, per_kind, seed)
        for index in range(per_kind):
            data, label = make_image(assets, seed, kind, index, None if kind == "multi_digit" else str(labels[index]))
            relative = f"{kind}/{index:04d}.jpg"
            write_bytes_atomic(out_dir / relative, data)
            rows.append((relative, label, kind))
    write_labels(out_dir, rows)
    return rows


def make_image(assets: Assets, seed: int, kind: str, index: int, label: str | None = None) -> tuple[bytes, str]:
    """Image `index` of `kind` in the set `seed`, exactly as `generate_set` writes it: JPEG bytes and label.

    Args:
        assets: `load_assets()`.
        seed: The set's base seed.
        kind: One of `KINDS`.
        index: The image's number within its kind.
        label: The digit to draw; None for "multi_digit", whose number is drawn from the image's own seed.
    """
    if kind not in KIND_MAKERS:
        raise ValueError(f"kind={kind!r}: choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    if kind == "multi_digit":
        label = random_number(rng)
    elif label is None:
        raise ValueError(f"kind={kind!r} draws one given digit: pass label")
    image, quality = KIND_MAKERS[kind](rng, assets, label, choose_canvas(rng))
    return encode_jpeg(image, quality), label


# (file name, kind, label, seed offset, extra arguments). Seed offsets were chosen by
# looking at the results so the demo shows each situation clearly.
SAMPLE_SPECS = (
    ("four_clean.jpg", "font_clean", "4", 0, {}),
    ("two_photo_desk.jpg", "font_photo", "2", 3, {}),
    ("seven_ruled.jpg", "ruled", "7", 2, {}),
    ("three_grid.jpg", "grid", "3", 0, {}),
    ("five_blue_ink.jpg", "color_ink", "5", 2, {}),
    ("nine_chalkboard.jpg", "chalkboard", "9", 3, {}),
    ("six_pen.jpg", "pen_digits", "6", 2, {}),
    ("year_2024.jpg", "multi_digit", "2024", 2, {"paper": "plain"}),
    ("extension_4071.jpg", "multi_digit", "4071", 2, {"paper": "grid"}),
    ("number_38_ruled.jpg", "multi_digit", "38", 2, {"paper": "ruled"}),
    ("blank_page.jpg", "blank", "", 3, {}),
)


def generate_samples(out_dir: Path, seed: int = 0, max_bytes: int = 60_000) -> list[tuple[str, str, str]]:
    """Writes the small curated demo folder (640x480 JPEGs under max_bytes) and labels.csv.

    Args:
        out_dir: Output directory.
        seed: Base random seed.
        max_bytes: Largest allowed JPEG size.

    Returns:
        The labels.csv rows (path, label, kind).
    """
    assets = load_assets()
    makers = dict(KIND_MAKERS, blank=make_blank_page)
    rows = []
    for index, (name, kind, label, offset, extra) in enumerate(SAMPLE_SPECS):
        rng = np.random.default_rng([seed, 7_777, index, offset])
        image, quality = makers[kind](rng, assets, label, (480, 640), **extra)
        write_bytes_atomic(out_dir / name, encode_jpeg(image, max(quality, 70), max_bytes))
        rows.append((name, label, kind))
    write_labels(out_dir, rows)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description="Write the realistic handwritten-digit photo test set, or the small demo folder."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the full test set here")
    target.add_argument("--samples", type=Path, help="write the small curated demo folder here")
    parser.add_argument("--per-kind", type=int, default=100, help="images per kind with --out (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    started = time.perf_counter()
    destination = args.samples if args.samples is not None else args.out
    try:
        if args.samples is not None:
            rows = generate_samples(args.samples, args.seed)
        else:
            rows = generate_set(args.out, args.per_kind, args.seed)
    except (ValueError, RuntimeError) as error:  # bad --per-kind, or no fonts installed
        print(f"make_realistic_set.py: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} images + labels.csv to {destination} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
