"""`DigitReader`: image in, digits out, with confidences, boxes, per-digit probabilities and a status."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time

import numpy as np

from edge_runtime import constants, imageio, preprocess
from edge_runtime.interpreter import DigitClassifier

DEFAULT_MODEL = pathlib.Path(__file__).parent / "models" / "digitkit_int8.tflite"


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """How images are read.

    Attributes:
        single: Read only the most prominent digit.
        min_confidence: Digits less certain than this are rejected (reported, not trusted).
        polarity: The picture's ink: "auto", "dark-on-light" (pen on paper) or "light-on-dark" (chalk).
        num_threads: Interpreter threads.
    """

    single: bool = False
    min_confidence: float = 0.0
    polarity: str = "auto"
    num_threads: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence={self.min_confidence}: must be between 0 and 1")
        if self.num_threads < 1:
            raise ValueError(f"num_threads={self.num_threads}: must be at least 1")
        self.preprocess_options()  # Validates polarity with the valid choices in the message.

    def preprocess_options(self) -> preprocess.PreprocessOptions:
        return preprocess.PreprocessOptions(single=self.single, polarity=self.polarity)


@dataclasses.dataclass(frozen=True)
class Digit:
    """One digit read from an image.

    Attributes:
        label: The predicted digit, e.g. "7".
        confidence: Its probability.
        box: x, y, width, height in the input image.
        probabilities: All class probabilities (None in batch results, which do not keep them).
        crop: The 28x28 image the model saw, white on black in [0, 1] (None in batch results).
        line: Text line index, in reading order.
        accepted: Whether confidence reached `min_confidence`.
    """

    label: str
    confidence: float
    box: tuple[int, int, int, int]
    probabilities: np.ndarray | None
    crop: np.ndarray | None
    line: int
    accepted: bool


@dataclasses.dataclass(frozen=True)
class ReadResult:
    """What was read from one image.

    Attributes:
        digits: The number read, in reading order; rejected digits show as "?"; lines are not separated.
        status: "ok", "rejected" (some digit under `min_confidence`), "no digit found" or "error".
        items: Each digit with its box, confidence and probabilities.
        source: The file path or a caller's label.
        error: What went wrong, for status "error".
        image_shape: Height and width of the image read.
        seconds: Time spent decoding, preprocessing and classifying.
    """

    digits: str
    status: str
    items: tuple[Digit, ...] = ()
    source: str = ""
    error: str = ""
    image_shape: tuple[int, int] = (0, 0)
    seconds: float = 0.0

    @property
    def confidence(self) -> float:
        """The least certain digit's confidence (0 with no digit): the number is as sure as its weakest digit."""
        return min((item.confidence for item in self.items), default=0.0)

    @property
    def confidences(self) -> list[float]:
        return [item.confidence for item in self.items]

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        return [item.box for item in self.items]

    @property
    def probabilities(self) -> np.ndarray:
        return np.array([item.probabilities for item in self.items]).reshape(len(self.items), -1)

    def to_record(self) -> dict:
        """A flat, JSON-ready summary (the CSV and JSONL row)."""
        return {"path": self.source, "digits": self.digits, "confidence": round(self.confidence, 4),
                "status": self.status, "error": self.error,
                "confidences": [round(value, 4) for value in self.confidences],
                "boxes": [list(box) for box in self.boxes]}


def error_result(source: str, message: str) -> ReadResult:
    """The result for an input that could not be read."""
    return ReadResult(digits="", status=constants.STATUS_ERROR, source=source, error=message)


class DigitReader:
    """Reads digits from images with a TFLite model.

    Example:
        >>> reader = DigitReader()                      # the model that ships with digitkit
        >>> result = reader.read("photo.jpg")
        >>> result.digits, result.confidence, result.status
        ('2024', 0.97, 'ok')
    """

    def __init__(self, model_path: str | os.PathLike | None = None, options: ReaderOptions = ReaderOptions(),
                 **classifier_overrides):
        """Loads the model.

        Args:
            model_path: A `.tflite` file; None means the int8 model shipped with the package.
            options: Reading options.
            **classifier_overrides: `input_range`, `polarity`, `output` for models without metadata.
        """
        self.options = options
        self.model_path = pathlib.Path(model_path) if model_path is not None else DEFAULT_MODEL
        self.classifier = DigitClassifier(self.model_path, num_threads=options.num_threads, **classifier_overrides)
        self._preprocess_options = options.preprocess_options()

    def read(self, image: np.ndarray | str | os.PathLike, source: str | None = None) -> ReadResult:
        """Reads one image: a file path, or a uint8 gray or BGR array.

        Raises:
            FileNotFoundError: The path does not exist.
            imageio.ImageError: The file is not a readable image (a ValueError).
        """
        started = time.perf_counter()
        if isinstance(image, (str, os.PathLike)):
            source = source or os.fspath(image)
            image = imageio.load_image(image)
        crops = self.find(image)
        return self.classify([crops], [source or ""], [image.shape[:2]], started)[0]

    def find(self, image: np.ndarray) -> list[preprocess.DigitCrop]:
        """The digits' crops in reading order (no model involved)."""
        return preprocess.extract_digits(image, self._preprocess_options)

    def classify(self, crops_per_image, sources, shapes, started: float | None = None,
                 keep_details: bool = True) -> list[ReadResult]:
        """Classifies the crops of several images in one batched interpreter call.

        Args:
            crops_per_image: For each image, its `DigitCrop`s.
            sources: For each image, its name.
            shapes: For each image, its (height, width).
            started: perf_counter() when work on these images began, for `seconds`.
            keep_details: Keep each digit's crop and probabilities; batches drop them, so that results
                cross process boundaries cheaply.
        """
        started = time.perf_counter() if started is None else started
        flat = [crop for crops in crops_per_image for crop in crops]
        probabilities = self.classifier.classify(np.stack([crop.image for crop in flat])) if flat else None
        results, cursor = [], 0
        elapsed = (time.perf_counter() - started) / max(1, len(crops_per_image))
        labels, threshold = self.classifier.description.labels, self.options.min_confidence
        for crops, source, shape in zip(crops_per_image, sources, shapes):
            digits = []
            for crop in crops:
                row = probabilities[cursor]
                cursor += 1
                best = int(row.argmax())
                confidence = float(row[best])
                digits.append(Digit(labels[best], confidence, tuple(int(v) for v in crop.box),
                                    row if keep_details else None, crop.image if keep_details else None,
                                    crop.line, confidence >= threshold))
            results.append(_result(tuple(digits), source, (int(shape[0]), int(shape[1])), elapsed))
        return results


def _result(digits: tuple[Digit, ...], source: str, shape: tuple[int, int], seconds: float) -> ReadResult:
    if not digits:
        return ReadResult("", constants.STATUS_NO_DIGIT, (), source, image_shape=shape, seconds=seconds)
    text = "".join(digit.label if digit.accepted else "?" for digit in digits)
    status = constants.STATUS_OK if all(digit.accepted for digit in digits) else constants.STATUS_REJECTED
    return ReadResult(text, status, digits, source, image_shape=shape, seconds=seconds)
