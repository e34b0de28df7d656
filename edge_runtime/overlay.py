"""Pure drawing: a reading drawn onto the image (OpenCV) or into a Matplotlib figure; no I/O, no windows."""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import constants
from edge_runtime.segment import result as segment_result

_COLOURS = {  # BGR
    constants.STATUS_OK: (60, 180, 60),
    constants.STATUS_REJECTED: (0, 150, 255),
    constants.STATUS_NO_DIGIT: (160, 160, 160),
    constants.STATUS_ERROR: (0, 0, 230),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
# A cut-out cell of 60 x 34 px drawn at its own size shows boxes one pixel apart and labels nobody can
# read, so smaller images are enlarged by a whole factor (each pixel a visible square) before drawing.
MIN_DRAWN_SIDE = 480


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A BGR copy of a gray or BGR uint8 image."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()


def draw_reading(image: np.ndarray, result, roi: tuple[int, int, int, int] | None = None,
                 caption: str | None = None, headline=None, banner: bool = True) -> np.ndarray:
    """Returns a BGR copy of `image` with each digit's box, label and confidence, and the number read.

    An image whose longer side is under `MIN_DRAWN_SIDE` is drawn enlarged by the smallest whole factor
    that reaches it, boxes included, so that its labels can be read.

    Args:
        image: The image the result was read from (gray or BGR uint8).
        result: A `reader.ReadResult` whose boxes are in `image` coordinates.
        roi: An x, y, width, height box to outline (the camera's region of interest).
        caption: Extra text for the banner, e.g. "12.5 FPS".
        headline: The banner's number instead of `result`'s, as (digits, confidence, status): the camera
            shows its vote over the last frames there, and each box with the digit in it now.
        banner: Write the number (and caption) at the top left; the live window shows them in its own
            header instead.
    """
    canvas, zoom = _enlarged(to_bgr(image))
    scale = max(canvas.shape[:2]) / 640.0
    thickness = max(1, int(round(2 * scale)))
    if roi is not None:
        x, y, width, height = _zoomed(roi, zoom)
        cv2.rectangle(canvas, (x, y), (x + width, y + height), (255, 200, 0), thickness, cv2.LINE_AA)
    for box, reason in getattr(result, "dropped", ()):
        x, y, width, height = _zoomed(box, zoom)
        # Pieces not read as digits (kept with --explain): thin grey boxes with the reason's short form
        # (the whole reason is in --explain's text); specks are too many and too small to label.
        cv2.rectangle(canvas, (x, y), (x + width, y + height), _DROPPED_COLOUR, 1, cv2.LINE_AA)
        if reason != segment_result.SPECK:
            _text(canvas, short_reason(reason), (x, y + height + int(14 * scale)), 0.4 * scale, _DROPPED_COLOUR, 1)
    for digit in result.items:
        colour = _COLOURS[constants.STATUS_OK if digit.accepted else constants.STATUS_REJECTED]
        x, y, width, height = _zoomed(digit.box, zoom)
        cv2.rectangle(canvas, (x, y), (x + width, y + height), colour, thickness, cv2.LINE_AA)
        label = f"{digit.label if digit.accepted else '?'} {digit.confidence:.0%}"
        _text(canvas, label, (x, max(0, y - int(6 * scale))), 0.6 * scale, colour, thickness)
    if banner:
        digits, confidence, status = headline or (result.digits, result.confidence, result.status)
        text = _banner_text(result, (digits, confidence, status)) + (f"  {caption}" if caption else "")
        _text(canvas, text, (int(8 * scale), int(28 * scale)), 0.8 * scale, _COLOURS[status], thickness)
    return canvas


_DROPPED_COLOUR = (170, 170, 170)


def _enlarged(canvas: np.ndarray) -> tuple[np.ndarray, int]:
    """`canvas` enlarged by a whole factor until its longer side reaches `MIN_DRAWN_SIDE`, and the factor."""
    zoom = -(-MIN_DRAWN_SIDE // max(1, max(canvas.shape[:2])))
    if zoom <= 1:
        return canvas, 1
    return cv2.resize(canvas, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST), zoom


def _zoomed(box, zoom: int) -> tuple[int, int, int, int]:
    return tuple(int(value) * zoom for value in box)


def short_reason(reason: str) -> str:
    """A dropped piece's reason up to its explanation: "part of a broken line: thin 1s stacked..." gives
    "part of a broken line"; "not a digit (model, 99.5%); read as digits..." gives "not a digit (model, 99.5%)"."""
    cut = min((index for index in (reason.find(":"), reason.find(";")) if index > 0), default=len(reason))
    return reason[:cut]


def _banner_text(result, headline=None) -> str:
    digits, confidence, status = headline or (result.digits, result.confidence, result.status)
    if status == constants.STATUS_ERROR:
        return f"error: {result.error}"[:80]
    if status == constants.STATUS_NO_DIGIT:
        return "no digit found"
    return f"{digits}  ({confidence:.0%}{', rejected' if status == constants.STATUS_REJECTED else ''})"


def _text(canvas, text, origin, font_scale, colour, thickness) -> None:
    """Text with a dark outline, readable on light paper and dark boards alike."""
    origin = (int(origin[0]), max(int(14 * font_scale), int(origin[1])))
    cv2.putText(canvas, text, origin, _FONT, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, _FONT, font_scale, colour, thickness, cv2.LINE_AA)


def reading_figure(image: np.ndarray, result, figure=None, max_digits: int = 8):
    """The classic "image plus predicted digit" view, made useful.

    Top: the photo with boxes and the number read. Below, per digit: the 28x28 crop the model saw
    and its ten class probabilities as bars.

    Args:
        image: The image read (gray or BGR uint8).
        result: Its `reader.ReadResult`.
        figure: A Matplotlib figure to draw into (e.g. from pyplot for a window); default a new
            headless `matplotlib.figure.Figure`.
        max_digits: Columns of crops and bars shown.

    Returns:
        The figure.
    """
    from matplotlib import figure as figure_module  # Matplotlib loads only when something is drawn.

    figure = figure or figure_module.Figure(figsize=(10, 7))
    figure.clear()
    items = result.items[:max_digits]
    columns = max(1, len(items))
    grid = figure.add_gridspec(3, columns, height_ratios=(3.2, 1, 1))
    photo = figure.add_subplot(grid[0, :])
    photo.imshow(cv2.cvtColor(draw_reading(image, result), cv2.COLOR_BGR2RGB))
    photo.set_title(f"{result.source}: {_banner_text(result)}", fontsize=10)
    photo.axis("off")
    for column, digit in enumerate(items):
        crop_axis = figure.add_subplot(grid[1, column])
        crop_axis.imshow(digit.crop, cmap="gray", vmin=0, vmax=1)
        crop_axis.set_title(f"{digit.label} ({digit.confidence:.0%})", fontsize=9)
        crop_axis.axis("off")
        bars = figure.add_subplot(grid[2, column])
        colours = ["tab:green" if index == int(np.argmax(digit.probabilities)) else "tab:gray"
                   for index in range(len(digit.probabilities))]
        bars.bar(range(len(digit.probabilities)), digit.probabilities, color=colours)
        bars.set(ylim=(0, 1), xticks=range(len(digit.probabilities)))
        # An eleventh class is "not a digit": labelled "10" it read as a digit ten.
        bars.set_xticklabels([str(index) if index < 10 else "✗" for index in range(len(digit.probabilities))])
        bars.tick_params(labelsize=7)
    figure.tight_layout()
    return figure
