"""Evaluating a model on a labelled folder: accuracy, per-class figures, risk-coverage, worst errors, comparisons.

Edge install only (LiteRT, numpy, OpenCV): no TensorFlow, no Matplotlib. 28x28 images are the
model's own input (what `--save-crops` writes) and are classified directly, in batches; any other
image is read whole by `DigitReader`, like `digit-infer` reads it, and is right when the digits read
equal its label.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import pathlib
import stat
import tempfile
import time

import cv2
import numpy as np

from edge_runtime import constants, files, labelled, outputs
from edge_runtime import reader as reader_module

THRESHOLDS = (0.5, 0.8, 0.9, 0.99)
"""The `--min-confidence` values of the risk-coverage table."""

OTHER = "other"
"""Confusion-matrix column for reads that are not one label: no digit found, or several digits."""

REPORT_JSON, REPORT_MARKDOWN, WORST_ERRORS = "report.json", "report.md", "worst_errors.png"
"""What `evaluate` writes into its `out` folder; worst_errors.png only when the report shows mistakes."""

_BATCH = 1024
_CELL = 84  # pixels per cell of the worst-errors grid (3x a 28x28 crop)


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """What `digit-eval` evaluates and where it writes.

    Attributes:
        model: A `.tflite` (None: the packaged model).
        data: A labelled folder or a labels CSV.
        compare: A second `.tflite` to evaluate side by side on the same images.
        out: Folder for report.json, report.md and worst_errors.png.
        min_accuracy: Exit 1 when the (first) model's accuracy is below this (0-1).
        thresholds: Confidence thresholds of the risk-coverage table.
        worst: Most-confident mistakes shown in the grid.
        polarity: Ink of whole images (as `digit-infer --polarity`).
    """

    model: str | None = None
    data: str = "."
    compare: str | None = None
    out: str = "digit-eval"
    min_accuracy: float | None = None
    thresholds: tuple[float, ...] = THRESHOLDS
    worst: int = 36
    polarity: str = constants.INK_AUTO

    def __post_init__(self) -> None:
        if self.min_accuracy is not None and not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy={self.min_accuracy}: must be between 0 and 1 (e.g. 0.95)")
        if not self.thresholds or any(not 0.0 <= value <= 1.0 for value in self.thresholds):
            raise ValueError(f"thresholds={self.thresholds}: give values between 0 and 1")
        if self.worst < 0:
            raise ValueError(f"worst={self.worst}: must be 0 or more")


@dataclasses.dataclass(frozen=True)
class Read:
    """One labelled image as a model read it."""

    path: str
    label: str
    predicted: str
    confidence: float
    kind: str  # "crop" (28x28, classified directly) or "image" (read whole by DigitReader)
    single: bool = True  # the label is one class

    @property
    def correct(self) -> bool:
        return self.predicted == self.label


@dataclasses.dataclass
class Inputs:
    """The labelled set, decoded once and shared by every model evaluated on it."""

    dataset: labelled.LabelledSet
    crop_items: list[labelled.LabelledImage]
    crops: np.ndarray  # uint8 (N, 28, 28), white on black
    image_items: list[labelled.LabelledImage]
    warnings: list[str]
    load_seconds: float


def load_inputs(data: str | os.PathLike, labels: tuple[str, ...]) -> Inputs:
    """Loads and validates the labelled set, decoding every 28x28 crop; unreadable files become warnings.

    Raises:
        FileNotFoundError, ValueError: From `labelled.load`: nothing usable in `data`.
    """
    started = time.perf_counter()
    dataset = labelled.load(data, labels)
    warnings = list(dataset.warnings)
    crop_items, crops, image_items = [], [], []
    # Decoding releases the GIL: threads decode PNGs in parallel without a process pool's start-up.
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(_try_read_crop, dataset.items, chunksize=256))
    for item, crop in zip(dataset.items, decoded):
        if isinstance(crop, str):
            warnings.append(crop)
            continue
        if crop is None:
            image_items.append(item)
        else:
            crop_items.append(item)
            crops.append(crop)
    if not crop_items and not image_items:
        raise ValueError(f"{data}: none of the {len(dataset.items)} labelled files is a readable image")
    stacked = np.stack(crops) if crops else np.zeros((0, constants.IMAGE_SIZE, constants.IMAGE_SIZE), np.uint8)
    return Inputs(dataset, crop_items, stacked, image_items, warnings, time.perf_counter() - started)


def _try_read_crop(item: labelled.LabelledImage) -> np.ndarray | None | str:
    """The item's 28x28 crop, None for a whole image, or a warning for an unreadable file."""
    try:
        return labelled.read_crop(item.path) if item.single else None
    except ValueError as error:
        return f"{error}; skipped"


def read_all(reader: reader_module.DigitReader, inputs: Inputs) -> tuple[list[Read], list[str]]:
    """Every labelled image read by one model: crops in batches, whole images one by one."""
    labels = reader.classifier.description.labels
    reads, warnings = [], []
    for start in range(0, len(inputs.crops), _BATCH):
        probabilities = reader.classifier.classify(inputs.crops[start:start + _BATCH].astype(np.float32) / 255.0)
        best = probabilities.argmax(axis=1)
        for item, index, row in zip(inputs.crop_items[start:start + _BATCH], best, probabilities):
            reads.append(Read(str(item.path), item.digits, labels[index], float(row[index]), "crop", item.single))
    for item in inputs.image_items:
        try:
            result = reader.read(item.path)
        except (ValueError, OSError, cv2.error) as error:
            warnings.append(f"{item.path}: {error}; skipped")
            continue
        read = result.digits if item.single and result.digits in labels else labelled.digits_of(result.digits)
        reads.append(Read(str(item.path), item.digits, read, result.confidence, "image", item.single))
    return reads, warnings


def metrics(reads: list[Read], classes: tuple[str, ...], thresholds=THRESHOLDS) -> dict:
    """Accuracy, per-class precision and recall, the confusion matrix and the risk-coverage table.

    Per-class figures and the matrix count single-label images only (a multi-digit image is right or
    wrong as a whole); a single-label image read as no digit or several digits lands in "other".
    """
    total = len(reads)
    correct = sum(read.correct for read in reads)
    singles = [read for read in reads if read.single]
    numbers = [read for read in reads if not read.single]
    columns = list(classes) + [OTHER]
    matrix = np.zeros((len(classes), len(columns)), np.int64)
    row_of = {label: index for index, label in enumerate(classes)}
    for read in singles:
        column = row_of.get(read.predicted, len(classes))
        if read.label in row_of:  # A class the data has and this model lacks: a miss, outside the matrix.
            matrix[row_of[read.label], column] += 1
    per_class = {}
    for index, label in enumerate(classes):
        support = int(matrix[index].sum())
        predicted = int(matrix[:, index].sum())
        hits = int(matrix[index, index])
        per_class[label] = {"support": support, "predicted": predicted,
                            "precision": _ratio(hits, predicted), "recall": _ratio(hits, support)}
    confidences = np.array([read.confidence for read in reads])
    right = np.array([read.correct for read in reads], bool)
    risk_coverage = []
    for threshold in thresholds:
        accepted = confidences >= threshold
        risk_coverage.append({"min_confidence": threshold, "accepted": int(accepted.sum()),
                              "coverage": _ratio(int(accepted.sum()), total),
                              "accuracy_of_accepted": _ratio(int((accepted & right).sum()), int(accepted.sum()))})
    return {"images": total, "correct": correct, "accuracy": _ratio(correct, total),
            "single_digit_images": len(singles), "single_digit_accuracy": _ratio(sum(r.correct for r in singles), len(singles)),
            "number_images": len(numbers), "number_accuracy": _ratio(sum(r.correct for r in numbers), len(numbers)),
            "classes_present": sorted({read.label for read in singles}),
            "per_class": per_class, "confusion_matrix": {"rows": list(classes), "columns": columns,
                                                         "counts": matrix.tolist()},
            "risk_coverage": risk_coverage}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def worst_errors(reads: list[Read], count: int) -> list[Read]:
    """The most confident mistakes first: the reads a user should look at."""
    return sorted((read for read in reads if not read.correct), key=lambda read: -read.confidence)[:count]


def error_grid(errors: list[Read], inputs: Inputs) -> np.ndarray | None:
    """A BGR grid of the worst errors: each cell the image (crop, or the whole image shrunk) with
    "label > read  confidence"; None when there is no error."""
    if not errors:
        return None
    crop_of = {str(item.path): crop for item, crop in zip(inputs.crop_items, inputs.crops)}
    columns = min(len(errors), 8)
    rows = math.ceil(len(errors) / columns)
    text_height = 18
    canvas = np.full((rows * (_CELL + text_height), columns * _CELL, 3), 255, np.uint8)
    for index, read in enumerate(errors):
        top, left = (index // columns) * (_CELL + text_height), (index % columns) * _CELL
        canvas[top:top + _CELL, left:left + _CELL] = _cell_image(read, crop_of)
        text = f"{read.label}>{read.predicted or '-'} {read.confidence:.0%}"
        cv2.putText(canvas, text, (left + 2, top + _CELL + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 200), 1,
                    cv2.LINE_AA)
    return canvas


def _cell_image(read: Read, crop_of: dict) -> np.ndarray:
    crop = crop_of.get(read.path)
    if crop is not None:
        gray = cv2.resize(255 - crop, (_CELL, _CELL), interpolation=cv2.INTER_NEAREST)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    cell = np.full((_CELL, _CELL, 3), 230, np.uint8)
    try:
        from edge_runtime import imageio

        image = imageio.load_image(read.path)
    except (ValueError, OSError):
        return cell
    image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = _CELL / max(image.shape[:2])
    small = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    cell[:small.shape[0], :small.shape[1]] = small
    return cell


def differences(first: list[Read], second: list[Read]) -> list[dict]:
    """The images the two models read differently, with who was right."""
    by_path = {read.path: read for read in second}
    rows = []
    for read in first:
        other = by_path.get(read.path)
        if other is not None and other.predicted != read.predicted:
            rows.append({"path": read.path, "label": read.label, "first": read.predicted,
                         "first_confidence": round(read.confidence, 4), "second": other.predicted,
                         "second_confidence": round(other.confidence, 4),
                         "right": "first" if read.correct else "second" if other.correct else "neither"})
    return rows


def describe_model(reader: reader_module.DigitReader) -> dict:
    classifier = reader.classifier
    description = classifier.description
    return {"path": str(classifier.path), "labels": list(description.labels), "num_classes": classifier.num_classes,
            "embedded_metadata": description.embedded, "input_dtype": np.dtype(classifier.input.dtype).name,
            "output_dtype": np.dtype(classifier.output.dtype).name}


def evaluate(options: EvalOptions) -> dict:
    """Runs the evaluation and writes report.json, report.md and worst_errors.png into `options.out`.

    A worst_errors.png left in `options.out` by an earlier run is removed when this report has no
    mistake to show: the folder never holds a figure its report does not refer to.

    Returns:
        The report (also written as JSON); `report["passed"]` is False under `min_accuracy`.

    Raises:
        outputs.OutputRefused: `options.out` cannot hold the reports (see `check_out`); checked first.
        FileNotFoundError: A model or the data is missing.
        ValueError: A model is not usable, or the data holds nothing to evaluate; nothing is written.
        outputs.OutputFailed: The reports could not be written (a full disk, a folder gone read-only);
            a report already there is either its old self or complete.
    """
    out = pathlib.Path(options.out)
    check_out(out)
    reader_options = reader_module.ReaderOptions(polarity=options.polarity)
    readers = [reader_module.DigitReader(options.model, reader_options)]
    if options.compare:
        readers.append(reader_module.DigitReader(options.compare, reader_options))
    labels = readers[0].classifier.description.labels
    inputs = load_inputs(options.data, labels)
    notes = []
    for other in readers[1:]:
        if other.classifier.description.labels != labels:
            # Still comparable: the data's labels are the first model's; a class the other lacks is a miss for it.
            notes.append(f"the models have different classes: {list(labels)} and "
                         f"{list(other.classifier.description.labels)}")
    for reader in readers:
        if not reader.classifier.description.embedded:
            notes.append(f"{reader.model_path}: no digitkit metadata: assumed MNIST input (white digit on black, "
                         f"0-1) and labels {', '.join(labels)}; if it expects otherwise, its figures are meaningless")
    models, all_reads = [], []
    for reader in readers:
        started = time.perf_counter()
        reads, warnings = read_all(reader, inputs)
        seconds = time.perf_counter() - started
        inputs.warnings.extend(warning for warning in warnings if warning not in inputs.warnings)
        figures = metrics(reads, reader.classifier.description.labels, options.thresholds)
        figures.update(model=describe_model(reader), seconds=round(seconds, 3),
                       images_per_second=round(len(reads) / seconds, 1) if seconds > 0 else None)
        models.append(figures)
        all_reads.append(reads)
    present = models[0]["classes_present"]
    if len(present) == 1 and not models[0]["number_images"]:
        notes.append(f"only one class ({present[0]}) in the data: precision of the other classes and the confusion "
                     f"matrix say little; add images of other digits for a fair picture")
    report = {"data": str(options.data), "images": len(all_reads[0]), "load_seconds": round(inputs.load_seconds, 3),
              "skipped": inputs.warnings, "notes": notes, "models": models,
              "min_accuracy": options.min_accuracy}
    if len(readers) == 2:
        report["differences"] = differences(all_reads[0], all_reads[1])
    errors = worst_errors(all_reads[0], options.worst)
    report["worst_errors"] = [dataclasses.asdict(read) for read in errors]
    accuracy = models[0]["accuracy"] or 0.0
    report["passed"] = options.min_accuracy is None or accuracy >= options.min_accuracy
    try:
        write_report(report, errors, inputs, out)
    except OSError as error:
        raise outputs.OutputFailed(f"{outputs.display(error.filename or out)}: cannot write the reports "
                                   f"({error.strerror or error}); each report file there is its previous version "
                                   f"or complete") from error
    return report


def check_out(out: str | os.PathLike) -> None:
    """Refuses, before anything is evaluated, an output folder the reports cannot be written into.

    Raises:
        outputs.OutputRefused: `out` is a file or lies under one, a report's name in it is taken by a
            folder or a device, or it cannot be written; the message names the path and what is wrong.
    """
    folder = pathlib.Path(out)
    if not os.fspath(folder):
        raise outputs.OutputRefused("'': give a folder for the reports")
    if not folder.is_dir():
        _check_creatable(folder)
        return
    for name in (REPORT_JSON, REPORT_MARKDOWN, WORST_ERRORS):
        _check_replaceable(folder / name)
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".digit-eval-probe."):
            pass
    except OSError as error:
        raise outputs.OutputRefused(f"{outputs.display(folder)}: cannot write there "
                                    f"({error.strerror or error})") from None


def _check_creatable(folder: pathlib.Path) -> None:
    """A folder still to be made: it must not be a file, nor lie under one, and its nearest existing
    parent must be writable."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing == folder:  # A file, a dangling link or a device where the folder should be.
        raise outputs.OutputRefused(f"{outputs.display(folder)}: exists and is not a folder; give a folder for "
                                    f"the reports")
    if not existing.is_dir():
        raise outputs.OutputRefused(f"{outputs.display(folder)}: {outputs.display(existing)} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise outputs.OutputRefused(f"{outputs.display(folder)}: cannot be created, {outputs.display(existing)} is "
                                    f"not writable")


def _check_replaceable(target: pathlib.Path) -> None:
    """A report file is replaced by a rename: nothing but a file (or a link, which is replaced) may hold its name."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise outputs.OutputRefused(f"{outputs.display(target)}: cannot be checked ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        raise outputs.OutputRefused(f"{outputs.display(target)} is a folder, where digit-eval writes its "
                                    f"{target.name}; remove or rename it, or give another output folder")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise outputs.OutputRefused(f"{outputs.display(target)} is not a regular file (a device, pipe or socket), "
                                    f"where digit-eval writes its {target.name}; give another output folder")


def write_report(report: dict, errors: list[Read], inputs: Inputs, out: pathlib.Path) -> None:
    """worst_errors.png, then report.json and report.md, each written atomically.

    Without a mistake to show, a worst_errors.png of an earlier run is removed first, so that it never
    sits beside a report that does not refer to it.
    """
    figure = _encoded(error_grid(errors, inputs))
    figure_path = out / WORST_ERRORS
    report["files"] = {"json": str(out / REPORT_JSON), "markdown": str(out / REPORT_MARKDOWN),
                       "worst_errors": str(figure_path) if figure is not None else None}
    if figure is not None:
        files.write_bytes(figure_path, figure)
    else:
        figure_path.unlink(missing_ok=True)
    files.write_json(out / REPORT_JSON, report)
    # A file name that is not UTF-8 (kept by Python as surrogates) is written as \xNN rather than failing.
    files.write_bytes(out / REPORT_MARKDOWN, markdown(report).encode("utf-8", "backslashreplace"))


def _encoded(grid: np.ndarray | None) -> bytes | None:
    if grid is None:
        return None
    ok, encoded = cv2.imencode(".png", grid)
    return encoded.tobytes() if ok else None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def markdown(report: dict) -> str:
    """The report as Markdown: one column per model."""
    models = report["models"]
    names = [pathlib.Path(model["model"]["path"]).name for model in models]
    if len(set(names)) < len(names):
        names = [model["model"]["path"] for model in models]
    header = "| | " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(models)
    lines = [f"# digit-eval: {report['data']}", "", f"{report['images']} images.", ""]
    lines += [header, rule]
    rows = [("accuracy", "accuracy"), ("single digits", "single_digit_accuracy"), ("numbers", "number_accuracy")]
    for title, key in rows:
        lines.append(f"| {title} | " + " | ".join(_percent(model[key]) for model in models) + " |")
    lines.append("| images/s | " + " | ".join(f"{model['images_per_second'] or 0:,.0f}" for model in models) + " |")
    lines += ["", "## Risk-coverage", "", "| min confidence | " + " | ".join(
        f"{name} coverage | {name} accuracy of accepted" for name in names) + " |",
        "|---|" + "---|---|" * len(models)]
    for index, entry in enumerate(models[0]["risk_coverage"]):
        cells = []
        for model in models:
            row = model["risk_coverage"][index]
            cells += [_percent(row["coverage"]), _percent(row["accuracy_of_accepted"])]
        lines.append(f"| {entry['min_confidence']:g} | " + " | ".join(cells) + " |")
    for name, model in zip(names, models):
        lines += ["", f"## Per class: {name}", "", "| class | support | precision | recall |", "|---|---|---|---|"]
        for label, figures in model["per_class"].items():
            if figures["support"] or figures["predicted"]:
                lines.append(f"| {label} | {figures['support']} | {_percent(figures['precision'])} | "
                             f"{_percent(figures['recall'])} |")
        matrix = model["confusion_matrix"]
        lines += ["", f"Confusion matrix (rows: label, columns: read; `{OTHER}`: no digit or several):", "",
                  "| | " + " | ".join(matrix["columns"]) + " |", "|---|" + "---|" * len(matrix["columns"])]
        for label, counts in zip(matrix["rows"], matrix["counts"]):
            if sum(counts):
                lines.append(f"| {label} | " + " | ".join(str(value) if value else "." for value in counts) + " |")
    if "differences" in report:
        diff = report["differences"]
        lines += ["", f"## Reads that differ ({len(diff)})", ""]
        if diff:
            lines += [f"| path | label | {names[0]} | {names[1]} | right |", "|---|---|---|---|---|"]
            lines += [f"| {row['path']} | {row['label']} | {row['first'] or '-'} ({row['first_confidence']:.0%}) | "
                      f"{row['second'] or '-'} ({row['second_confidence']:.0%}) | {row['right']} |" for row in diff]
    if report["worst_errors"]:
        figure = [f"![worst errors]({WORST_ERRORS})", ""] if report.get("files", {}).get("worst_errors") else []
        lines += ["", f"## Most confident mistakes of {names[0]}", "", *figure,
                  "| path | label | read | confidence |", "|---|---|---|---|"]
        lines += [f"| {row['path']} | {row['label']} | {row['predicted'] or '-'} | {row['confidence']:.2%} |"
                  for row in report["worst_errors"][:20]]
    for title, key in (("Notes", "notes"), ("Skipped", "skipped")):
        if report[key]:
            lines += ["", f"## {title}", ""] + [f"- {text}" for text in report[key]]
    if report["min_accuracy"] is not None:
        lines += ["", f"Gate: accuracy {_percent(models[0]['accuracy'])} against --min-accuracy "
                      f"{report['min_accuracy']:.2%}: **{'PASSED' if report['passed'] else 'FAILED'}**"]
    return "\n".join(lines) + "\n"
