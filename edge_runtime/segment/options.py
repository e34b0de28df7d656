"""`PreprocessOptions`: how segmentation looks for digits, with its `Tuning`."""

from __future__ import annotations

import dataclasses

from edge_runtime import constants
from edge_runtime.segment.tuning import Tuning

__all__ = ["PreprocessOptions"]


@dataclasses.dataclass(frozen=True)
class PreprocessOptions:
    """How `extract_digits` looks for digits.

    Attributes:
        single: Return only the most prominent digit (see `extract_digits`).
        polarity: "auto", "dark-on-light" (ink on paper) or "light-on-dark" (chalk on a board).
        max_digits: At most this many digits are returned, the most prominent ones (64: a form or a
            table holds far more than one number's 12; noise beyond the digits is the model's to reject).
        work_side: Segmentation runs on a copy halved until its longer side is below twice this.
        min_contrast: Ink must differ from the local paper by this fraction of the paper-to-black range.
        tuning: The thresholds and sizes every stage decides with.
    """

    single: bool = False
    polarity: str = "auto"
    max_digits: int = 64
    work_side: int = 320
    min_contrast: float = 0.18
    tuning: Tuning = Tuning()

    def __post_init__(self) -> None:
        if not isinstance(self.single, bool):
            raise ValueError(f"single must be True or False, not {self.single!r}")
        if self.polarity not in constants.INK_POLARITIES:
            raise ValueError(f"polarity {self.polarity!r} is not one of {', '.join(constants.INK_POLARITIES)}")
        if isinstance(self.max_digits, bool) or not isinstance(self.max_digits, int) or self.max_digits < 1:
            raise ValueError(f"max_digits must be a whole number >= 1, not {self.max_digits!r}")
        if isinstance(self.work_side, bool) or not isinstance(self.work_side, int) or not 64 <= self.work_side <= 4096:
            raise ValueError(f"work_side must be a whole number from 64 to 4096, not {self.work_side!r}")
        if not isinstance(self.min_contrast, (int, float)) or not 0.0 < self.min_contrast < 1.0:
            raise ValueError(f"min_contrast must be a number between 0 and 1 (exclusive), not {self.min_contrast!r}")
        if not isinstance(self.tuning, Tuning):
            raise ValueError(f"tuning must be a Tuning, not {type(self.tuning).__name__}")
