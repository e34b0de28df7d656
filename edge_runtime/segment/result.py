"""What segmentation hands back: the digit crops, and why other pieces were dropped, merged or split."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np

__all__ = ["DigitCrop", "Dropped", "Event", "Segmentation"]

Box = tuple[int, int, int, int]
"""x, y, width, height in the coordinates of the image given to segmentation."""

# Why a piece was dropped (`Dropped.reason`).
SPECK = "speck"  # fewer ink pixels than `Tuning.min_area`
TOO_MANY = "too many pieces"  # beyond the `Tuning.max_candidates` largest components
OFF_THE_PAPER = "off the paper"  # on a background darker than any paper: a table's texture
TOUCHES_FRAME = "touches the frame"  # runs along the image's border: a page edge, a table, a shadow
RULED_LINE = "ruled line"  # a long straight run erased from the mask (ruled or grid line)
TOO_SHORT = "too short: a dot or a dash"  # shorter than `Tuning.min_digit_height`
TOO_WIDE = "too wide: a line"  # wider than `Tuning.max_aspect` times its height
BLOB = "blob"  # a solid roundish patch thicker than strokes
THIN_LINE = "a line"  # finer strokes than the writing, or too little stroke for its width
BOX_SIDE = "a box's side: a stroke from rule to rule"  # the side of a form's box, between two erased rules
BOX_OUTLINE = "a box drawn on a form"  # its lines were erased, and what it held is read
PAGE_EDGE = "page edge"  # paper on one side, something much darker on the other
LONG_LINE = "part of a long line"  # its axis goes on across the paper: a margin or a tilted rule
TOO_FAINT = "too faint"  # mean ink barely above the threshold: a smudge, a shadow's edge, grain
TOO_TALL_FOR_LINE = "too tall for its line: a line"  # a thin stroke far taller than the digits beside it
TOO_SHORT_FOR_LINE = "too short for its line: a dot or a speck"  # far shorter than the digits beside it
NOT_PROMINENT = "not among the most prominent"  # beyond `max_digits`, or not the one digit with `single`
REASONS = (SPECK, TOO_MANY, OFF_THE_PAPER, TOUCHES_FRAME, RULED_LINE, TOO_SHORT, TOO_WIDE, BLOB, THIN_LINE, BOX_SIDE, BOX_OUTLINE,
           PAGE_EDGE, LONG_LINE, TOO_FAINT, TOO_TALL_FOR_LINE, TOO_SHORT_FOR_LINE, NOT_PROMINENT)

# What happened to pieces that were kept (`Event.kind`).
MERGED = "merged"  # two pieces became one digit (`Event.parts`: the two pieces)
SPLIT = "split"  # one piece was cut into two digits (`Event.parts`: the two parts)
KEPT_WHOLE = "kept whole"  # cut, but no part was a plausible digit, so the whole stands
SECOND_LOOK = "second look"  # a line of small digits segmented again at full resolution
NO_INK = "no ink"  # nothing on the page passes the threshold above the paper's grain
TOO_SMALL_IMAGE = "image too small"  # the image is smaller than one digit
LEVELLED = "levelled"  # the page's rules leaned too far to be removed: segmented turned level
FAINTER_LOOK = "fainter look"  # digits under the contrast floor: segmented again with a lower floor
PAGE_EVENTS = (LEVELLED, FAINTER_LOOK, SECOND_LOOK)  # what `--explain` reports for the whole page (once each)
EVENT_KINDS = (MERGED, SPLIT, KEPT_WHOLE, SECOND_LOOK, NO_INK, TOO_SMALL_IMAGE, LEVELLED, FAINTER_LOOK)


@dataclasses.dataclass(frozen=True)
class DigitCrop:
    """One digit found in an image.

    Attributes:
        box: x, y, width, height in the coordinates of the image given to `extract_digits`.
        image: (28, 28) float32 in [0, 1], white digit on black, MNIST-normalised.
        line: 0-based text line (reading order).
    """

    box: Box
    image: np.ndarray
    line: int


class Dropped(typing.NamedTuple):
    """A piece of ink that is not a digit, and why.

    An immutable named tuple rather than a frozen dataclass: a grainy photo drops a hundred or more
    specks, and a dataclass would cost several times as much to build each time.

    Attributes:
        box: Where it was, x, y, width, height in the coordinates of the image given to `segment_image`.
        reason: One of `REASONS`, e.g. "speck", "page edge", "ruled line".
        stage: The module that dropped it: "mask" (ruled lines), "components" (specks, too many
            pieces), "filters", or "split" (the filters run again on the parts after cutting).
        second_look: Found while segmenting a line of small digits again at full resolution.
    """

    box: Box
    reason: str
    stage: str
    second_look: bool = False


@dataclasses.dataclass(frozen=True)
class Event:
    """Something segmentation did to pieces it kept: merged two, split one, looked again.

    Attributes:
        kind: One of `EVENT_KINDS`.
        box: The result (merged piece, the whole that was split, the line looked at again), in the
            coordinates of the image given to `segment_image`.
        parts: The pieces involved: the two merged, the two cut apart, the first look's digits.
        reason: Why, in words.
        second_look: Happened while segmenting a line of small digits again at full resolution.
    """

    kind: str
    box: Box
    parts: tuple[Box, ...]
    reason: str
    second_look: bool = False


@dataclasses.dataclass(frozen=True)
class Segmentation:
    """Everything `segment_image` found in one image.

    Attributes:
        crops: The digits, in reading order (what `extract_digits` returns).
        dropped: Pieces of ink that were not taken for digits, each with its reason.
        events: Merges, splits and second looks, in the order they happened.
        polarity: "dark-on-light" or "light-on-dark" as decided (or as given); the options' value
            ("auto") when the image was too small to decide.
    """

    crops: tuple[DigitCrop, ...]
    dropped: tuple[Dropped, ...]
    events: tuple[Event, ...]
    polarity: str
