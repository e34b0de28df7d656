"""Calibrates a model's confidence on real photos and prints the risk-coverage table.

Temperature scaling (Guo et al., 2017): the runtime's probabilities are softmax(logits / T). T is
fitted to minimise the negative log-likelihood of the right digit over the digits read from the
TUNING part of `../shared/realworld` (singles where exactly one digit was found, numbers whose digit
count came out right), then stored in the model's embedded description. The MEASURING part is only
measured: its calibration error before and after, and the risk-coverage table, show whether 0.9
means about 90% right on photos nobody tuned on.

The line model (`--line`) is calibrated the same way on the digits the line path read (`--reader
line`): T applies to each column's probabilities (softmax(log p / T), which keeps every column's
best class, so the decoded digits do not change), and a digit's confidence is its best column's.

Usage:
    python scripts/calibrate.py                          # fit on the packaged model, report, do not write
    python scripts/calibrate.py --write                  # ... and store T in the packaged model
    python scripts/calibrate.py --model m.tflite --write --json bench/calibration.json
    python scripts/calibrate.py --line --write           # the packaged line model
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import machine  # noqa: E402
import realworld  # noqa: E402

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)
TEMPERATURES = np.round(np.arange(0.5, 4.01, 0.05), 3)


def labelled_digits(reader, items, floor: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities (N, classes) at temperature 1 (probabilities floored at `floor`) and the right
    class of each digit that can be matched to its label (the digit count came out right)."""
    logs, labels = [], []
    for item in items:
        result = reader.read(str(item.path))
        if len(result.items) != len(item.label):
            continue
        # A digit's label indexes its probabilities: the digits come first, then "not a digit" or
        # the line model's blank.
        for digit, label in zip(result.items, item.label):
            logs.append(np.log(np.maximum(digit.probabilities, floor)))
            labels.append(int(label))
    return np.array(logs, np.float64), np.array(labels)


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(logits, labels, temperature) -> float:
    probabilities = softmax(logits, temperature)
    return float(-np.log(np.maximum(probabilities[np.arange(len(labels)), labels], 1e-12)).mean())


def expected_calibration_error(logits, labels, temperature, bins: int = 10) -> float:
    probabilities = softmax(logits, temperature)
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = (confidence > low) & (confidence <= high)
        if chosen.any():
            error += chosen.mean() * abs(confidence[chosen].mean() - right[chosen].mean())
    return float(error)


def fit_temperature(logits, labels, temperatures=TEMPERATURES) -> float:
    return float(min(temperatures, key=lambda value: nll(logits, labels, value)))


def risk_coverage(reader, items, thresholds=THRESHOLDS) -> list[dict]:
    """Per threshold: share of images accepted (status ok) and exact reads among them, as `digit-infer
    --min-confidence` would decide (a number is accepted when its least certain digit is)."""
    results = [reader.read(str(item.path)) for item in items]
    rows = []
    for threshold in thresholds:
        accepted = [(item, result) for item, result in zip(items, results)
                    if result.items and result.confidence >= threshold]
        right = sum(realworld.digits_of(result.digits) == item.label for item, result in accepted)
        rows.append({"min_confidence": threshold, "coverage": round(len(accepted) / max(1, len(items)), 4),
                     "accepted": len(accepted), "images": len(items),
                     "accuracy_of_accepted": round(right / max(1, len(accepted)), 4)})
    return rows


def write_temperature(model_path: pathlib.Path, temperature: float) -> None:
    """Stores T in the model's embedded description (an atomic rewrite of the file)."""
    from edge_runtime import files, metadata
    from exporter import metadata as export_metadata

    model_bytes = model_path.read_bytes()
    description = metadata.read_description(model_bytes)
    calibrated = dataclasses.replace(description, temperature=temperature,
                                     extra={**description.extra, "calibrated_on": "../shared/realworld tuning part"})
    files.write_bytes(model_path, export_metadata.embed_description(model_bytes, calibrated))


def fitted(reader, floor: float = 1e-12, temperatures=TEMPERATURES) -> tuple[float, dict]:
    """Fits T (one of `temperatures`) on the tuning part's digits and measures NLL and ECE before and
    after on both parts."""
    tuning_logits, tuning_labels = labelled_digits(reader, realworld.load("tuning"), floor)
    measuring_logits, measuring_labels = labelled_digits(reader, realworld.load("measuring"), floor)
    temperature = fit_temperature(tuning_logits, tuning_labels, temperatures)
    figures = {"temperature": temperature, "tuning_digits": len(tuning_labels),
               "measuring_digits": len(measuring_labels)}
    for name, logits, labels in (("tuning", tuning_logits, tuning_labels),
                                 ("measuring", measuring_logits, measuring_labels)):
        figures[f"{name}_ece_before"] = round(expected_calibration_error(logits, labels, 1.0), 4)
        figures[f"{name}_ece_after"] = round(expected_calibration_error(logits, labels, temperature), 4)
        figures[f"{name}_nll_before"] = round(nll(logits, labels, 1.0), 4)
        figures[f"{name}_nll_after"] = round(nll(logits, labels, temperature), 4)
    return temperature, figures


def report(figures: dict, json_path: str | None) -> int:
    """Prints the figures as JSON and writes them to `json_path` when given; the exit status (0)."""
    if json_path:
        machine.write_result(json_path, figures)
    else:
        print(json.dumps(figures, indent=2))
    return 0


def line_temperatures(output_step: float) -> list[float]:
    """The temperatures a line model's fit may choose: none under 1 for a quantized output.

    An int8 softmax cannot say more than its top step (255/256): a T under 1 cannot make a saturated
    column surer, and with its zeros floored at half a step it makes it less sure (0.986 at T 0.95,
    where the eighth session's model was fitted), so that no line reading could pass
    `--min-confidence 0.99`.
    """
    return [float(value) for value in TEMPERATURES if value >= 1.0 or not output_step]


def calibrate_line(args) -> int:
    """Fits and reports (and with --write stores) the line model's temperature."""
    from edge_runtime import line_reader
    from edge_runtime import reader as reader_module

    def line_reader_at(temperature: float):
        reader = reader_module.DigitReader(options=reader_module.ReaderOptions(reader="line",
                                                                              line_model=args.model))
        recognizer = reader.line_recognizer
        recognizer.description = dataclasses.replace(recognizer.description, temperature=temperature)
        return reader

    model_path = pathlib.Path(args.model) if args.model else line_reader.DEFAULT_MODEL
    uncalibrated = line_reader_at(1.0)
    base = line_reader.LineRecognizer(model_path).description.temperature
    # An int8 output's zero means "under one quantization step", not "impossible": without a floor,
    # one confident mistake's log(0) would decide the fit alone.
    floor = uncalibrated.line_recognizer.output_step() / 2
    temperature, fit = fitted(uncalibrated, floor, line_temperatures(uncalibrated.line_recognizer.output_step()))
    figures = {"model": str(model_path), "kind": "line", "previous_temperature": base, **fit}
    if args.write:
        write_temperature(model_path, temperature)
    calibrated = line_reader_at(temperature)
    for part in ("whole", "tuning", "measuring"):
        figures[f"risk_coverage_{part}_line_reader"] = risk_coverage(calibrated, realworld.load(part))
    return report(figures, args.json)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a digit .tflite with logits output, or with --line a line model "
                                         "(default: the packaged one)")
    parser.add_argument("--write", action="store_true", help="store the fitted temperature in the model")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--line", action="store_true", help="calibrate the line model (--model: a line .tflite)")
    args = parser.parse_args(argv)
    from edge_runtime import reader as reader_module

    if args.line:
        return calibrate_line(args)

    # The temperature belongs to the digit model: fit it on the digits the cuts path classified (the
    # line model's column probabilities are another model's).
    uncalibrated = reader_module.DigitReader(args.model, reader_module.ReaderOptions(reader="cuts"))
    model_path = uncalibrated.model_path
    base = uncalibrated.classifier.description.temperature
    if base != 1.0:  # refit from the raw logits
        uncalibrated.classifier.description = dataclasses.replace(uncalibrated.classifier.description, temperature=1.0)
    temperature, fit = fitted(uncalibrated)
    figures = {"model": str(model_path), "previous_temperature": base, **fit}
    if args.write:
        write_temperature(model_path, temperature)
    calibrated = reader_module.DigitReader(args.model if not args.write else model_path)
    if not args.write:
        calibrated.classifier.description = dataclasses.replace(calibrated.classifier.description,
                                                                temperature=temperature)
    for part in ("whole", "tuning", "measuring"):
        singles = [item for item in realworld.load(part) if item.kind == "single"]
        figures[f"risk_coverage_{part}_singles"] = risk_coverage(calibrated, singles)
        figures[f"risk_coverage_{part}_all"] = risk_coverage(calibrated, realworld.load(part))
    return report(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
