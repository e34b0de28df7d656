"""The segmentation pipeline: runs the stages in order and collects the crops and the reasons."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from edge_runtime import constants
from edge_runtime.segment import boxes, result, tilt
from edge_runtime.segment.components import Candidate, find_candidates, merge_faint_joins, merge_pieces
from edge_runtime.segment.crop import digit_image, is_tile, source_box, source_boxes, tile_digits
from edge_runtime.segment.filters import Sifted, most_prominent, on_the_page, plausible_digits
from edge_runtime.segment.light import Light, as_gray, measure_light
from edge_runtime.segment.mask import find_ink, rule_boxes, table_boxes
from edge_runtime.segment.options import PreprocessOptions
from edge_runtime.segment.order import median_height, reading_order
from edge_runtime.segment.result import DigitCrop, Dropped, Event, Segmentation
from edge_runtime.segment.split import keep_unsplit, split_touching
from edge_runtime.segment.tuning import Tuning

__all__ = ["extract_digits", "segment_image"]

_DEFAULT_OPTIONS = PreprocessOptions()


def segment_image(image: np.ndarray, options: PreprocessOptions = _DEFAULT_OPTIONS) -> Segmentation:
    """Finds the digits in an image, in reading order, and says what else it found and why it dropped it.

    Small gray tiles (at most `Tuning.tile_max_side` pixels a side, roughly square) are taken to
    hold one digit, as MNIST images do, and are only inverted and re-centred when needed. Other
    images are segmented in stages (light, mask, components, filters, split, order, crop). With
    `options.single`, the most prominent digit is the one with the largest ink mass (sum of ink
    contrast), weighted down by up to half with its distance from the image centre.

    Args:
        image: A uint8 gray (HxW) or BGR (HxWx3, or HxWx4 whose alpha is ignored) image.
        options: How to look.

    Returns:
        The crops (text lines top to bottom, left to right within a line), the dropped pieces
        with their reasons, the merges and splits, and the polarity.

    Raises:
        TypeError: `image` is not a numpy array.
        ValueError: `image` is not uint8, empty, or of an unsupported shape.
    """
    return _segment_checked(image, options, explain=True)


def extract_digits(image: np.ndarray, options: PreprocessOptions = _DEFAULT_OPTIONS) -> list[DigitCrop]:
    """Finds the digits in an image, in reading order: the crops of `segment_image`, as a list.

    The same crops, without collecting the reasons: a grainy photo drops a hundred specks and a
    ruled page's rules take a labelling to box, which the camera's per-frame budget cannot spare.

    Raises:
        TypeError: `image` is not a numpy array.
        ValueError: `image` is not uint8, empty, or of an unsupported shape.
    """
    return list(_segment_checked(image, options, explain=False).crops)


def _segment_checked(image: np.ndarray, options: PreprocessOptions, explain: bool) -> Segmentation:
    image = _checked_image(image)
    if is_tile(image, options.tuning):
        crops, dark_on_light = tile_digits(as_gray(image), options.polarity, options.tuning)
        polarity = constants.INK_DARK_ON_LIGHT if dark_on_light else constants.INK_LIGHT_ON_DARK
        return Segmentation(tuple(crops), (), (), polarity)
    factor = _upscale_factor(image.shape[:2], options.tuning)
    if factor == 1:
        return _segment(image, options, zoom=True, explain=explain)
    # A cut-out cell or strip holds digits only a few pixels high: every size the stages judge by
    # (specks, stroke widths, rule lengths) assumes more, so it is segmented enlarged.
    enlarged = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return _shrunk(_segment(enlarged, options, zoom=True, explain=explain), factor)


def _upscale_factor(shape: tuple[int, int], tuning) -> float:
    """How much a small image is enlarged before it is segmented: to `upscale_below` pixels on its
    shorter side (at most `max_upscale` times), 1 for an image large enough, or too small to hold a digit.

    Every small cell is segmented at one size. A whole factor (the smallest that reached
    `upscale_below`) put a 34-px logbook cell at 68 px but the same cell scaled by 0.8 at 81 and by 1.25
    at 84, and its cuts changed with the size (twelfth session, the real photos' everyday versions:
    numbers 336 -> 341 of 440, singles 1,203 -> 1,206; made harder: 357 -> 366 and 1,476 -> 1,477; at the
    CLI's default the everyday versions accept 30 wrong numbers and 5 wrong singles instead of 34 and 8;
    forms, dates, labels, large photos and realistic numbers unchanged).
    """
    shorter = min(shape)
    if tuning.upscale_below <= 0 or shorter >= tuning.upscale_below or shorter < 2 * tuning.min_digit_height:
        return 1.0
    return min(float(tuning.max_upscale), tuning.upscale_below / shorter)


def _shrunk(segmentation: Segmentation, factor: float) -> Segmentation:
    """Boxes found on a copy enlarged by `factor`, in the image as given (each box covering every input
    pixel its enlarged pixels touch)."""
    def box(value):
        x, y, width, height = value
        left, top = int(x / factor), int(y / factor)
        return (left, top, max(1, math.ceil((x + width) / factor) - left),
                max(1, math.ceil((y + height) / factor) - top))

    return _mapped(segmentation, box)


def _mapped(segmentation: Segmentation, box_map) -> Segmentation:
    """The segmentation with every box (crops, dropped pieces, events and their parts) passed through `box_map`."""
    crops = tuple(dataclasses.replace(crop, box=box_map(crop.box)) for crop in segmentation.crops)
    dropped = tuple(item._replace(box=box_map(item.box)) for item in segmentation.dropped)
    events = tuple(dataclasses.replace(event, box=box_map(event.box), parts=tuple(box_map(part) for part in event.parts))
                   for event in segmentation.events)
    return Segmentation(crops, dropped, events, segmentation.polarity)


def _checked_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, not {image.dtype}")
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        if image.shape[2] == 1:
            image = image[:, :, 0]
        elif image.shape[2] == 4:
            image = image[:, :, :3]
    elif image.ndim != 2:
        raise ValueError(f"image must be HxW gray or HxWx3 BGR, not shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    return image


class _Notes:
    """Collects dropped pieces and events in input coordinates; with `explain` off, ignores them."""

    def __init__(self, explain: bool, scale: int, shape: tuple[int, ...]):
        self.explain, self.scale, self.shape = explain, scale, shape
        self.dropped: list[Dropped] = []
        self.events: list[Event] = []

    def box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return source_box(box, self.scale, self.shape)

    def drop(self, pieces, stage: str) -> None:
        """Notes (candidate, reason) pairs."""
        if self.explain:
            self.dropped.extend(Dropped(self.box(candidate.box), reason, stage) for candidate, reason in pieces)

    def drop_boxes(self, boxes, reason: str, stage: str) -> None:
        """Notes working-resolution boxes, an (N, 4) array or a list of tuples, dropped for one reason."""
        if self.explain and len(boxes):
            boxes = source_boxes(np.asarray(boxes), self.scale, self.shape)
            self.dropped += [Dropped(box, reason, stage) for box in boxes]

    def event(self, kind: str, box: tuple[int, int, int, int], parts: tuple, reason: str) -> None:
        if self.explain:
            self.events.append(Event(kind, self.box(box), tuple(self.box(part) for part in parts), reason))


def _segment(image: np.ndarray, options: PreprocessOptions, zoom: bool, explain: bool,
             level_page: bool = True) -> Segmentation:
    """Normalises light, thresholds, removes ruled lines, then groups components into digits.

    Text lines whose digits came out small at working resolution are segmented again from the
    input at full resolution (see `_zoom_in`), where touching small digits come apart. A page whose
    rules lean too far to be removed is segmented again turned level (see `tilt`), unless
    `level_page` is False.
    """
    tuning = options.tuning
    height, width = image.shape[:2]
    if min(height, width) < tuning.min_digit_height:
        event = Event(result.TOO_SMALL_IMAGE, (0, 0, width, height), (), "smaller than one digit")
        return Segmentation((), (), (event,), options.polarity)
    light = measure_light(image, options.polarity, options.work_side, tuning)
    ink_mask = find_ink(light, options.min_contrast, tuning)
    if ink_mask is None:
        event = Event(result.NO_INK, (0, 0, width, height), (), "no writing above the paper's grain")
        return Segmentation((), (), (event,), light.polarity)
    notes = _Notes(explain, light.scale, image.shape)
    if explain:
        notes.drop_boxes(rule_boxes(ink_mask, tuning.min_digit_height), result.RULED_LINE, "mask")
        notes.drop_boxes(table_boxes(ink_mask), result.OFF_THE_PAPER, "mask")
    components = find_candidates(ink_mask.cleaned, tuning)
    labels = components.labels
    if level_page:
        angle = tilt.rule_tilt(components.candidates, labels, ink_mask.stroke_width, tuning)
        if angle is not None:
            return _levelled(image, angle, options, zoom, explain)
    frames = boxes.find_frames(components.candidates, labels, tuning)
    if frames:
        # A form's boxes: their lines are erased and the pieces found again, free of them.
        notes.drop_boxes([frame.box for frame in frames], result.BOX_OUTLINE, "boxes")
        ink_mask = dataclasses.replace(ink_mask, cleaned=boxes.erase_frames(ink_mask.cleaned, frames, labels, tuning))
        components = find_candidates(ink_mask.cleaned, tuning)
        labels = components.labels
    if explain:
        notes.drop_boxes(components.specks(tuning.min_area), result.SPECK, "components")
    notes.drop_boxes(components.overflow, result.TOO_MANY, "components")
    sifted = on_the_page(components.candidates, light, labels, tuning)
    notes.drop(sifted.dropped, "filters")
    sides = boxes.without_box_sides(sifted.kept, light, labels, ink_mask, tuning)  # before merging takes them in
    notes.drop(sides.dropped, "boxes")
    merged = merge_pieces(sides.kept, ink_mask.stroke_width, tuning)
    faint = merge_faint_joins(merged.candidates, labels, light.ink, ink_mask, tuning)
    for merge in merged.merges + faint.merges:
        notes.event(result.MERGED, merge.merged.box, (merge.first.box, merge.second.box), merge.reason)
    plausible = plausible_digits(faint.candidates, light, ink_mask, labels, tuning)
    if tuning.rule_min_cross > 0 and any(reason == result.TOO_WIDE for _, reason in plausible.dropped):
        # A piece too wide for any digit: a run kept as a digit's bar (shorter than the image is
        # high) was an underline that the digits touch. Measured without that allowance, it is a rule.
        strict = dataclasses.replace(options, tuning=dataclasses.replace(tuning, rule_min_cross=0.0))
        return _segment(image, strict, zoom, explain, level_page)
    # Digits as tall as the kept ones under the contrast floor: a washed-out page or grey pencil, whose
    # strokes stand under it and still well above the paper's grain. It is looked at again at the end.
    faint = options.min_contrast > tuning.faint_retry_contrast and _faint_digits_dropped(plausible, tuning)
    notes.drop(plausible.dropped, "filters")
    candidates = plausible.kept
    if not options.single and candidates:
        split = split_touching(candidates, labels, ink_mask.stroke_width, tuning)
        parts = plausible_digits(split.candidates, light, ink_mask, labels, tuning)
        candidates, restored = keep_unsplit(candidates, split.candidates, parts.kept)
        for cut in split.cuts:
            notes.event(result.SPLIT, cut.whole.box, (cut.left.box, cut.right.box), cut.reason)
        for whole in restored:
            notes.event(result.KEPT_WHOLE, whole.box, (), "no part of the cut was a plausible digit")
        notes.drop(((part, reason) for part, reason in parts.dropped if not _inside_any(part, restored)), "split")
    small = _small_pieces(plausible.dropped, light, tuning) if zoom else []
    only_small = not candidates and bool(small) and not faint
    if only_small:
        # Digits too small for the working copy (zoomed into below); a faint page is looked at again first.
        candidates = _small_lines(small, tuning)
    if not candidates:
        nothing = Segmentation((), tuple(notes.dropped), tuple(notes.events), light.polarity)
        return _fainter_look(nothing, image, options, zoom, explain, level_page) if faint else nothing
    prominent = most_prominent(candidates, light.ink.shape, options.single, options.max_digits)
    notes.drop(prominent.dropped, "filters")
    crops = []
    for line_index, line in enumerate(reading_order(prominent.kept)):
        zoomed = _zoom_in(_with_small_pieces(line, small, tuning), image, light, options, explain) if zoom else None
        if zoomed is not None:
            crops += [dataclasses.replace(crop, line=line_index) for crop in zoomed.crops]
            notes.dropped += zoomed.dropped
            notes.events += zoomed.events
        elif only_small:
            continue  # pieces too short for digits that the second look did not find digits in either
        else:
            crops += [
                DigitCrop(notes.box(candidate.box), digit_image(candidate, image, light, ink_mask, labels, tuning),
                          line_index)
                for candidate in line
            ]
    found = Segmentation(tuple(crops), tuple(notes.dropped), tuple(notes.events), light.polarity)
    return _fainter_look(found, image, options, zoom, explain, level_page) if faint else found


def _levelled(image: np.ndarray, angle: float, options: PreprocessOptions, zoom: bool,
              explain: bool) -> Segmentation:
    """The page segmented turned level by `angle` degrees, its boxes mapped back to the image as given."""
    levelled, inverse = tilt.level(image, angle)
    height, width = image.shape[:2]
    found = _mapped(_segment(levelled, options, zoom, explain, level_page=False),
                    lambda box: tilt.box_back(box, inverse, (height, width)))
    if not explain:
        return found
    event = Event(result.LEVELLED, (0, 0, width, height), (), f"the page's rules lean {angle:+.1f} degrees: "
                  "segmented turned level")
    return dataclasses.replace(found, events=(event,) + found.events)


def _fainter_look(first: Segmentation, image: np.ndarray, options: PreprocessOptions, zoom: bool,
                  explain: bool, level_page: bool) -> Segmentation:
    """The page segmented again with `Tuning.faint_retry_contrast` as its contrast floor, kept only if it
    finds more digits and still finds each digit found first, about where it was: on grid paper a lower
    floor can also join the grid to a digit, or break the grid into pieces."""
    again = _segment(image, dataclasses.replace(options, min_contrast=options.tuning.faint_retry_contrast),
                     zoom, explain, level_page)
    kept = all(any(_overlap(crop.box, other.box) >= _SAME_DIGIT for other in again.crops) for crop in first.crops)
    if not (kept and len(again.crops) > len(first.crops)):
        return first
    if not explain:
        return again
    height, width = image.shape[:2]
    look = Event(result.FAINTER_LOOK, (0, 0, width, height), (), f"ink too faint for the usual contrast floor "
                 f"({options.min_contrast:.2f}): looked at again with {options.tuning.faint_retry_contrast:.2f}")
    return dataclasses.replace(again, events=(look,) + again.events)


_SAME_DIGIT = 0.5
"""Boxes overlapping by at least this share of their union hold the same digit."""


def _overlap(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> float:
    """Intersection over union of two x, y, width, height boxes."""
    width = min(first[0] + first[2], second[0] + second[2]) - max(first[0], second[0])
    height = min(first[1] + first[3], second[1] + second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return 0.0
    shared = width * height
    return shared / (first[2] * first[3] + second[2] * second[3] - shared)


def _faint_digits_dropped(plausible: Sifted, tuning: Tuning) -> bool:
    """Whether no piece passed, or a piece dropped as too faint is about as tall as the kept ones and
    not much fainter (a grid's or a shadow's piece beside a dark digit is far fainter than the digit)."""
    if not plausible.kept:
        return True
    heights = sorted(candidate.height for candidate in plausible.kept)
    inks = sorted(candidate.mass / max(1, candidate.area) for candidate in plausible.kept)
    height, ink = heights[len(heights) // 2], inks[len(inks) // 2]
    return any(reason == result.TOO_FAINT and candidate.height >= tuning.faint_retry_height * height
               and candidate.mass >= tuning.faint_retry_ink * ink * candidate.area
               for candidate, reason in plausible.dropped)


def _inside_any(part: Candidate, wholes: list[Candidate]) -> bool:
    """Whether the part's centre lies in one of the wholes (a part of a cut that was undone)."""
    centre_x, centre_y = part.x + part.width // 2, part.y + part.height // 2
    return any(whole.x <= centre_x < whole.right and whole.y <= centre_y < whole.bottom for whole in wholes)


def _small_pieces(dropped, light: Light, tuning: Tuning) -> list[Candidate]:
    """Pieces dropped as too short on a reduced working copy that may be digits too small for it.

    A 12-megapixel phone photo is worked on at an eighth of its size, where a digit 50 pixels high
    is 6 pixels high: too short to be told from a dot. Such pieces are looked at again, at full
    resolution, where they continue a line of small digits or make one (see `_small_lines`).
    """
    if light.scale == 1:
        return []
    return [candidate for candidate, reason in dropped
            if reason == result.TOO_SHORT and candidate.height >= tuning.zoom_min_piece]


def _small_lines(small: list[Candidate], tuning: Tuning) -> list[Candidate]:
    """The pieces of the lines of small pieces that could be numbers: a line with at least
    `zoom_min_pieces` pieces of like height. At most `zoom_max_lines` lines (the inkiest) are kept."""
    lines = []
    for line in reading_order(small):
        typical = median_height(line)
        alike = [candidate for candidate in line if candidate.height >= 0.6 * typical]
        if len(alike) >= tuning.zoom_min_pieces:
            lines.append(alike)
    lines.sort(key=lambda line: -sum(candidate.area for candidate in line))
    return [candidate for line in lines[: tuning.zoom_max_lines] for candidate in line]


def _with_small_pieces(line: list[Candidate], small: list[Candidate], tuning: Tuning) -> list[Candidate]:
    """A line of small digits with the too-short pieces that continue it: on its rows, each within
    `zoom_reach` digit heights of the line's pieces (or of pieces taken in before it)."""
    typical = median_height(line)
    if not small or typical >= tuning.zoom_below_height:
        return line
    top, bottom = min(candidate.y for candidate in line), max(candidate.bottom for candidate in line)
    # Dropped pieces, never the line's own: they are told apart by position alone.
    left = [piece for piece in small if min(bottom, piece.bottom) - max(top, piece.y) >= 0.5 * piece.height]
    extended, reach = list(line), tuning.zoom_reach * typical
    while left:
        near = [piece for piece in left
                if any(max(piece.x - other.right, other.x - piece.right) <= reach for other in extended)]
        if not near:
            break
        extended += near
        left = [piece for piece in left if all(piece is not other for other in near)]
    return extended


def _zoom_in(
    line: list[Candidate], image: np.ndarray, light: Light, options: PreprocessOptions, explain: bool
) -> Segmentation | None:
    """Segments a line of small digits again, on its own region of the input at full resolution.

    Returns None when the digits are not small, when the image was not reduced, or when the
    second look finds nothing (the first look stands then). Boxes come back in `image` coordinates,
    and the dropped pieces and events are marked as found by the second look.
    """
    tuning = options.tuning
    typical = median_height(line)
    if light.scale == 1 or options.single or typical >= tuning.zoom_below_height:
        return None
    height, width = light.ink.shape
    pad_x, pad_y = int(tuning.zoom_pad[0] * typical), int(tuning.zoom_pad[1] * typical)
    left = max(0, min(candidate.x for candidate in line) - pad_x)
    right = min(width, max(candidate.right for candidate in line) + pad_x)
    top = max(0, min(candidate.y for candidate in line) - pad_y)
    bottom = min(height, max(candidate.bottom for candidate in line) + pad_y)
    scale = light.scale
    region = image[top * scale : bottom * scale, left * scale : right * scale]
    inner = _segment(
        np.ascontiguousarray(region), dataclasses.replace(options, polarity=light.polarity), zoom=False, explain=explain,
        level_page=False,
    )
    if not inner.crops:
        return None
    dx, dy = left * scale, top * scale
    crops = tuple(dataclasses.replace(crop, box=_offset(crop.box, dx, dy)) for crop in inner.crops)
    if not explain:
        return Segmentation(crops, (), (), inner.polarity)
    dropped = tuple(piece._replace(box=_offset(piece.box, dx, dy), second_look=True) for piece in inner.dropped)
    events = (
        Event(
            result.SECOND_LOOK,
            source_box((left, top, right - left, bottom - top), scale, image.shape),
            tuple(source_box(candidate.box, scale, image.shape) for candidate in line),
            "small digits: segmented again at full resolution",
        ),
    ) + tuple(
        dataclasses.replace(
            event, box=_offset(event.box, dx, dy), parts=tuple(_offset(part, dx, dy) for part in event.parts),
            second_look=True,
        )
        for event in inner.events
    )
    return Segmentation(crops, dropped, events, inner.polarity)


def _offset(box: tuple[int, int, int, int], dx: int, dy: int) -> tuple[int, int, int, int]:
    return (box[0] + dx, box[1] + dy, box[2], box[3])
