"""`DigitReader`: image in, digits out, with confidences, boxes, per-digit probabilities and a status."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import time
from collections.abc import Callable

import numpy as np

from edge_runtime import constants, imageio, interpreter, layout, orientation as orientation_module, preprocess, separators
from edge_runtime.interpreter import DigitClassifier
from edge_runtime.segment import crop as segment_crop, light as segment_light, result as segment_result

READERS = ("auto", "cuts", "line")
"""How numbers are read: see `ReaderOptions.reader`."""

DEFAULT_MODEL = pathlib.Path(__file__).parent / "models" / "digitkit_int8.tflite"


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """How images are read.

    Attributes:
        single: Read only the most prominent digit.
        min_confidence: Digits less certain than this are rejected (reported, not trusted).
        polarity: The picture's ink: "auto", "dark-on-light" (pen on paper) or "light-on-dark" (chalk).
        num_threads: Interpreter threads.
        orientation: How the pages lie: "0", "90", "180" or "270" degrees clockwise, or "auto": a
            doubtful upright reading is tried turned, and the most confident turn wins.
        reader: "cuts" (cut each line into digits and classify each), "line" (read each line whole with
            the CTC line model) or "auto" (the line model where the cuts are doubtful, if it is surer).
        line_model: A CTC line model (`.tflite`); None is the packaged one.
        line_model_blank: The blank class of a line model without digitkit metadata.
        explain: Keep every piece segmentation dropped, with its reason, in `ReadResult.dropped`.
    """

    single: bool = False
    min_confidence: float = 0.0
    polarity: str = "auto"
    num_threads: int = 1
    orientation: str = "auto"
    explain: bool = False
    reader: str = "auto"
    line_model: str | None = None
    line_model_blank: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence={self.min_confidence}: must be between 0 and 1")
        if self.num_threads < 1:
            raise ValueError(f"num_threads={self.num_threads}: must be at least 1")
        self.preprocess_options()  # Validates polarity with the valid choices in the message.
        orientation_module.check(self.orientation)
        if self.reader not in READERS:
            raise ValueError(f"reader {self.reader!r} is not one of {', '.join(READERS)}")

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
        group: Group index through the whole image (see `edge_runtime.layout`).
    """

    label: str
    confidence: float
    box: tuple[int, int, int, int]
    probabilities: np.ndarray | None
    crop: np.ndarray | None
    line: int
    accepted: bool
    group: int = 0


@dataclasses.dataclass(frozen=True)
class ReadResult:
    """What was read from one image.

    Attributes:
        digits: The number read, in reading order; rejected digits show as "?"; groups are separated by
            a space and lines by " / " (see `edge_runtime.layout`).
        status: "ok", "rejected" (some digit under `min_confidence`), "no digit found" or "error".
        items: Each digit with its box, confidence and probabilities.
        source: The file path or a caller's label.
        error: What went wrong, for status "error".
        image_shape: Height and width of the image read.
        seconds: Time spent decoding, preprocessing and classifying.
        dropped: Pieces that were found but are not digits, each (box, reason), for `--explain`.
        orientation: Degrees clockwise the page lay; the boxes are in the image as given.
        notes: What segmentation did to the page as a whole (levelled a page photographed askew, looked
            again at faint ink or at small digits), for `--explain`.
        warning: Something the reading did not suffer from but the user should know (an overlay that
            could not be written, pages of a multi-page TIFF not read); printed on stderr, not a row field.
    """

    digits: str
    status: str
    items: tuple[Digit, ...] = ()
    source: str = ""
    error: str = ""
    image_shape: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    warning: str = ""
    dropped: tuple[tuple[tuple[int, int, int, int], str], ...] = ()
    orientation: int = 0
    notes: tuple[str, ...] = ()

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
                "boxes": [list(box) for box in self.boxes], "lines": layout.structure(self.items),
                "orientation": self.orientation}


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
            model_path: A `.tflite` file; None or "auto" means the fastest model shipped with the package.
            options: Reading options.
            **classifier_overrides: `input_range`, `polarity`, `output` for models without metadata.
        """
        self.options = options
        from edge_runtime import variants  # None or "auto": the fastest packaged variant on this CPU.

        self.model_choice = variants.resolve(model_path, options.num_threads)
        self.model_path = self.model_choice.path
        self.classifier = DigitClassifier(self.model_path, num_threads=options.num_threads, **classifier_overrides)
        self._preprocess_options = options.preprocess_options()
        self.line_recognizer = None
        self._line_ceiling: float | None = None  # the line model's top confidence, read when first needed
        if options.reader != "cuts":
            from edge_runtime import line_reader  # the CTC line model (issue 9)

            self.line_recognizer = line_reader.LineRecognizer(options.line_model, num_threads=options.num_threads,
                                                              blank_index=options.line_model_blank)

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
        return self.read_images([image], [source or ""], started)[0]

    def read_images(self, images: list[np.ndarray], sources: list[str], started: float | None = None,
                    keep_details: bool = True, turns: bool = True) -> list[ReadResult]:
        """Reads several decoded images, classifying all their crops in one interpreter call.

        This is the one reading path: single images, folders (in workers), the camera and `--show`
        all come here. With orientation "auto", doubtful readings are tried turned (unless `turns`
        is False: the camera's frames are upright and its budget is a few milliseconds).
        """
        started = time.perf_counter() if started is None else started
        try_turns = turns and self.options.orientation == "auto"
        turns = [self._fixed_turn()] * len(images)
        shapes = [image.shape[:2] for image in images]
        crops = [self.find(orientation_module.upright(image, turn)) for image, turn in zip(images, turns)]
        cut_results = self.classify(crops, sources, shapes, started, keep_details, turns)
        results = [self._finished(image, result) for image, result in zip(images, cut_results)]
        if try_turns:
            results = [self._best_turn(image, cuts, result, started, keep_details)
                       if _doubtful(result) and not self._is_cell(image) else result
                       for image, cuts, result in zip(images, cut_results, results)]
        if not keep_details:
            # The line model's digits come with their strip's crop and column: a batch keeps none.
            results = [_without_details(result) for result in results]
        return results

    def _finished(self, image: np.ndarray, result: ReadResult) -> ReadResult:
        """The cuts' reading at its turn, with what segmentation dropped (where needed) and the line passes."""
        viewed = self._segmentation_view(image, result)
        finished = viewed if self.line_recognizer is None else self._with_line_models(image, viewed)
        finished = _without_broken_lines(_without_strays(finished))
        return dataclasses.replace(finished, notes=viewed.notes) if viewed.notes else finished

    def _with_line_models(self, image: np.ndarray, result: ReadResult) -> ReadResult:
        """The line model's passes, at the reading's turn: doubtful lines, then a cut-out cell
        whole. With `single`, or on an MNIST tile (one digit, which the digit model reads best), there is
        no line pass."""
        tuning = self._preprocess_options.tuning
        if result.status == constants.STATUS_ERROR or self.options.single or (
                result.items and segment_crop.is_mnist_tile(image, tuning)):
            return result  # one digit asked for, or an MNIST tile: the digit model's reading stands
        confirmed = False
        # Decided once per image, and only if a line pass runs: most reads never need it.
        polarity = functools.cache(lambda: segment_light.page_polarity(
            image, self.options.polarity, self._preprocess_options.work_side, tuning))
        if result.items:
            result, confirmed = self._with_line_model(image, result, result.orientation, polarity)
        elif not self._is_cell(image):  # a cell is read whole below anyway
            result = self._run_together_lines(image, result, result.orientation, polarity)
        if confirmed and len(result.items) >= _CONFIRMED_NUMBER:
            return result  # the two models agree on a number: a third reading does not overrule them
        return self._small_strip_by_line(image, result, result.orientation, polarity)

    def _with_line_model(self, image: np.ndarray, result: ReadResult, turn: int,
                         polarity: Callable[[], str]) -> tuple[ReadResult, bool]:
        """Re-reads each line whole with the line model: every line ("line"), or doubtful ones ("auto").

        A wide piece on the line that the digit model called "not a digit", but not surely, is often two
        digits run together: the line is then doubtful and its region takes the piece in (see
        `_taken_into_line`); the line reading is kept only if it still holds, in order, the cut digits the
        digit model was sure of (a doubted cut may be half a digit: harkib's 4, written in two strokes,
        was cut as a 2 at 0.35 and a piece that is none), and is surer than they are
        (where its digits over the piece need only pass `_MARK_READ`: see `_sureness_off_marks`), or
        reads beside the piece the very digits the cuts read (`_agrees_beside_marks`).

        Returns:
            The reading, and whether the line model confirmed the cuts: it read some line as the
            cuts did, and replaced no line with other digits. A line read the same but not surer
            counts as confirmed too (twelfth session: Meza's `157`, darker, was cut as `157` at
            0.81 and read `157` by the line model at 0.8, then `151` whole by three of four ink
            floors; the real photos' everyday versions: numbers +1, made harder: numbers +1).
        """
        upright = orientation_module.upright(image, turn)
        upright_boxes = [orientation_module.box_in_upright(digit.box, turn, image.shape[:2]) for digit in result.items]
        pieces = _not_a_digit_upright(result.dropped, turn, image.shape[:2])
        digits: list[Digit] = []
        replaced, confirmed = 0, True
        read_marks: list[tuple[int, int, int, int]] = []  # marks the kept line readings took in
        for line in sorted({digit.line for digit in result.items}):
            members = [index for index, digit in enumerate(result.items) if digit.line == line]
            cut = [result.items[index] for index in members]
            boxes = [upright_boxes[i] for i in members]
            marks = [(box, probability) for box, probability in pieces
                     if _on_line(box, boxes) and _taken_into_line(box, probability, boxes)]
            if (self.options.reader == "auto" and not marks and not _doubtful_line(cut, boxes)) or _slanted(boxes):
                digits += cut  # a line running across the page at a slant is no strip the line model can read
                continue
            read = self._line_digits(upright, boxes + [box for box, _ in marks], line, turn, image.shape[:2], polarity)
            cut_confidence = min(digit.confidence for digit in cut)
            # With a mark taken in, the line reading must still hold the cut digits, in order: a
            # letter beside a number ("Rm 45") must not turn into digits that replace it.
            off_marks, on_marks = _split_by_marks(read, [box for box, _ in marks], turn, image.shape[:2])
            better = read and (self.options.reader == "line" or (
                (_agrees_beside_marks(off_marks, on_marks, cut)
                 or self._surer(_sureness_off_marks(off_marks, on_marks), cut_confidence))
                and (not marks or _in_order([d.label for d in cut if d.confidence >= _LINE_DOUBT],
                                            [d.label for d in read]))
                and _covers(read, cut, turn, image.shape[:2])
                and _sure_over_sure_marks(read, [box for box, probability in marks if probability >= _LINE_DOUBT
                                                 and not _touches_line(box, boxes)], turn, image.shape[:2])))
            digits += read if better else cut
            same = [digit.label for digit in read] == [digit.label for digit in cut]
            if better:
                read_marks += [box for box, _ in marks]
            if better or same:
                replaced += 1
                confirmed &= same
        digits = _regrouped(digits, turn, result.dropped)
        dropped = _noted_as_read(result.dropped, read_marks, turn, image.shape[:2])
        return (_result(tuple(digits), dropped, result.source, result.image_shape, result.seconds, turn),
                replaced > 0 and confirmed)

    def _run_together_lines(self, image: np.ndarray, result: ReadResult, turn: int,
                            polarity: Callable[[], str]) -> ReadResult:
        """Reads whole, with the line model, the lines of an image whose every piece the digit model called
        "not a digit", made of pieces at least `_WIDE_MARK` times as wide as tall: digits written touching
        form one piece per run (`1950` as `19` and `50`, `253` as one), and no piece of such a run looks
        like one digit. A line's reading is kept if it holds `_RUN_TOGETHER_DIGITS` digits or more, each at
        least `_RUN_TOGETHER_SURE`: a lone wide piece is more often a digit lying on its side (the turns
        then read it), and a word's letters are read unsurely.

        Before, such an image had no digit for a line pass to start from: it was read turned, as one
        digit (`1950` read `8` at 90 degrees), or not at all. Realistic synthetic numbers, six seeds not
        tuned on (`scripts/make_realistic_set.py --seed 21` to 26, 100 numbers each): 5 more right; the
        real photos, the photos made harder, the forms, dates, large photos and printed labels unchanged.
        The risk: a lone sideways 8 can pass for `00` (the packaged line model reads shrsai123's at 0.34
        and 0.99, so it is still read turned; another model read it at 0.9 and more).
        """
        upright = orientation_module.upright(image, turn)
        lines = _lines_of([box for box, _ in _not_a_digit_upright(result.dropped, turn, image.shape[:2])
                           if box[2] >= _WIDE_MARK * box[3]])
        digits, read_marks = [], []
        for index, boxes in enumerate(lines):
            read = self._line_digits(upright, boxes, index, turn, image.shape[:2], polarity)
            if len(read) >= _RUN_TOGETHER_DIGITS and min(digit.confidence for digit in read) >= _RUN_TOGETHER_SURE:
                digits += read
                read_marks += boxes
        if not digits:
            return result
        dropped = _noted_as_read(result.dropped, read_marks, turn, image.shape[:2])
        return _result(tuple(_regrouped(digits, turn, result.dropped)), dropped, result.source,
                       result.image_shape, result.seconds, turn)

    def _surer(self, line_confidence: float, cut_confidence: float) -> bool:
        """Whether the line model's least certain digit is surer than the cuts' least certain one.

        An int8 line model cannot say more than its top output step (255/256 for the packaged one), so a
        reading there is as sure as it can be and counts as surer than any cut: before, a `963` that
        the line model read at its top step lost to the cuts' lone `3` at 0.998.
        """
        if self._line_ceiling is None:
            self._line_ceiling = self.line_recognizer.top_confidence()
        return line_confidence > cut_confidence or line_confidence >= self._line_ceiling - _CEILING_SLACK

    @staticmethod
    def _is_cell(image: np.ndarray) -> bool:
        """Whether the image is a small cut-out cell (shorter side under `_CELL_BELOW`).

        A cell is cut from a form in the form's own orientation, so it is read upright: its one or two
        digits cannot tell a turn apart anyway (a 6 turned is a 9, a 2 turned half round is still a 2).
        """
        return min(image.shape[:2]) < _CELL_BELOW

    def _small_strip_by_line(self, image: np.ndarray, result: ReadResult, turn: int,
                             polarity: Callable[[], str]) -> ReadResult:
        """A cut-out cell is also read whole by the line model, which wins when its least certain digit
        is surer than the reading's (faint or touching digits a few pixels high often leave pieces
        that cut badly, or none that passes as a digit), or when it holds the cuts' number and more
        (`_adds_to_the_cuts`). An image lower or narrower than a digit (`Tuning.min_digit_height`)
        holds none: the line model, which scales any ink to its strip, read 2 x 2 and 5 x 5 pixels of
        noise as `10`."""
        if not self._is_cell(image) or min(image.shape[:2]) < self._preprocess_options.tuning.min_digit_height:
            return result
        from edge_runtime import line_path

        result = _without_column_stubs(result, image.shape[:2], turn)
        upright = orientation_module.upright(image, turn)
        whole = [(0, 0, upright.shape[1], upright.shape[0])]
        # Faint strokes and grey borders sit at different ink levels in every cell: each level where
        # ink begins gives its own reading; the one most levels agree on is kept (see `_voted`).
        readings = [self._line_digits(upright, whole, 0, turn, image.shape[:2], polarity, ink_floor)
                    for ink_floor in line_path.CELL_INK_FLOORS]
        text, digits, share = _voted(readings, "".join(digit.label for digit in result.items))
        least = min((digit.confidence for digit in digits), default=0.0)
        cut_least = min((digit.confidence for digit in result.items), default=0.0)
        if least <= _STRIP_FALLBACK or (least <= cut_least and not _adds_to_the_cuts(result.items, text, share)):
            return result
        digits = self._as_sure_as_the_vote(digits, share)
        return _result(tuple(_regrouped(digits, turn, result.dropped)), result.dropped, result.source, result.image_shape,
                       result.seconds, turn)

    def _as_sure_as_the_vote(self, digits: list[Digit], share: float) -> list[Digit]:
        """A cell's whole reading that no majority of its ink floors gave is no surer than that share.

        On the real set's tuning part, such readings were right 10 times in 15 (among them Meza's
        flagged 1, read `11` at 0.97 by two floors of four, `111` and `1` by the others), and those
        that most floors agree on 47 times in 47.
        """
        if share > _MAJORITY:
            return digits
        return _capped(digits, share, self.options.min_confidence)

    def _line_digits(self, upright: np.ndarray, boxes, line: int, turn: int, original_shape,
                     polarity: Callable[[], str], ink_floor: float | None = None) -> list[Digit]:
        """The line model's digits of one line (a cut-out cell's own ink floor when `ink_floor` is given).

        `polarity` gives the page's polarity as segmentation decides it: a line's region alone can
        mistake a shaded cell's paper for a board (see `segment.light.page_polarity`).
        """
        from edge_runtime import line_path

        x, y, width, height = line_path.region(boxes, upright.shape[:2])
        ink = line_path.line_ink(upright, (x, y, width, height), polarity(), ink_floor)
        reading = self.line_recognizer.read_line(ink)
        scale = ink.shape[1] / width  # ink columns per image column (a tall region's ink comes back shrunk)
        threshold = self.options.min_confidence
        digits = []
        for label, confidence, x_range, columns in zip(reading.digits, reading.confidences, reading.x_ranges,
                                                      reading.columns):
            left, right = int(x_range[0] / scale), int(round(x_range[1] / scale))
            box = (x + left, y, max(1, right - left), height)
            column = reading.probabilities[columns[0]:columns[1]]
            probabilities = column[int(column.max(axis=1).argmax())] if len(column) else None
            digits.append(Digit(label, float(confidence),
                                orientation_module.box_in_original(box, turn, original_shape),
                                probabilities, line_path.digit_crop(ink, x_range), line,
                                float(confidence) >= threshold))
        return digits

    def _fixed_turn(self) -> int:
        return 0 if self.options.orientation == "auto" else int(self.options.orientation)

    def _best_turn(self, image: np.ndarray, upright_cuts: ReadResult, upright_result: ReadResult,
                   started: float, keep_details: bool) -> ReadResult:
        """Reads a doubtful image turned by each quarter turn and keeps the most believable reading.

        Only a reading still doubtful after the line passes gets here (a doubtful cut that the line model
        reads surely upright is no reason to turn the page); the turns are then compared on their cuts.

        Args:
            image: The image as given.
            upright_cuts: The digit model's reading of the upright image's cuts.
            upright_result: The finished upright reading (`_finished`: line passes included).
            started: perf_counter at the start of the read.
            keep_details: Keep probabilities and crops.
        """
        turns = (90, 270, 180)
        crops = [self.find(orientation_module.upright(image, turn)) for turn in turns]
        shape = image.shape[:2]
        candidates = self.classify(crops, [upright_result.source] * 3, [shape] * 3, started, keep_details, turns)
        # A turn must cut at least as many digits and clearly beat upright: upright handwriting is far
        # more common than sideways, and a number read turned often collapses into one confident blob.
        rivals = [candidate for candidate in candidates if len(candidate.items) >= len(upright_cuts.items)]
        best = max(rivals, key=orientation_module.score, default=upright_cuts)
        margin = _TURN_MARGIN if upright_cuts.items else 0.0
        if orientation_module.score(best) <= orientation_module.score(upright_cuts) + margin:
            return upright_result
        opposite = _opposite_reading(best, candidates, turns)
        best = self._finished(image, best)
        if orientation_module.score(best) <= orientation_module.score(upright_result):
            return upright_result
        return self._as_sure_as_the_turn(best, opposite)

    def _as_sure_as_the_turn(self, result: ReadResult, opposite: ReadResult | None) -> ReadResult:
        """A page read sideways whose opposite quarter turn reads other digits about as surely is no
        surer than a coin toss: nothing tells a page lying 90 degrees one way from 270 the other.

        shrsai123's lone 9 on a sideways page reads 9 at 90 degrees (mean log-confidence -0.066) and 6
        at 270 (-0.061), and was accepted as a 6 at 0.94; its lone 6 reads 6 and 9 (-0.004, -0.007).
        Both are now at 0.5, rejected at the CLI's default.
        """
        if opposite is None or [digit.label for digit in opposite.items] == [digit.label for digit in result.items]:
            return result
        if orientation_module.score(opposite) < orientation_module.score(result) - _TURN_MARGIN:
            return result
        items = tuple(_capped(list(result.items), _SIDEWAYS_DOUBT, self.options.min_confidence))
        capped = _result(items, result.dropped, result.source, result.image_shape, result.seconds, result.orientation)
        return dataclasses.replace(capped, notes=result.notes)

    def _segmentation_view(self, image: np.ndarray, result: ReadResult) -> ReadResult:
        """Adds what segmentation dropped, and why, where it is needed: with `explain`, and when the model
        found a non-digit among the pieces (then a line that is mostly letters or marks is no number:
        "HELLO" holds an O, not a 0). Segmenting again costs a few ms, so only these reads pay it."""
        marked = any(reason.startswith(_NOT_A_DIGIT_REASON) for _, reason in result.dropped)
        if result.status == constants.STATUS_ERROR or not (self.options.explain or marked):
            return result
        turn = result.orientation
        upright = orientation_module.upright(image, turn)
        segmentation = preprocess.segment_image(upright, self._preprocess_options)
        pieces = [(orientation_module.box_in_original(item.box, turn, image.shape[:2]), item.reason)
                  for item in segmentation.dropped]
        digits = list(result.items)
        if marked and digits:
            kept = _without_words(digits, [box for box, reason in result.dropped
                                           if reason.startswith(_NOT_A_DIGIT_REASON)]
                                  + [box for box, reason in pieces if reason not in _PAPER_REASONS])
            if len(kept) != len(digits):
                dropped = result.dropped + tuple((digit.box, "in a line of letters or marks") for digit in digits
                                                 if digit not in kept)
                result = _result(tuple(kept), dropped, result.source, result.image_shape, result.seconds, turn)
        if self.options.explain:
            # A second look is taken per line of small digits: one note says so for the page.
            notes = tuple(dict.fromkeys(event.reason for event in segmentation.events
                                        if event.kind in segment_result.PAGE_EVENTS))
            result = dataclasses.replace(result, dropped=tuple(pieces) + result.dropped, notes=notes)
        return result

    def find(self, image: np.ndarray) -> list[preprocess.DigitCrop]:
        """The digits' crops in reading order (no model involved)."""
        return preprocess.extract_digits(image, self._preprocess_options)

    def classify(self, crops_per_image, sources, shapes, started: float | None = None,
                 keep_details: bool = True, turns=None) -> list[ReadResult]:
        """Classifies the crops of several images in one batched interpreter call.

        Args:
            crops_per_image: For each image, its `DigitCrop`s.
            sources: For each image, its name.
            shapes: For each image, its (height, width).
            started: perf_counter() when work on these images began, for `seconds`.
            keep_details: Keep each digit's crop and probabilities; batches drop them, so that results
                cross process boundaries cheaply.
            turns: For each image, degrees clockwise the page lay when its crops were found (boxes are
                mapped back into the image as given); default upright.
        """
        started = time.perf_counter() if started is None else started
        turns = turns or [0] * len(crops_per_image)
        flat = [crop for crops in crops_per_image for crop in crops]
        probabilities = self.classifier.classify(np.stack([crop.image for crop in flat])) if flat else None
        results, cursor = [], 0
        elapsed = (time.perf_counter() - started) / max(1, len(crops_per_image))
        for crops, source, shape, turn in zip(crops_per_image, sources, shapes, turns):
            rows = probabilities[cursor:cursor + len(crops)] if crops else None
            cursor += len(crops)
            problem = interpreter.output_problem(rows) if crops else ""
            if problem:  # NaN or a flat output is no reading: an error row, never `ok` (issue 12).
                results.append(error_result(source, f"{source}: {problem}"))
                continue
            shape = (int(shape[0]), int(shape[1]))
            digits, dropped = self._digits(crops, rows, keep_details, turn, shape)
            results.append(_result(digits, dropped, source, shape, elapsed, turn))
        return results

    def _digits(self, crops, rows, keep_details: bool, turn: int, shape: tuple[int, int]):
        """The digits among the crops, and the pieces the model judged not to be digits."""
        labels, threshold = self.classifier.description.labels, self.options.min_confidence
        kept, kept_crops, dropped = [], [], []
        for crop, row in zip(crops, rows if rows is not None else ()):
            best = int(row.argmax())
            box = orientation_module.box_in_original(tuple(int(v) for v in crop.box), turn, shape)
            if labels[best] == constants.NOT_A_DIGIT:
                dropped.append((box, _not_a_digit_reason(float(row[best])), crop.line))
                continue
            # The confidence of a digit is its probability among the digits and "not a digit" alike.
            confidence = float(row[best])
            kept.append(Digit(labels[best], confidence, box, row if keep_details else None,
                              crop.image if keep_details else None, crop.line, confidence >= threshold))
            kept_crops.append(crop)
        dropped = [(box, reason) for box, reason, _ in dropped]
        slashes = set()
        if len(kept) >= 3:  # a slash stands between two digits
            slashes = set(separators.slashes([crop.box for crop in kept_crops], [crop.image for crop in kept_crops],
                                             [digit.label for digit in kept], [crop.line for crop in kept_crops]))
        separator_boxes = [digit.box for index, digit in enumerate(kept) if index in slashes]
        kept = [digit for index, digit in enumerate(kept) if index not in slashes]
        dropped += [(box, separators.REASON) for box in separator_boxes]
        return tuple(_with_groups(kept, turn, separator_boxes)), tuple(dropped)


_TURN_MARGIN = 0.3
"""Mean log-confidence by which a turned reading must beat a doubtful upright one."""

_DOUBTFUL = 0.9
"""An upright reading whose least certain digit is under this is tried turned (orientation auto)."""


_LINE_DOUBT = 0.9
"""With reader "auto", a line is read again whole when one of its cut digits is less certain than this ..."""

_CELL_BELOW = 96
"""Images whose shorter side is under this many pixels are cut-out cells. The logbook cells of the
real set are 34 pixels high; scanned at twice the resolution (68), they were no longer cells under the
former limit of 64, and 8 of their single digits were lost (143 against 151 of 154 real singles)."""

_CEILING_SLACK = 1e-6
"""Float slack when comparing a confidence with the line model's top output step."""

_CONFIRMED_NUMBER = 2
"""A cut-out cell whose number of at least this many digits the line model, reading the cut digits'
region, confirmed is not read again whole: the whole-cell reading (at the ink floor most of its
readings agree on) dropped the 1 of Meza's `51` that both models had read. Real numbers 41 -> 42 of
55; the photos made harder: numbers 286 -> 292, singles 1,469 -> 1,468 (a twice-size 1 read as two);
the synthetic sets and the forms unchanged. A single digit is still read whole: there the cuts and
the line model often agree on a cell's border piece read as a 1."""

_MAJORITY = 0.5
"""A cell read whole at its ink floors: the share of them that must give the kept reading for its own
confidence to stand (see `DigitReader._as_sure_as_the_vote`)."""

_EXTENDED_NUMBER = 2
"""A cut-out cell whose cuts read a number of at least this many digits takes the whole-cell reading
that holds it and adds digits (`_adds_to_the_cuts`), however sure the cuts were. Twelfth session,
measured on the real photos' everyday versions: numbers 330 -> 335 of 440 (Meza's `13400` and `5100`,
cut as `3400` and `500`), singles unchanged (1,203); made harder: numbers 354 -> 356; the photos as they
are, forms, dates, printed labels, large photos and realistic numbers unchanged. From one digit
(`_EXTENDED_NUMBER` 1): numbers 340 but singles 1,199, each lost single a cell's neighbour read in."""

_CELL_STUB_WIDTH = 0.4
"""Box width over height: a cut digit of a cell this thin or thinner may be a column stub (`_without_column_stubs`)."""

_CELL_STUB_SIDE = 0.2
"""Of a cell's width: column stubs lie this near its left or right end. Twelfth session, with the ink floors'
ties going to the reading the cuts agree with: the real photos' everyday versions, singles 1,206 -> 1,209
and numbers 341 -> 343; made harder 1,477 -> 1,480 and 366 -> 368; small cells nothing was tuned on
(`scripts/small_cells.py`, 900 reads) 798 -> 802, all of those from the ties."""

_STRIP_FALLBACK = 0.5
"""A cell read whole must be at least this sure of each digit (and surer than the cuts' least sure digit)."""

_WIDE_PIECE = 1.1
"""... or when one of its pieces is this much wider than tall (digits left touching)."""


_WIDER_THAN_LINE = 1.6
"""... or when one of its pieces is this much wider (for its height) than the line's median piece: two
digits touching, read as one digit with confidence (`18115` as `1815`, `18037` as `1837` in the
synthetic set). The median counts as at least `_NARROWEST_MEDIAN`, so that in a line of 1s a plain
digit is no doubt. Synthetic numbers 87 -> 89 of 100 (seed 0); the photos made harder: numbers
292 -> 294 (Meza `154` turned by 8 degrees either way); the real photos, seed 7 and the forms
unchanged. With the median floored at 0.3 instead, a twice-size Meza `3` was lost (its cell's stub
read as a 1)."""

_NARROWEST_MEDIAN = 0.4
"""The narrowest width-to-height the line's median piece counts as, for `_WIDER_THAN_LINE`: 1s are
about 0.2, plain digits 0.5-0.7."""

_LONE_WIDE = 0.75
"""... or when its only piece is wider than this share of its height: the synthetic `94`, two small
digits touching, was one piece read as a 4 at 0.975 (synthetic numbers 89 -> 90; 0.65-0.75 measure the
same; no other set changes, as the line reading must still be surer and cover the cut digit)."""

_LONE_SURE = 0.99
"""... and is read less surely than this: of 1,000 photos of the speed benchmark, 158 hold a lone
wide piece, 130 of them read surer (a wide 0), where the line model could hardly be surer still."""


def _doubtful_line(digits: list[Digit], boxes) -> bool:
    if any(digit.confidence < _LINE_DOUBT for digit in digits) or any(box[2] > _WIDE_PIECE * box[3] for box in boxes):
        return True
    if _written_tight(boxes):
        return True
    if len(boxes) < 2:
        return bool(boxes) and boxes[0][2] > _LONE_WIDE * boxes[0][3] and digits[0].confidence < _LONE_SURE
    aspects = sorted(box[2] / box[3] for box in boxes)
    return aspects[-1] > _WIDER_THAN_LINE * max(aspects[(len(aspects) - 1) // 2], _NARROWEST_MEDIAN)


_TIGHT_GAP = 0.05
"""... or when two of its neighbouring pieces stand at most this share of the line's median height apart
(or overlap): digits written with no gap between them are the ones whose cuts go wrong without any cut
looking doubtful. A 1 touching its neighbour is read with it as one digit (`59918`'s `91` as a `9` at
0.91, `2016` as `206`), or lost to it. Realistic synthetic numbers: seeds 21-26 534 -> 535 of 600, seeds
31-36 528 -> 532; the real photos as they are and made harder, seeds 0 and 7,
forms, dates, large photos and printed labels unchanged; 0.0-0.1 measure the same. It costs 4% of
`auto`'s speed on the benchmark's 640x480 photos (554 -> 530 a second); re-reading every line of two
digits or more instead read the same numbers at 478 a second."""


def _written_tight(boxes) -> bool:
    """Whether two neighbouring pieces of a line stand at most `_TIGHT_GAP` median heights apart."""
    if len(boxes) < 2:
        return False
    ordered = sorted(boxes)
    limit = _TIGHT_GAP * float(np.median([box[3] for box in ordered]))
    return any(_gap(left, right) <= limit for left, right in zip(ordered, ordered[1:]))


def _gap(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> int:
    """The blank columns between two boxes, whichever stands left (negative where they overlap)."""
    return max(second[0] - (first[0] + first[2]), first[0] - (second[0] + second[2]))


_SLANT = 1.6
"""A line whose digits span this many median digit heights from top to bottom runs at a slant."""


def _slanted(boxes) -> bool:
    top = min(box[1] for box in boxes)
    bottom = max(box[1] + box[3] for box in boxes)
    return bottom - top > _SLANT * float(np.median([box[3] for box in boxes]))


def _regrouped(digits: list[Digit], turn: int, dropped=()) -> list[Digit]:
    """Digits from the cuts and the line model together: back in reading order, then grouped (the
    separators among the `dropped` pieces end groups). A line-model digit on a separator is dropped:
    the line model reads a slash as a 1 as the digit model does."""
    separator_boxes = separators.breaks(dropped) if turn == 0 else []  # a turned page's line is one group anyway
    digits = [digit for digit in digits if not separators.on_separator(digit.box, separator_boxes)]
    return _with_groups(sorted(digits, key=lambda digit: (digit.line, digit.box[0] if turn == 0 else 0)), turn,
                        separator_boxes)


def _with_groups(digits: list[Digit], turn: int, separator_boxes=()) -> list[Digit]:
    """Each digit with its group (see `edge_runtime.layout`); on a turned page, a line is one group."""
    if turn == 0:
        groups = layout.assign_groups([digit.box for digit in digits], [digit.line for digit in digits],
                                      separator_boxes)
    else:
        groups = [digit.line for digit in digits]
    return [dataclasses.replace(digit, group=group) for digit, group in zip(digits, groups)]


def _capped(digits: list[Digit], cap: float, threshold: float) -> list[Digit]:
    """The digits, none surer than `cap`, each accepted again against `threshold`."""
    return [dataclasses.replace(digit, confidence=min(digit.confidence, cap),
                                accepted=min(digit.confidence, cap) >= threshold) for digit in digits]


def _opposite_reading(best: ReadResult, candidates: list[ReadResult], turns: tuple[int, ...]) -> ReadResult | None:
    """The cuts' reading at the quarter turn opposite the best one (270 for 90, 90 for 270), or None."""
    if best.orientation not in (90, 270):
        return None
    opposite = 360 - best.orientation
    return next((candidate for candidate, turn in zip(candidates, turns) if turn == opposite), None)


_SIDEWAYS_DOUBT = 0.5
"""The confidence a sideways reading is capped at when the opposite quarter turn reads other digits
about as surely (see `DigitReader._as_sure_as_the_turn`)."""


def _without_details(result: ReadResult) -> ReadResult:
    if all(item.crop is None and item.probabilities is None for item in result.items):
        return result
    items = tuple(dataclasses.replace(item, probabilities=None, crop=None) for item in result.items)
    return dataclasses.replace(result, items=items)


def _doubtful(result: ReadResult) -> bool:
    return result.status != constants.STATUS_ERROR and (not result.items or result.confidence < _DOUBTFUL)


_NOT_A_DIGIT_REASON = "not a digit"

_WIDE_MARK = 0.9
"""A "not a digit" piece at least 0.9 times as wide as it is tall, on a line of digits, that the model
was not sure of (under `_LINE_DOUBT`), may be digits run together."""


def _split_by_marks(read: list[Digit], mark_boxes, turn: int,
                    shape: tuple[int, int]) -> tuple[list[Digit], list[Digit]]:
    """The line reading's digits beside the marks (wide pieces the digit model doubted were digits), and
    those over one (their centre within a mark's columns)."""
    off, on = [], []
    for digit in read:
        x, _, width, _ = orientation_module.box_in_upright(digit.box, turn, shape)
        centre = x + width / 2
        (on if any(box[0] <= centre <= box[0] + box[2] for box in mark_boxes) else off).append(digit)
    return off, on


def _sureness_off_marks(off_marks: list[Digit], on_marks: list[Digit]) -> float:
    """The line reading's least certain digit beside the marks; those over a mark need only be read at
    `_MARK_READ`: -1 when one is not.

    The cuts never read a mark, so their confidence says nothing about it: Meza's `150`, whose faint 1
    was a mark, was read by the line model as 1 (0.62), 5 and 0 (1.0 each), and lost to the cuts' `50`
    (0.75). Real numbers 42 -> 43 of 55; the photos made harder: numbers 294 -> 296; the synthetic sets
    and the forms unchanged. The marks' own digits keep their confidence, so such a number is rejected
    at the CLI's default.
    """
    if on_marks and min(digit.confidence for digit in on_marks) < _MARK_READ:
        return -1.0
    return min((digit.confidence for digit in off_marks), default=1.0)


_MARK_READ = 0.5
"""A digit the line model reads over a mark must be at least this sure (0.4 measures the same, 0.6 loses
two of the photos made harder)."""


def _agrees_beside_marks(off_marks: list[Digit], on_marks: list[Digit], cut: list[Digit]) -> bool:
    """Whether a line reading that takes in marks reads, beside them, the very digits the cuts read, and
    reads each mark as digits at `_MARK_READ` or more: the two models agree where both looked, so the
    line reading need not also be surer there than the cuts (see `_sureness_off_marks`).

    Synthetic seed 0's `1945`, whose joined `19` the digit model called "not a digit" at 0.85: the line
    model read `1945`, its 4 at 0.953 against the cuts' 0.992, and lost to the cuts' `45`. Seed 0
    numbers 90 -> 91; the photos made harder: numbers 321 -> 322; the real photos as they are, seed 7,
    the forms, dates, large photos and printed labels unchanged.
    """
    return (bool(on_marks) and _sureness_off_marks(off_marks, on_marks) >= 0
            and [digit.label for digit in off_marks] == [digit.label for digit in cut])


_SURE_MARK_WIDE = 1.2
"""A "not a digit" piece at least this much wider than tall, on a line of digits, is taken into the line's
region even when the digit model was sure of it (`_LINE_DOUBT` or more): touching digits (`2002`'s `00`,
`95199`'s `199`) make a piece that no digit resembles, so the model is sure it is none. The line model's
digits over such a piece must then be read at `_RUN_TOGETHER_SURE` (`_sure_over_sure_marks`), where those
over a doubted mark need only `_MARK_READ`: printed letters are also sure non-digits (`Room`'s `m`).
Realistic synthetic numbers, seeds 21 to 26 and 7: 5 more right; the real photos, the photos made
harder, forms, dates, large photos and printed labels unchanged (without that stricter read, one more
`Room 45` label read as digits). Measured without the stricter read, an aspect of 1.05 read 2 more
synthetic numbers but lost one of the photos made harder, and 0.9 read 3 more but lost a real number
and 6 of the photos made harder."""

_RUN_TOGETHER_SURE = 0.9
"""The least certain digit the line model may read in a line where the digit model found no digit, only
"not a digit" pieces (`DigitReader._run_together_lines`), and over a piece it was sure is none
(`_SURE_MARK_WIDE`)."""

_RUN_TOGETHER_DIGITS = 2
"""A line of wide "not a digit" pieces is read as a number only if the line model reads this many digits
or more in it: shrsai123's lone 9 lying on its side is one wide piece, which the line model read upright
as `0` at 0.99 (the turns read it right)."""


def _lines_of(boxes) -> list[list[tuple[int, int, int, int]]]:
    """The boxes grouped into text lines, left to right: each joins the first line it shares (`_on_line`)."""
    lines: list[list[tuple[int, int, int, int]]] = []
    for box in sorted(boxes, key=lambda box: box[0]):
        line = next((line for line in lines if _on_line(box, line)), None)
        if line is None:
            lines.append([box])
        else:
            line.append(box)
    return lines


def _sure_over_sure_marks(read: list[Digit], sure_marks, turn: int, shape: tuple[int, int]) -> bool:
    """Whether the line reading's digits over the marks the digit model was sure are no digits are each
    read at `_RUN_TOGETHER_SURE` or more.

    Only marks standing apart from the cut digits are held to that (a printed label's letters); one that
    touches a cut digit (`_touches_line`) is digits run together far more often, and its digits need
    only `_MARK_READ`, as over a doubted mark: the line model read `1960`'s touching `19` as 1 at 0.71 and
    9 at 1.0, `72274`'s `72` with its 2 at 0.88, and the numbers were lost. Realistic synthetic numbers:
    seeds 21-26 535 -> 539 of 600, 31-36 532 -> 535, 41-46 548 -> 549; the real photos as they are and
    made harder, seeds 0 and 7, forms, dates, large photos and printed labels unchanged (one label fewer
    read as digits). The digits read over such a mark keep their own confidence, so at the CLI's default
    a 1 read at 0.71 is still shown as `?`.
    """
    _, on_marks = _split_by_marks(read, sure_marks, turn, shape)
    return all(digit.confidence >= _RUN_TOGETHER_SURE for digit in on_marks)


def _voted(readings: list[list[Digit]], cut_text: str) -> tuple[str, list[Digit], float]:
    """A cell's reading that most of its ink floors gave, its digits and the share of floors that gave it.

    Ties go to the reading the cuts read, if they read any (Meza's `3` beside a column stub: two floors
    read `31`, two `3`), then to the surest; an empty reading is the least sure.
    """
    texts = ["".join(digit.label for digit in digits) for digits in readings]
    text, digits = max(zip(texts, readings), key=lambda pair: (
        texts.count(pair[0]), bool(cut_text) and pair[0] == cut_text,
        min((digit.confidence for digit in pair[1]), default=-1.0)))
    return text, digits, texts.count(text) / len(texts)


def _without_column_stubs(result: ReadResult, shape: tuple[int, int], turn: int) -> ReadResult:
    """A cut-out cell's reading without its column stubs: cut digits that are thin upright pieces
    (`_CELL_STUB_WIDTH`), broken off at the cell's top or bottom (within `line_path.STUB_EDGE` of its
    height) in its outer `_CELL_STUB_SIDE` on either side. They are the table's column lines, read as 1s
    (Meza's `3` beside its column line was cut as `31`); the whole-cell reading takes them out the same way
    (`line_path._is_column_stub`). A lone digit is kept whatever it is."""
    from edge_runtime import line_path

    height, width = shape if turn in (0, 180) else shape[::-1]
    reach = line_path.STUB_EDGE * height + 1

    def stub(digit: Digit) -> bool:
        x, y, box_width, box_height = orientation_module.box_in_upright(digit.box, turn, shape)
        return (box_width <= _CELL_STUB_WIDTH * box_height and (y <= reach or y + box_height >= height - reach)
                and (x + box_width <= _CELL_STUB_SIDE * width or x >= (1 - _CELL_STUB_SIDE) * width))

    kept = tuple(digit for digit in result.items if not stub(digit))
    if not kept or len(kept) == len(result.items):
        return result
    return _result(kept, result.dropped, result.source, result.image_shape, result.seconds, turn)


def _adds_to_the_cuts(cut: tuple[Digit, ...], text: str, share: float) -> bool:
    """Whether a cell's whole reading holds the cuts' number of `_EXTENDED_NUMBER` digits or more, in
    order, adds digits to it, and more than `_MAJORITY` of the cell's ink floors gave it.

    Segmentation drops a thin lead-in 1 or a faint digit of a small cell that the line model, reading
    the whole cell, keeps: Meza's `13400` was cut as `3400`, all four at 0.96, and its whole reading,
    `13400` with the 1 at 0.95, was not surer. Where the cuts found one digit, the cell's neighbours'
    ink read as another one is as likely (Meza's `7` read `78`, `3` read `37`), so that is left to
    confidence alone.
    """
    cut_text = "".join(digit.label for digit in cut)
    return (share > _MAJORITY and len(cut_text) >= _EXTENDED_NUMBER and len(text) > len(cut_text)
            and _in_order(list(cut_text), list(text)))


def _in_order(part: list[str], whole: list[str]) -> bool:
    """Whether `part` is a subsequence of `whole`."""
    remaining = iter(whole)
    return all(label in remaining for label in part)


def _not_a_digit_reason(probability: float) -> str:
    return f"{_NOT_A_DIGIT_REASON} (model, {probability:.1%})"


def _not_a_digit_pieces(dropped) -> list[tuple[tuple[int, int, int, int], float]]:
    """The boxes the digit model called "not a digit", with its probability (from `_not_a_digit_reason`)."""
    prefix = f"{_NOT_A_DIGIT_REASON} (model, "
    return [(box, float(reason[len(prefix):reason.index("%)")]) / 100) for box, reason in dropped
            if reason.startswith(prefix)]


def _not_a_digit_upright(dropped, turn: int, shape: tuple[int, int]) -> list[tuple[tuple[int, int, int, int], float]]:
    """The "not a digit" pieces as upright boxes, with the digit model's probability that they are none."""
    return [(orientation_module.box_in_upright(box, turn, shape), probability)
            for box, probability in _not_a_digit_pieces(dropped)]


def _taken_into_line(box: tuple[int, int, int, int], probability: float, line_boxes) -> bool:
    """Whether a "not a digit" piece on a line of cut digits is read with the line by the line model: it
    is wide and the digit model doubted it (`_WIDE_MARK`), or it is very wide (`_SURE_MARK_WIDE`), or it
    touches a cut digit (`_TOUCHING_GAP`): digits run together, perhaps."""
    if box[2] >= _SURE_MARK_WIDE * box[3] or (probability < _LINE_DOUBT and box[2] >= _WIDE_MARK * box[3]):
        return True
    return _touches_line(box, line_boxes)


def _touches_line(box: tuple[int, int, int, int], line_boxes) -> bool:
    """Whether the piece stands within `_TOUCHING_GAP` median heights of one of the line's cut digits."""
    height = float(np.median([other[3] for other in line_boxes]))
    return any(_gap(box, other) <= _TOUCHING_GAP * height for other in line_boxes)


_TOUCHING_GAP = 0.2
"""A "not a digit" piece this close to a cut digit of its line (a share of the line's median digit height),
or overlapping it, is taken into the line's region whatever its shape: a `1` written touching the next
digit makes a narrow piece no digit resembles (`1950`'s `19`, 38 x 54 pixels, "not a digit" at 0.91;
`5310`'s `10`), and the cuts read the rest (`50`). A printed label's letters stand further off (`Mark
35979`'s `r` and `k`, taken in, made the line read `135779`). The line model must still read the piece
as digits as surely as any piece taken in (`_MARK_READ`, or `_RUN_TOGETHER_SURE` where the digit model was
sure), and its reading keep the cuts' sure digits in order (see `DigitReader._with_line_model`).
Realistic synthetic numbers, seeds 21-26: 527 -> 533 of 600; seeds 31-36, read once at the end: 523 ->
528 (6 more right, 1 fewer: a `858` read `853`); seed 7: 137 -> 138; the photos made harder: numbers 324
-> 326; the real photos as they are, forms, large photos and printed labels unchanged; dates 92 -> 93
(slashes). 0.1-0.25 measure the same; with no gap allowed, 2 fewer."""


_READ_BY_LINE = "read as digits with its line by the line model"
"""Added to a "not a digit" piece's reason when the line model's kept reading took it in, so `--explain`
does not call a piece dropped whose digits are in the reading (`253` written touching is one such piece)."""


def _noted_as_read(dropped, read_boxes, turn: int, shape: tuple[int, int]) -> tuple:
    """The dropped pieces, with the "not a digit" ones whose upright box is among `read_boxes` noted as read."""
    if not read_boxes:
        return dropped
    return tuple((box, f"{reason}; {_READ_BY_LINE}")
                 if reason.startswith(_NOT_A_DIGIT_REASON)
                 and orientation_module.box_in_upright(box, turn, shape) in read_boxes else (box, reason)
                 for box, reason in dropped)


_KEPT_CUT = 0.5
"""A cut digit at least this sure must lie under one of the line reading's digits for that reading to
replace the cuts: the line model can skip a thin first or last digit (a blurred or dim 1) and still be
sure of the rest."""


_SURE_CUT = 0.8
"""... and the line reading must hold at least as many digits as the cuts hold digits this sure: a line
digit's span reaches halfway to its neighbours and, at the line's ends, to the ink's end, so a skipped
last digit still lies under its neighbour's span (`1975` read `197`). Forms (`scripts/forms.py`):
276 -> 278 of 300; dates (`scripts/dates.py`): 91 -> 92 of 100; the real photos unchanged."""


def _covers(read: list[Digit], cut: list[Digit], turn: int, shape: tuple[int, int]) -> bool:
    """Whether every cut digit surer than `_KEPT_CUT` overlaps a digit of the line reading along the line,
    and the reading holds as many digits as the cuts are sure of (`_SURE_CUT`)."""
    if len(read) < sum(digit.confidence >= _SURE_CUT for digit in cut):
        return False

    def span(digit: Digit) -> tuple[int, int]:
        x, _, width, _ = orientation_module.box_in_upright(digit.box, turn, shape)
        return x, x + width

    spans = [span(digit) for digit in read]
    for digit in cut:
        if digit.confidence < _KEPT_CUT:
            continue
        left, right = span(digit)
        if not any(min(right, other_right) - max(left, other_left) >= 0.3 * (right - left)
                   for other_left, other_right in spans):
            return False
    return True


def _on_line(box: tuple[int, int, int, int], line_boxes) -> bool:
    """Whether the box overlaps the line's digits vertically by half the shorter height."""
    top = min(other[1] for other in line_boxes)
    bottom = max(other[1] + other[3] for other in line_boxes)
    height = min(box[3], float(np.median([other[3] for other in line_boxes])))
    return min(bottom, box[1] + box[3]) - max(top, box[1]) >= 0.5 * height


def _without_words(digits: list[Digit], marks: list[tuple[int, int, int, int]]) -> list[Digit]:
    """Drops the lines where pieces as tall as the digits but not digits outnumber the digits."""
    kept = []
    for line in sorted({digit.line for digit in digits}):
        members = [digit for digit in digits if digit.line == line]
        top = min(digit.box[1] for digit in members)
        bottom = max(digit.box[1] + digit.box[3] for digit in members)
        height = float(np.median([digit.box[3] for digit in members]))
        letters = [box for box in marks if box[3] >= _LETTER_HEIGHT * height
                   and min(bottom, box[1] + box[3]) - max(top, box[1]) >= 0.5 * box[3]]
        if len(letters) < 2 or len(letters) <= len(members):
            kept += members
    return kept


_LETTER_HEIGHT = 0.6
"""Dropped pieces at least this share of the digits' height, beside them in a line, count as letters or marks."""

_PAPER_REASONS = frozenset({segment_result.TOUCHES_FRAME, segment_result.OFF_THE_PAPER, segment_result.RULED_LINE,
                            segment_result.BOX_SIDE, segment_result.BOX_OUTLINE, segment_result.PAGE_EDGE,
                            segment_result.LONG_LINE})
"""Pieces segmentation dropped as the paper's own lines and edges: never letters or marks of a line (see
`_without_words`). Counted as such, a page edge beside a lone cut `1` and a `905` written touching
(one "not a digit" piece) made two letters to one digit, and `9051` lost its only digit (no digit
found; now `1`, as the line model reads the `0` of the `905` at 0.86, under `_RUN_TOGETHER_SURE`).
Realistic synthetic sets: 2 more right (seed 24's `2994`, whose `2` stood beside a ruled line's stub,
and a printed `1`); the real photos as they are and made harder, forms, dates, large photos and printed
labels unchanged. Pieces dropped as too faint still count: counted out, Meza's `104` was read `4`."""


_STRAY_HEIGHT = 0.5
"""A line of one digit less than this share as tall as the digits of the page's lines of two digits or
more (their median) is a stray mark, not part of the writing: a speck in a corner read as an `8` (`42566
/ 8`), a short tick beside a margin read as a `1` (`1 / 1934`), a broken margin read as eight lines of a
`1` above a `35`. Realistic synthetic numbers: seeds 21-26 539 -> 542 of 600, 31-36 535 -> 537, 41-46
unchanged; the real photos as they are and made harder, seeds 0 and 7, forms, dates, large photos and
printed labels unchanged; 0.6 read one more, 0.4 two fewer."""

_STRAY_REASON = "a stray mark: a lone digit under half as tall as the number's digits"


def _without_strays(result: ReadResult) -> ReadResult:
    """The reading without its stray marks (see `_STRAY_HEIGHT`), which `dropped` then lists."""
    lines = _digits_by_line(result).values()
    numbers = [_upright_box(digit, result)[3] for members in lines if len(members) >= 2 for digit in members]
    if not numbers:
        return result
    floor = _STRAY_HEIGHT * float(np.median(numbers))
    strays = [members[0] for members in lines if len(members) == 1 and _upright_box(members[0], result)[3] < floor]
    return _without(result, strays, _STRAY_REASON)


def _digits_by_line(result: ReadResult) -> dict[int, list[Digit]]:
    lines: dict[int, list[Digit]] = {}
    for digit in result.items:
        lines.setdefault(digit.line, []).append(digit)
    return lines


def _upright_box(digit: Digit, result: ReadResult) -> tuple[int, int, int, int]:
    """The digit's box on the page turned upright: on a page read turned, a 1's box is wide in the image."""
    return orientation_module.box_in_upright(digit.box, result.orientation, result.image_shape)


def _without(result: ReadResult, digits: list[Digit], reason: str) -> ReadResult:
    """The reading without `digits`, which its `dropped` then lists with `reason`."""
    if not digits:
        return result
    kept = tuple(digit for digit in result.items if digit not in digits)
    dropped = tuple(result.dropped) + tuple((digit.box, reason) for digit in digits)
    return _result(kept, dropped, result.source, result.image_shape, result.seconds, result.orientation)


_BROKEN_LINE_PIECES = 3
"""This many thin 1s or more, each alone on its line and stacked one under another on a straight upright
line (`_STACKED`), on a page that holds other digits too, are a margin or a rule broken into dashes, not
digits: the segmentation's long-line test follows one piece's axis through the ink, and a faint,
broken line shows too little of it (`7` on ruled paper read `1 / 1 / 1 / 1 / 1 / 7 / 1`). A page
holding only such 1s keeps them: a list of 1s written in a column. Realistic synthetic sets, seeds 21-26,
31-36 and 41-46: 3 more singles right; with 2 pieces, 5 more; the real photos as they are and made
harder, seeds 0 and 7, forms, dates, large photos and printed labels unchanged."""

_STACKED = 0.1
"""Two of those 1s are stacked when the second's centre is below the first's and at most this share of
the vertical distance between them to either side."""

_BROKEN_LINE_REASON = "part of a broken line: thin 1s stacked in a column, each alone on its line"


def _without_broken_lines(result: ReadResult) -> ReadResult:
    """The reading without the broken lines it read as lone 1s (see `_BROKEN_LINE_PIECES`)."""
    lone_ones = [(members[0], _upright_box(members[0], result)) for members in _digits_by_line(result).values()
                 if len(members) == 1 and members[0].label == "1"]
    ones = sorted(((digit, box) for digit, box in lone_ones if box[2] <= _THIN_ONE * box[3]),
                  key=lambda pair: pair[1][1])  # top to bottom
    if len(ones) < _BROKEN_LINE_PIECES or len(ones) == len(result.items):
        return result
    longest, chain = [], [ones[0][0]]
    for (_, (x0, y0, w0, h0)), (below, (x1, y1, w1, h1)) in zip(ones, ones[1:]):
        drop = (y1 + h1 / 2) - (y0 + h0 / 2)
        if drop > 0 and abs((x1 + w1 / 2) - (x0 + w0 / 2)) <= _STACKED * drop:
            chain.append(below)
        else:
            longest, chain = max(longest, chain, key=len), [below]
    longest = max(longest, chain, key=len)
    return _without(result, longest if len(longest) >= _BROKEN_LINE_PIECES else [], _BROKEN_LINE_REASON)


_THIN_ONE = 0.25
"""A 1 at most this share as wide as tall is thin enough to be a piece of a ruled or margin line."""


def _result(digits: tuple[Digit, ...], dropped, source: str, shape: tuple[int, int], seconds: float,
            turn: int = 0) -> ReadResult:
    if not digits:
        return ReadResult("", constants.STATUS_NO_DIGIT, (), source, image_shape=shape, seconds=seconds,
                          dropped=dropped, orientation=turn)
    text = layout.join([digit.label if digit.accepted else "?" for digit in digits],
                       [digit.line for digit in digits], [digit.group for digit in digits])
    status = constants.STATUS_OK if all(digit.accepted for digit in digits) else constants.STATUS_REJECTED
    return ReadResult(text, status, digits, source, image_shape=shape, seconds=seconds, dropped=dropped,
                      orientation=turn)
