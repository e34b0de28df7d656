"""Components: candidate pieces of ink, and pieces of one digit merged (a 5's bar, a 0 joined by fainter ink)."""

from __future__ import annotations

import dataclasses
import typing

import cv2
import numpy as np

from edge_runtime.segment.mask import InkMask
from edge_runtime.segment.tuning import Tuning

__all__ = ["Candidate", "Components", "Merge", "Merged", "find_candidates", "member_mask", "merge_faint_joins",
           "merge_pieces", "share_line"]

# Why two pieces were merged (`Merge.reason`).
INSIDE = "a stroke mostly inside the other's box"
ACROSS_RULE = "cut apart by an erased rule or a skipped pen"
CLOSE_ABOVE = "close above or below the rest of the digit"
FAINT_JOIN = "joined by fainter ink"


class Candidate(typing.NamedTuple):
    """A digit or a piece of one, in working-resolution pixels.

    An immutable named tuple rather than a frozen dataclass: a noisy page has a hundred of these,
    each rebuilt when merged or weighed, and a frozen dataclass costs twice as much to build.
    Stages tell candidates apart by identity (`is`, `id`), never by value.
    """

    x: int
    y: int
    width: int
    height: int
    labels: tuple[int, ...]  # its components in the label image
    area: int  # ink pixels
    mass: float = 0.0  # ink contrast summed over the ink pixels (set by the plausibility filter)
    members: np.ndarray | None = None  # its pixels within its box when labels alone do not say (a cut part)

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    def with_mass(self, mass: float) -> Candidate:
        """This candidate with its ink mass."""
        return Candidate(self.x, self.y, self.width, self.height, self.labels, self.area, mass, self.members)

    def absorbed(self, other: Candidate) -> Candidate:
        """This candidate grown to hold `other` too (its mass and members are kept)."""
        right, bottom = max(self.right, other.right), max(self.bottom, other.bottom)
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Candidate(x, y, right - x, bottom - y, self.labels + other.labels, self.area + other.area,
                         self.mass, self.members)


@dataclasses.dataclass(frozen=True, eq=False)
class Components:
    """The mask's connected components.

    Attributes:
        labels: int32 label image at working resolution.
        candidates: Components with at least `Tuning.min_area` pixels, largest first when capped.
        stats: OpenCV's statistics of every component (row 0 is the background).
        overflow: Boxes of those beyond the `Tuning.max_candidates` largest, an (N, 4) int array of
            x, y, width, height.
    """

    labels: np.ndarray
    candidates: tuple[Candidate, ...]
    stats: np.ndarray
    overflow: np.ndarray

    def specks(self, min_area: int) -> np.ndarray:
        """Boxes of the components smaller than `min_area`, an (N, 4) int array (there can be
        hundreds, so they are only gathered when asked for)."""
        return self.stats[np.flatnonzero(self.stats[1:, cv2.CC_STAT_AREA] < min_area) + 1, :4]


@dataclasses.dataclass(frozen=True, eq=False)
class Merge:
    """Two pieces taken for one digit."""

    first: Candidate
    second: Candidate
    merged: Candidate
    reason: str


@dataclasses.dataclass(frozen=True, eq=False)
class Merged:
    """Candidates after merging, and the merges made (in order)."""

    candidates: tuple[Candidate, ...]
    merges: tuple[Merge, ...]


def find_candidates(mask: np.ndarray, tuning: Tuning) -> Components:
    """Connected components that are not specks, largest first, at most `Tuning.max_candidates`."""
    # Grana's algorithm is about three times faster than OpenCV's default here.
    _, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= tuning.min_area) + 1
    overflow = stats[:0, :4]
    if len(keep) > tuning.max_candidates:
        order = np.argsort(areas[keep - 1])[::-1]
        overflow = stats[keep[order[tuning.max_candidates :]], :4]
        keep = keep[order[: tuning.max_candidates]]
    candidates = tuple(
        Candidate(int(x), int(y), int(width), int(height), (int(label),), int(area))
        for label, (x, y, width, height, area) in zip(keep.tolist(), stats[keep].tolist())
    )
    return Components(labels, candidates, stats, overflow)


def merge_pieces(candidates: tuple[Candidate, ...] | list[Candidate], stroke_width: float, tuning: Tuning) -> Merged:
    """Joins pieces of one digit: a detached bar of a 5, a 4 in two strokes, a digit cut by a rule."""
    candidates = sorted(candidates, key=lambda candidate: candidate.x)
    merges = []
    merged = True
    while merged:
        merged = False
        for first_index, first in enumerate(candidates):
            for second_index in range(first_index + 1, len(candidates)):
                second = candidates[second_index]
                if second.x >= first.right:
                    break  # sorted by x: no later candidate overlaps `first` in x either
                reason = _same_digit(first, second, stroke_width, tuning)
                if reason is not None:
                    candidates[first_index] = first.absorbed(candidates.pop(second_index))
                    merges.append(Merge(first, second, candidates[first_index], reason))
                    merged = True
                    break
            if merged:
                break
    return Merged(tuple(candidates), tuple(merges))


def merge_faint_joins(
    candidates: tuple[Candidate, ...] | list[Candidate], labels: np.ndarray, ink: np.ndarray, ink_mask: InkMask,
    tuning: Tuning,
) -> Merged:
    """Joins side-by-side pieces that fainter ink connects: the two sides of a 0 or an 8 whose
    hairline top and bottom fell below the threshold, the stem and the bar of a thin-topped 7.

    Digits of a number joined this way are cut apart again where no strong ink joins them, if the
    joined piece is wider than a digit (see `split.split_touching`).
    """
    if len(candidates) < 2:
        return Merged(tuple(candidates), ())
    level = max(ink_mask.noise_floor + 1, int(tuning.faint_join_level * ink_mask.threshold))
    candidates = sorted(candidates, key=lambda candidate: candidate.x)
    merges = []
    index = 0
    while index < len(candidates) - 1:
        first, second = candidates[index], candidates[index + 1]
        if _side_by_side(first, second, tuning) and _faintly_joined(first, second, labels, ink, level):
            candidates.pop(index + 1)
            candidates[index] = first.absorbed(second)._replace(members=None)
            merges.append(Merge(first, second, candidates[index], FAINT_JOIN))
        else:
            index += 1
    return Merged(tuple(candidates), tuple(merges))


def _side_by_side(first: Candidate, second: Candidate, tuning: Tuning) -> bool:
    shorter, taller = sorted((first.height, second.height))
    overlap_y = min(first.bottom, second.bottom) - max(first.y, second.y)
    gap = second.x - first.right
    return (
        first.members is None
        and second.members is None
        and shorter >= tuning.faint_join_min_ratio * taller
        and overlap_y >= tuning.faint_join_min_ratio * shorter
        and gap <= tuning.faint_join_max_gap * taller
        and max(first.right, second.right) - first.x <= tuning.faint_join_max_aspect * taller
    )


def _faintly_joined(first: Candidate, second: Candidate, labels: np.ndarray, ink: np.ndarray, level: int) -> bool:
    x, y = first.x, min(first.y, second.y)
    right, bottom = max(first.right, second.right), max(first.bottom, second.bottom)
    weak = cv2.threshold(ink[y:bottom, x:right], level - 1, 255, cv2.THRESH_BINARY)[1]
    _, weak_labels = cv2.connectedComponents(weak, connectivity=8)
    region = labels[y:bottom, x:right]
    first_labels = np.unique(weak_labels[np.isin(region, first.labels)])
    second_labels = np.unique(weak_labels[np.isin(region, second.labels)])
    common = np.intersect1d(first_labels, second_labels)
    return bool(np.count_nonzero(common))


def _same_digit(first: Candidate, second: Candidate, stroke_width: float, tuning: Tuning) -> str | None:
    """Why the two are pieces of one digit, or None if they are not."""
    overlap_x = min(first.right, second.right) - max(first.x, second.x)
    overlap_y = min(first.bottom, second.bottom) - max(first.y, second.y)
    smaller = first if first.area <= second.area else second
    if overlap_y > 0 and overlap_x * overlap_y >= 0.5 * smaller.width * smaller.height:
        return INSIDE  # mostly inside the other's box: a stroke of the same digit
    if overlap_x < 0.5 * min(first.width, second.width):
        return None
    line, other = (first, second) if first.width * second.height > second.width * first.height else (second, first)
    if line.width > tuning.line_aspect * line.height and line.width > tuning.line_overhang * other.width:
        return None  # a stroke of a digit is never that long beside the rest: a line under or over it
    gap = -overlap_y
    tallest = max(first.height, second.height)
    union = max(first.bottom, second.bottom) - min(first.y, second.y)
    if gap <= tuning.rule_gap + 1.5 * stroke_width and union <= 2.5 * tallest:
        return ACROSS_RULE  # a digit cut by an erased rule, or a pen that skipped
    return CLOSE_ABOVE if gap <= 0.3 * tallest and union <= 1.6 * tallest else None


def member_mask(candidate: Candidate, labels: np.ndarray) -> np.ndarray:
    """The candidate's pixels within its box (bool)."""
    if candidate.members is not None:
        return candidate.members
    region = labels[candidate.y : candidate.bottom, candidate.x : candidate.right]
    if len(candidate.labels) == 1:
        return region == candidate.labels[0]
    return np.isin(region, candidate.labels)


def share_line(first: Candidate, second: Candidate) -> bool:
    """Whether the two overlap vertically by at least half the shorter one: on one text line."""
    overlap = min(first.bottom, second.bottom) - max(first.y, second.y)
    return overlap >= 0.5 * min(first.height, second.height)


def sharing_line(candidate: Candidate, tops: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """`share_line(candidate, other)` for many others at once, given their tops and heights."""
    overlap = np.minimum(candidate.bottom, tops + heights) - np.maximum(candidate.y, tops)
    return overlap >= 0.5 * np.minimum(candidate.height, heights)
