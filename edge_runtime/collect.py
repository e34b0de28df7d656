"""Collecting training data from reads: `--save-uncertain` and `--save-crops` write crops and a labels.csv to correct."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterable, Iterator

import numpy as np

from edge_runtime import constants, labelled

COLUMNS = ["path", "label", "source", "box", "guesses", "confidence", "status"]
"""labels.csv columns: the first two are the labelled-folder format; the rest say where each crop came from."""

DEFAULT_UNCERTAIN_BELOW = 0.9
"""`--save-uncertain` without `--min-confidence` collects digits less certain than this."""

TOP_GUESSES = 3


@dataclasses.dataclass(frozen=True)
class CollectOptions:
    """What to collect and where.

    Attributes:
        folder: The labelled folder to write (created; an existing labels.csv is added to, never lost).
        every_read: True for `--save-crops` (every digit); False for `--save-uncertain`.
        uncertain_below: With `every_read` False, digits less confident than this are collected.
    """

    folder: str
    every_read: bool = False
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW

    def __post_init__(self) -> None:
        if not 0.0 < self.uncertain_below <= 1.0:
            raise ValueError(f"uncertain_below={self.uncertain_below}: must be in (0, 1]")
        if pathlib.Path(self.folder).exists() and not pathlib.Path(self.folder).is_dir():
            raise ValueError(f"{self.folder}: exists and is not a folder")


class Collector:
    """Writes chosen digits of each read as 28x28 PNGs under `<folder>/crops/` and one labels.csv row each.

    The row's label is the reading's digit, so correcting a read means editing that one cell; an
    image where no digit was found gets a row pointing at the image itself, with an empty label to
    fill in. labels.csv is rewritten atomically by `close()` (also after Ctrl-C).

    The crops train and evaluate the digit model, so with `classify` (the digit model's) each crop is
    also read by it: its guesses fill the row, and `--save-uncertain` takes a digit when either the
    reading or the digit model on the crop is unsure. A digit the line model read at 0.996 that the
    digit model, shown the same crop, read at 0.82 was not collected before. Re-running on the same
    images adds no second row for a digit already collected (same source and box).
    """

    def __init__(self, options: CollectOptions, labels: tuple[str, ...] = constants.LABELS, classify=None):
        self.options, self.labels, self.classify = options, tuple(labels), classify
        self.folder = pathlib.Path(options.folder)
        self.crops = self.folder / labelled.CROPS_FOLDER
        self.crops.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.folder / labelled.LABELS_CSV
        existing_columns, self.rows = labelled.read_csv_rows(self.csv_path)
        self.columns = COLUMNS + [name for name in existing_columns if name not in COLUMNS]
        self.collected = {(row.get("source", ""), row.get("box", "")) for row in self.rows}
        self.added = self.already = 0

    def add(self, result) -> int:
        """Collects what `result` (a `ReadResult` read with details kept) calls for; returns the rows added."""
        if result.status == constants.STATUS_ERROR:
            return 0
        if not result.items:
            if (result.source, "") in self.collected:
                self.already += 1
                return 0
            self.collected.add((result.source, ""))
            self._append({"path": self._relative(result.source), "label": "", "source": result.source, "box": "",
                          "guesses": "", "confidence": "0.0000", "status": result.status})
            return 1
        if any(digit.crop is None or digit.probabilities is None for digit in result.items):
            raise ValueError("collecting needs reads with their crops and probabilities (keep_details=True)")
        crop_probabilities = (self.classify(np.stack([digit.crop for digit in result.items])) if self.classify
                              else [digit.probabilities for digit in result.items])
        added = 0
        for index, (digit, probabilities) in enumerate(zip(result.items, crop_probabilities)):
            box = "x".join(str(value) for value in digit.box)
            on_crop = float(probabilities[self.labels.index(digit.label)]) if digit.label in self.labels else 0.0
            if not self.options.every_read and min(digit.confidence, on_crop) >= self.options.uncertain_below:
                continue
            if (result.source, box) in self.collected:
                self.already += 1
                continue
            path = labelled.next_free_path(self.crops, f"{_flat_stem(result.source)}.{index}")
            labelled.write_crop(path, digit.crop)
            self.collected.add((result.source, box))
            self._append({"path": path.relative_to(self.folder).as_posix(), "label": digit.label,
                          "source": result.source, "box": box, "guesses": self._guesses(probabilities),
                          "confidence": f"{digit.confidence:.4f}",
                          "status": constants.STATUS_OK if digit.accepted else constants.STATUS_REJECTED})
            added += 1
        return added

    def close(self) -> None:
        labelled.write_csv_rows(self.csv_path, self.columns, self.rows)

    def _append(self, row: dict) -> None:
        self.rows.append(row)
        self.added += 1

    def _relative(self, source: str) -> str:
        try:
            return pathlib.Path(os.path.relpath(os.path.abspath(source), os.path.abspath(self.folder))).as_posix()
        except ValueError:  # Another drive on Windows: keep it absolute.
            return os.path.abspath(source)

    def _guesses(self, probabilities: np.ndarray) -> str:
        order = np.argsort(-probabilities, kind="stable")[:TOP_GUESSES]
        return " ".join(f"{self.labels[index]}:{float(probabilities[index]):.4f}" for index in order)


def _flat_stem(source: str) -> str:
    """`scans/week 1/form.jpg` -> `scans__week 1__form`: unique per source, one flat folder of crops."""
    path = pathlib.PurePath(source)
    parts = [part for part in path.parent.parts if part not in ("..", ".", path.anchor)] + [path.stem or "image"]
    return "__".join(parts)[-150:]


class Collectors:
    """`--save-uncertain` and `--save-crops` together: each result goes to every collector; a context
    manager, so labels.csv is written when the batch ends, however it ends."""

    def __init__(self, collectors: list[Collector]):
        self.collectors = collectors

    @classmethod
    def open(cls, save_uncertain: str | None, save_crops: str | None, min_confidence: float,
             labels: tuple[str, ...], classify=None) -> "Collectors":
        """Collectors for the folders given (none when both are None).

        Args:
            save_uncertain: Folder for digits under `min_confidence` (DEFAULT_UNCERTAIN_BELOW when it is 0).
            save_crops: Folder for every digit.
            min_confidence: The reader's `--min-confidence`.
            labels: The model's labels, for the guesses.
            classify: The digit model's `classify`, to read each crop (see `Collector`).

        Raises:
            ValueError: A folder path is an existing file.
        """
        chosen = []
        if save_uncertain:
            below = min_confidence if min_confidence > 0 else DEFAULT_UNCERTAIN_BELOW
            chosen.append(Collector(CollectOptions(save_uncertain, False, below), labels, classify))
        if save_crops:
            chosen.append(Collector(CollectOptions(save_crops, True), labels, classify))
        return cls(chosen)

    def __bool__(self) -> bool:
        return bool(self.collectors)

    def watch(self, results: Iterable) -> Iterator:
        """Passes results through unchanged, collecting each on the way."""
        for result in results:
            for collector in self.collectors:
                collector.add(result)
            yield result

    def __enter__(self) -> "Collectors":
        return self

    def __exit__(self, *exception) -> None:
        for collector in self.collectors:
            collector.close()

    def summary(self) -> str:
        return "; ".join(f"{collector.added} read{'s' if collector.added != 1 else ''} collected into "
                         f"{collector.csv_path}"
                         + (f" ({collector.already} already there, not added again)" if collector.already else "")
                         + " (correct the label column, then use the folder with digit-eval or digit-train "
                         "--finetune)" for collector in self.collectors)
