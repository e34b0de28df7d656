"""The line reader: runs a CTC line model over one text line of digits and decodes it greedily, without TensorFlow.

Conventions (shared with the trainer, which builds its strips with `normalize_line` below):

* `ink` is a 2-D image of ONE text line, white ink on black, float in [0, 1] or uint8 in [0, 255],
  any height and width. Pixels above `INK_THRESHOLD` (0.1) count as ink.
* It is cropped to its ink rows and columns, scaled (aspect kept) so the ink rows are `INK_HEIGHT`
  (23) pixels high, rows `INK_TOP`..`INK_TOP + INK_HEIGHT` of a `STRIP_HEIGHT` (32) pixel strip,
  so a digit fills about 20/28 of the strip like an MNIST digit does, with `MARGIN` (8) black
  pixels on the left and at least as many on the right, and the width rounded up to a multiple of
  `WIDTH_BUCKET` (32), at least `MIN_WIDTH` (64).
* The model gives one column of class probabilities per `COLUMN_STRIDE` (4) strip pixels; class
  `BLANK_INDEX` (10) is the CTC blank, classes 0-9 the digits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib

import cv2
import numpy as np

from edge_runtime import constants, metadata
from edge_runtime.interpreter import TensorSpec, load_backend

STRIP_HEIGHT = 32
INK_HEIGHT = 23
INK_TOP = 4
MARGIN = 8
WIDTH_BUCKET = 32
MIN_WIDTH = 64
MAX_WIDTH = 2048
COLUMN_STRIDE = 4
NUM_CLASSES = 11
BLANK_INDEX = 10
INK_THRESHOLD = 0.1
LINE_LABELS = constants.LABELS + ("",)
"""Class names of digitkit's line model: the ten digits, then the blank (an empty string)."""

KIND_LINE = "line"
DEFAULT_MODEL = pathlib.Path(__file__).resolve().parent / "models" / "digitkit_line_int8.tflite"


@dataclasses.dataclass(frozen=True)
class LineStrip:
    """A line scaled into the model's strip, and how strip x maps back to the input image.

    Attributes:
        pixels: float32 (STRIP_HEIGHT, width) in [0, 1], white ink on black.
        scale: Strip pixels per input pixel.
        ink_left: Input x of the leftmost ink column, which sits at strip x = `margin`.
        margin: Black columns before the ink in the strip.
        ink_width: Strip columns the ink occupies (from `margin`).
    """

    pixels: np.ndarray
    scale: float
    ink_left: int
    margin: int
    ink_width: int

    def to_input_x(self, strip_x: np.ndarray | float) -> np.ndarray | float:
        """Input-image x of a strip x (both in pixels, fractional allowed)."""
        return (np.asarray(strip_x, np.float64) - self.margin) / self.scale + self.ink_left


@dataclasses.dataclass(frozen=True)
class CtcDecoding:
    """Greedy CTC decoding of one line.

    Attributes:
        labels: (K,) class indices of the decoded digits, in order.
        confidences: (K,) each digit's highest probability over the columns that emitted it.
        columns: (K, 2) each digit's [first, last + 1) column run in the model output (its alignment).
        step_confidences: (T,) the winning probability of every column, blanks included.
    """

    labels: np.ndarray
    confidences: np.ndarray
    columns: np.ndarray
    step_confidences: np.ndarray


@dataclasses.dataclass(frozen=True)
class LineReading:
    """What `LineRecognizer.read_line` found in one line.

    Attributes:
        digits: The number read, e.g. "2024"; "" when the line holds no ink or only blanks.
        confidences: Per digit, the highest probability of the columns that emitted it.
        x_ranges: Per digit, (x0, x1) pixel columns in the input `ink` image, x1 exclusive: from
            halfway to the previous digit's columns to halfway to the next one's, trimmed to ink.
        columns: Per digit, the [first, last + 1) model columns that emitted it (the CTC alignment).
        confidence: The line's confidence: the minimum over all columns of the winning probability
            (blank columns included, so a doubtful gap lowers it too); 0.0 for an empty line.
        probabilities: float32 (T, classes) column probabilities, for display and calibration.
        strip: The normalized strip the model saw.
    """

    digits: str
    confidences: tuple[float, ...]
    x_ranges: tuple[tuple[int, int], ...]
    columns: tuple[tuple[int, int], ...]
    confidence: float
    probabilities: np.ndarray
    strip: LineStrip | None


def greedy_ctc_decode(probabilities: np.ndarray, blank_index: int = BLANK_INDEX) -> CtcDecoding:
    """Best-path CTC decoding: the winning class per column, repeats merged, blanks dropped.

    Args:
        probabilities: (T, classes) per-column probabilities (or logits: only the argmax and the
            winning values are used).
        blank_index: The class that means "no new symbol".

    Returns:
        The decoded labels with their confidences and column runs.

    Raises:
        ValueError: Not a 2-D array, or a blank index outside the classes.
    """
    values = np.asarray(probabilities)
    if values.ndim != 2:
        raise ValueError(f"probabilities have shape {values.shape}; expected (columns, classes)")
    if not 0 <= blank_index < values.shape[1]:
        raise ValueError(f"blank_index={blank_index} is outside the {values.shape[1]} classes")
    if values.shape[0] == 0:
        empty = np.zeros(0, np.int64)
        return CtcDecoding(empty, np.zeros(0, np.float32), np.zeros((0, 2), np.int64), np.zeros(0, np.float32))
    best = values.argmax(axis=1)
    best_values = values[np.arange(len(best)), best].astype(np.float32)
    run_starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    run_ends = np.r_[run_starts[1:], len(best)]
    run_labels = best[run_starts]
    run_confidences = np.maximum.reduceat(best_values, run_starts)
    keep = run_labels != blank_index
    return CtcDecoding(run_labels[keep].astype(np.int64), run_confidences[keep],
                       np.stack([run_starts[keep], run_ends[keep]], axis=1).astype(np.int64), best_values)


def as_float_ink(ink: np.ndarray) -> np.ndarray:
    """A 2-D float32 copy of `ink` in [0, 1] (uint8 is divided by 255, floats are clipped).

    Raises:
        ValueError: Not a 2-D numeric array.
    """
    pixels = np.asarray(ink)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim != 2:
        raise ValueError(f"ink has shape {pixels.shape}; expected a 2-D image of one line (height, width)")
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) * np.float32(1 / 255)
    if pixels.dtype == np.bool_ or np.issubdtype(pixels.dtype, np.number):
        return np.clip(pixels.astype(np.float32), 0.0, 1.0)
    raise ValueError(f"ink has dtype {pixels.dtype}; expected uint8 or float")


def ink_bounds(pixels: np.ndarray, threshold: float = INK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the pixels above `threshold`, bottom and right exclusive; None for no ink."""
    mask = pixels > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def bucket_width(ink_width: int, margin: int = MARGIN) -> int:
    """The strip width for ink `ink_width` strip pixels wide: margins added, rounded up to the bucket."""
    return max(MIN_WIDTH, int(math.ceil((ink_width + 2 * margin) / WIDTH_BUCKET)) * WIDTH_BUCKET)


def normalize_line(ink: np.ndarray, margin: int = MARGIN, width: int | None = None,
                   ink_height: int = INK_HEIGHT, height: int = STRIP_HEIGHT) -> LineStrip | None:
    """Crops a line to its ink, scales it to the strip's ink band and pads it like the training data.

    Args:
        ink: One text line, white ink on black, uint8 or float in [0, 1], any size.
        margin: Black strip columns left of the ink.
        width: A fixed strip width; default is `bucket_width` of the scaled ink. When the scaled ink
            does not fit, it is squeezed horizontally to fit (the scale then differs per axis; `scale`
            is the horizontal one, which is what maps columns back to x).
        ink_height: Rows the ink's height is scaled to.
        height: Strip height.

    Returns:
        The strip, or None when `ink` holds no pixel above `INK_THRESHOLD`.
    """
    pixels = as_float_ink(ink)
    bounds = ink_bounds(pixels)
    if bounds is None:
        return None
    top, bottom, left, right = bounds
    crop = pixels[top:bottom, left:right]
    scale = ink_height / crop.shape[0]
    scaled_width = max(1, int(round(crop.shape[1] * scale)))
    strip_width = width if width is not None else min(MAX_WIDTH, bucket_width(scaled_width, margin))
    room = strip_width - margin - COLUMN_STRIDE
    if scaled_width > room:
        scaled_width = max(1, room)
    horizontal_scale = scaled_width / crop.shape[1]
    shrinking = scale < 1 or horizontal_scale < 1
    resized = cv2.resize(crop, (scaled_width, ink_height),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    strip = np.zeros((height, strip_width), np.float32)
    top_row = INK_TOP + (height - STRIP_HEIGHT) // 2
    strip[top_row:top_row + ink_height, margin:margin + scaled_width] = resized
    return LineStrip(strip, float(horizontal_scale), left, margin, scaled_width)


class LineRecognizer:
    """Reads one line of digits with a CTC line model: `_preprocess` -> `_set_input` -> `invoke` -> `_postprocess`.

    The model's input and output quantization are read from its tensor details; its strip height,
    blank index, input range and polarity from the digitkit metadata embedded in the file (kind
    "line"), or, for a third-party CTC model, from the arguments. A model that is neither is refused.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, num_threads: int = 1,
                 blank_index: int | None = None, input_range=None, polarity: str | None = None):
        """Loads and checks a line model.

        Args:
            model_path: A `.tflite` line model; default is the packaged `digitkit_line_int8.tflite`.
            num_threads: Interpreter threads (1 is fastest for one line).
            blank_index: The CTC blank class of a third-party model without digitkit metadata; its
                other classes must be the digits 0-9 in order. Overrides the embedded value.
            input_range: (black, white) float values, overriding the embedded description.
            polarity: "white-on-black" or "black-on-white", overriding the embedded description.

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a TFLite model, not a line model (and no `blank_index`), or an
                unsupported input or output shape.
        """
        self.path = pathlib.Path(model_path) if model_path is not None else DEFAULT_MODEL
        model_bytes = _read_model_bytes(self.path)
        try:
            description = metadata.read_description(model_bytes)
        except ValueError as error:
            raise ValueError(f"{self.path}: {error}") from error
        self.description = description
        self.num_threads = num_threads
        self._interpreter_class, self.backend = load_backend()
        self._model_bytes = model_bytes
        self._interpreters: dict[tuple[int, int], tuple] = {}
        kind = description.extra.get("kind")
        if blank_index is None and kind != KIND_LINE:
            raise ValueError(
                f"{self.path}: not a line model (its digitkit metadata says kind={kind!r}"
                f"{'' if description.embedded else ', or it has no digitkit metadata'}); a third-party CTC "
                f"line model needs its blank index (blank_index=..., digit-infer --line-model-blank N); a digit "
                f"model, such as the packaged {DEFAULT_MODEL.name.replace('_line', '')}, goes with --model")
        self.blank_index = int(blank_index if blank_index is not None else description.extra.get("blank_index",
                                                                                               BLANK_INDEX))
        self.input_range = tuple(float(v) for v in (input_range or description.input_range))
        self.polarity = polarity or description.polarity
        if self.polarity not in constants.POLARITIES:
            raise ValueError(f"polarity={self.polarity!r}: choose one of {', '.join(constants.POLARITIES)}")
        interpreter, input_spec, output_spec = self._interpreter_for(None)
        signature = interpreter.get_input_details()[0].get("shape_signature", input_spec.shape)
        self._check_signature(input_spec, output_spec)
        self.height = int(input_spec.shape[1])
        self.num_classes = int(output_spec.shape[-1])
        if not 0 <= self.blank_index < self.num_classes:
            raise ValueError(f"{self.path}: blank_index={self.blank_index} is outside the model's "
                             f"{self.num_classes} classes")
        self.labels = self._labels(description)
        self.dynamic_width = int(signature[2]) == -1
        self.dynamic_batch = int(signature[0]) == -1
        self.fixed_width = None if self.dynamic_width else int(input_spec.shape[2])
        self.ink_height = int(description.extra.get("ink_height", round(self.height * constants.DIGIT_BOX
                                                                          / constants.IMAGE_SIZE)))

    def read_line(self, ink: np.ndarray) -> LineReading:
        """Reads the digits of one line.

        Args:
            ink: ONE text line, white ink on black, 2-D, uint8 or float in [0, 1], any size.

        Returns:
            The digits with per-digit confidences, x ranges in `ink` and CTC columns, and the line's
            confidence. A line without ink gives digits "" and confidence 0.0.
        """
        strip = normalize_line(ink, width=self.fixed_width, ink_height=self.ink_height, height=self.height)
        if strip is None:
            return LineReading("", (), (), (), 0.0, np.zeros((0, self.num_classes), np.float32), None)
        probabilities = self.column_probabilities(strip.pixels[None])[0]
        return self._reading(probabilities, strip)

    def column_probabilities(self, strips: np.ndarray) -> np.ndarray:
        """Per-column probabilities (N, T, classes) of N normalized strips (N, height, W), all one width."""
        strips = np.asarray(strips, np.float32)
        if strips.ndim != 3 or strips.shape[1] != self.height:
            raise ValueError(f"strips have shape {strips.shape}; expected (N, {self.height}, width)")
        if not self.dynamic_batch and len(strips) > 1:
            return np.concatenate([self.column_probabilities(strips[index:index + 1])
                                   for index in range(len(strips))])
        interpreter, input_spec, output_spec = self._interpreter_for((len(strips), strips.shape[2]))
        self._set_input(interpreter, input_spec, self._preprocess(strips, input_spec))
        self.invoke(interpreter)
        return self._postprocess(interpreter.get_tensor(output_spec.index), output_spec)

    def decode(self, probabilities: np.ndarray) -> str:
        """The digits of one strip's column probabilities (T, classes), greedily decoded."""
        decoding = greedy_ctc_decode(probabilities, self.blank_index)
        return "".join(self.labels[label] for label in decoding.labels)

    def output_step(self) -> float:
        """The smallest probability step the model's output can express (its quantization scale; 0 for float)."""
        _, _, output_spec = self._interpreter_for(None)
        return float(output_spec.scale) if output_spec.quantized else 0.0

    def top_confidence(self) -> float:
        """The highest probability the model can report for a column: an int8 softmax stops one step
        short of 1 (255/256 for the packaged model); a float model or one that outputs logits reaches 1."""
        _, _, output_spec = self._interpreter_for(None)
        if not output_spec.quantized:
            return 1.0
        limits = np.iinfo(output_spec.dtype)
        raw = np.full((1, 1, self.num_classes), limits.min, output_spec.dtype)
        raw[..., 0] = limits.max
        return float(self._postprocess(raw, output_spec).max())

    def invoke(self, interpreter) -> None:
        interpreter.invoke()

    def _preprocess(self, strips: np.ndarray, input_spec: TensorSpec) -> np.ndarray:
        pixels = strips
        if self.polarity == constants.POLARITY_BLACK_ON_WHITE:
            pixels = 1.0 - pixels
        black, white = self.input_range
        if (black, white) != (0.0, 1.0):
            pixels = pixels * (white - black) + black
        pixels = pixels.reshape((len(pixels), *input_spec.shape[1:]))
        if not input_spec.quantized:
            return pixels.astype(input_spec.dtype, copy=False)
        limits = np.iinfo(input_spec.dtype)
        quantized = np.rint(pixels * (1.0 / input_spec.scale) + input_spec.zero_point)
        return np.clip(quantized, limits.min, limits.max).astype(input_spec.dtype)

    def _set_input(self, interpreter, input_spec: TensorSpec, tensor: np.ndarray) -> None:
        interpreter.set_tensor(input_spec.index, tensor)

    def _postprocess(self, raw: np.ndarray, output_spec: TensorSpec) -> np.ndarray:
        values = raw.astype(np.float32)
        if output_spec.quantized:
            values = (values - output_spec.zero_point) * output_spec.scale
        values = values.reshape(len(values), -1, self.num_classes)
        temperature = np.float32(self.description.temperature)
        if self.description.output == "logits" or values.min() < -1e-3 or values.max() > 1 + 1e-3:
            shifted = np.exp((values - values.max(axis=-1, keepdims=True)) / temperature)
            return shifted / shifted.sum(axis=-1, keepdims=True)
        if temperature != 1.0:  # calibration (scripts/calibrate.py --line): softmax(log p / T), argmax unchanged
            # A quantized zero means "under one step": floored at half a step, as the fit floors it.
            floor = np.float32(output_spec.scale / 2 if output_spec.quantized else 0.0)
            values = np.power(np.maximum(values, floor), np.float32(1.0) / temperature)
            values /= np.maximum(values.sum(axis=-1, keepdims=True), np.float32(1e-30))
        return values

    def _reading(self, probabilities: np.ndarray, strip: LineStrip) -> LineReading:
        decoding = greedy_ctc_decode(probabilities, self.blank_index)
        stride = strip.pixels.shape[1] / len(probabilities)
        x_ranges = _digit_x_ranges(decoding.columns, stride, strip)
        return LineReading(
            digits="".join(self.labels[label] for label in decoding.labels),
            confidences=tuple(float(value) for value in decoding.confidences),
            x_ranges=x_ranges, columns=tuple((int(a), int(b)) for a, b in decoding.columns),
            confidence=float(decoding.step_confidences.min()) if len(decoding.step_confidences) else 0.0,
            probabilities=probabilities, strip=strip)

    def _interpreter_for(self, shape: tuple[int, int] | None):
        """An allocated interpreter for (batch, width), one per shape, so changing widths never re-plans."""
        if shape in self._interpreters:
            return self._interpreters[shape]
        try:
            with _quiet_native_logs():
                interpreter = self._interpreter_class(model_content=self._model_bytes, num_threads=self.num_threads)
            if shape is not None:
                details = interpreter.get_input_details()[0]
                batch, width = shape
                current = [int(v) for v in details["shape"]]
                if [batch, width] != [current[0], current[2]]:
                    interpreter.resize_tensor_input(details["index"], [batch, current[1], width, *current[3:]])
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"{self.path}: the interpreter cannot run this model at shape {shape} ({message})") \
                from error
        entry = (interpreter, TensorSpec.from_details(interpreter.get_input_details()[0]),
                 TensorSpec.from_details(interpreter.get_output_details()[0]))
        if len(self._interpreters) >= 64:  # Widths are bucketed (32 pixels); a bound keeps odd callers in check.
            self._interpreters.clear()
        self._interpreters[shape] = entry
        return entry

    def _check_signature(self, input_spec: TensorSpec, output_spec: TensorSpec) -> None:
        shape = input_spec.shape
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 1):
            raise ValueError(f"{self.path}: input shape {list(shape)} is not a line strip; expected "
                             f"[batch, height, width, 1] or [batch, height, width]")
        if len(output_spec.shape) not in (3, 4):
            raise ValueError(f"{self.path}: output shape {list(output_spec.shape)} is not a per-column CTC "
                             f"output; expected [batch, columns, classes]")
        for role, spec in (("input", input_spec), ("output", output_spec)):
            if spec.dtype not in (np.float32, np.uint8, np.int8):
                raise ValueError(f"{self.path}: {role} dtype {np.dtype(spec.dtype).name} is not supported; "
                                 f"expected float32, uint8 or int8")

    def _labels(self, description: metadata.ModelDescription) -> tuple[str, ...]:
        if description.embedded and len(description.labels) == self.num_classes:
            return tuple(description.labels)
        if self.num_classes != NUM_CLASSES:
            raise ValueError(f"{self.path}: {self.num_classes} output classes and no embedded labels; a "
                             f"third-party line model needs 11 classes: the digits 0-9 in order and the blank")
        digits = iter(constants.LABELS)
        return tuple("" if index == self.blank_index else next(digits) for index in range(NUM_CLASSES))


def _digit_x_ranges(columns: np.ndarray, stride: float, strip: LineStrip) -> tuple[tuple[int, int], ...]:
    """Input-image x ranges of the decoded digits from their CTC column runs.

    A CTC model emits a digit in a narrow run of columns, usually near its middle, so each digit
    gets the span from halfway to its neighbours' runs, the first and last extended to the ink edges.
    """
    if len(columns) == 0:
        return ()
    centres = (columns[:, 0] + columns[:, 1]) / 2.0 * stride
    ink_start, ink_end = strip.margin, strip.margin + strip.ink_width
    bounds = np.r_[ink_start, (centres[1:] + centres[:-1]) / 2.0, ink_end]
    bounds = np.clip(bounds, ink_start, ink_end)
    left = np.floor(strip.to_input_x(bounds[:-1])).astype(int)
    right = np.ceil(strip.to_input_x(bounds[1:])).astype(int)
    return tuple((int(a), int(max(b, a + 1))) for a, b in zip(left, right))


def _quiet_native_logs():
    """The digit classifier's guard against the C++ runtime's start-up notices, when it has one."""
    from edge_runtime import interpreter

    guard = getattr(interpreter, "_native_stderr_silenced", None)
    return guard() if guard is not None else contextlib.nullcontext()


def _read_model_bytes(path: pathlib.Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"{path}: line model file not found")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a .tflite model file")
    model_bytes = path.read_bytes()
    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TensorFlow Lite model (no 'TFL3' identifier; "
                         f"{len(model_bytes)} bytes starting {model_bytes[:8]!r})")
    return model_bytes
