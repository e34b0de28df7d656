"""Split: digits written touching are cut apart where a single stroke (or little ink) crosses."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edge_runtime.segment.components import Candidate, member_mask, share_line
from edge_runtime.segment.tuning import Tuning

__all__ = ["Cut", "Split", "keep_unsplit", "split_touching"]

# Why a component was cut (`Cut.reason`).
MANY_DIGITS = "several digits wide: cut through more ink"
WIDER_THAN_A_DIGIT = "wider than a digit: cut where one stroke crosses"
BARELY_TOUCHING = "two digits barely touching"


@dataclasses.dataclass(frozen=True, eq=False)
class Cut:
    """One component cut into two parts."""

    whole: Candidate
    left: Candidate
    right: Candidate
    reason: str


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """The candidates after cutting (uncut ones are the same objects as given), and the cuts made."""

    candidates: tuple[Candidate, ...]
    cuts: tuple[Cut, ...]


def split_touching(
    candidates: tuple[Candidate, ...] | list[Candidate], labels: np.ndarray, stroke_width: float, tuning: Tuning
) -> Split:
    """Cuts components wider than a digit where a single stroke crosses: digits written touching.

    The wider a component, the more ink the cut may cross: a component wider than tall (or much
    wider than the other digits of its line) may be cut through one stroke; a squarer one only
    where two digits barely touch, and only into two parts both nearly as tall as the whole, as a
    4 or a 6 also has columns crossed by a single stroke.
    """
    result: list[Candidate] = []
    cuts: list[Cut] = []
    pending = list(candidates)
    while pending:
        candidate = pending.pop()
        parts, reason = None, None
        widths = _line_digit_widths(candidate, result + pending, tuning)
        if widths >= tuning.many_digits_width or candidate.width >= tuning.many_digits_aspect * candidate.height:
            parts = _split_once(candidate, labels, stroke_width, tuning.many_max_crossing, tuning.split_min_height,
                                tuning)
            reason = MANY_DIGITS
        if parts is None and (
            widths > tuning.split_line_width or candidate.width > tuning.split_aspect * candidate.height
        ):
            parts = _split_once(candidate, labels, stroke_width, tuning.split_max_crossing, tuning.split_min_height,
                                tuning)
            reason = WIDER_THAN_A_DIGIT
        if parts is None and candidate.width > tuning.touch_aspect * candidate.height:
            parts = _split_once(candidate, labels, stroke_width, tuning.touch_max_crossing, tuning.touch_min_height,
                                tuning)
            reason = BARELY_TOUCHING
        if parts is None:
            result.append(candidate)
        else:
            cuts.append(Cut(candidate, parts[0], parts[1], reason))
            pending.extend(parts)
    return Split(tuple(result), tuple(cuts))


def keep_unsplit(
    whole: tuple[Candidate, ...] | list[Candidate],
    split: tuple[Candidate, ...] | list[Candidate],
    parts: tuple[Candidate, ...] | list[Candidate],
) -> tuple[list[Candidate], list[Candidate]]:
    """The plausible parts, and the candidates that were cut but none of whose parts is plausible:
    a cut that leaves only strokes and specks took one digit for two.

    Returns:
        (all kept, the wholes kept uncut).
    """
    uncut = {id(candidate) for candidate in split}
    kept = list(parts)
    restored = []
    for candidate in whole:
        if id(candidate) not in uncut and not any(
            candidate.x <= part.x + part.width // 2 < candidate.right
            and candidate.y <= part.y + part.height // 2 < candidate.bottom
            for part in parts
        ):
            kept.append(candidate)
            restored.append(candidate)
    return kept, restored


def _line_digit_widths(candidate: Candidate, others: list[Candidate], tuning: Tuning) -> float:
    """The candidate's width over the typical width of the other digits of its line (its parts cut
    so far included); 0 when there are none. Narrow strokes (1s) do not set the typical width."""
    widths = sorted(
        other.width
        for other in others
        if other.width >= tuning.narrow_digit * other.height and share_line(candidate, other)
    )
    return candidate.width / widths[len(widths) // 2] if widths else 0.0


def _split_once(
    candidate: Candidate, labels: np.ndarray, stroke_width: float, max_crossing: float, min_height: float,
    tuning: Tuning,
) -> tuple[Candidate, Candidate] | None:
    """Two parts cut along the (upright or slanted) line with the least ink, if that line crosses
    at most `max_crossing` stroke widths of ink and both parts are at least `min_height` of the
    whole's height. Slanted cuts part slanted handwriting, whose digits overlap in x."""
    members = member_mask(candidate, labels)
    cut = _least_ink_cut(members.view(np.uint8), int(tuning.split_min_part * candidate.height) + 1, tuning.cut_slants)
    if cut is None or cut[0] > max_crossing * stroke_width:
        return None
    _, column, slant = cut
    rows = np.arange(candidate.height, dtype=np.float32)[:, np.newaxis] - candidate.height / 2
    left_side = np.arange(candidate.width, dtype=np.float32)[np.newaxis, :] < column + slant * rows
    left = _part(candidate, members & left_side)
    right = _part(candidate, members & ~left_side)
    if left is None or right is None:
        return None
    # Both parts must be about as tall as the whole: cutting off the end of a 7's bar is not a split.
    if min(left.height, right.height) < min_height * candidate.height:
        return None
    return left, right


def _least_ink_cut(members: np.ndarray, margin: int, slants: tuple[float, ...]) -> tuple[int, float, float] | None:
    """(ink, column at mid-height, slant) of the straight cut crossing the least ink, the first slant first."""
    height, width = members.shape
    if width - 2 * margin < 1:
        return None
    pad = int(max(abs(slant) for slant in slants) * height / 2) + 1
    best = None
    for slant in slants:
        # Shearing by -slant makes the slanted cut lines vertical: pixel (x, y) lands on column
        # x - slant * (y - height / 2) + pad.
        shear = np.float32([[1, -slant, slant * height / 2 + pad], [0, 1, 0]])
        sheared = cv2.warpAffine(members, shear, (width + 2 * pad, height), flags=cv2.INTER_NEAREST)
        columns = np.count_nonzero(sheared[:, pad + margin : pad + width - margin], axis=0)
        index = int(np.argmin(columns))
        if best is None or columns[index] < best[0]:
            best = (int(columns[index]), float(margin + index), slant)
    return best


def _part(candidate: Candidate, members: np.ndarray) -> Candidate | None:
    x, y, width, height = cv2.boundingRect(members.view(np.uint8))
    if width == 0:
        return None
    own = members[y : y + height, x : x + width]
    area = int(np.count_nonzero(own))
    return Candidate(candidate.x + x, candidate.y + y, width, height, candidate.labels, area, members=own)
