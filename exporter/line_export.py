"""Export of a line model: convert with a free strip width, describe it as kind "line", prove it on the line test set."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import statistics
import tempfile
import time

import numpy as np

from edge_runtime import constants, files, line_reader, metadata
from exporter import convert, model_checks, verify
from exporter import metadata as export_metadata
from exporter.config import ExportConfig

CALIBRATION_SEED_OFFSET = 101
"""Calibration lines are drawn from MNIST training digits with seed `config.seed + 101`."""
LATENCY_WIDTH = 256


def is_line_run(model_path: pathlib.Path) -> bool:
    """Whether `model_path` is a line model: its run's config says task "line", or its output is per column."""
    run_config = model_checks.read_run_json(model_path.parent / "config.json") or {}
    if "task" in run_config:
        return run_config["task"] == "line"
    import keras

    try:
        with model_checks.memory_capped():  # a config bomb fails cleanly, as on the digit path
            model = keras.saving.load_model(model_path, compile=False)
    except Exception:  # Not loadable: the digit path reports it with its own clear message.
        return False
    return len(model.outputs) == 1 and len(model.outputs[0].shape) == 3


def describe(model_path: pathlib.Path, config: ExportConfig, digitkit_version: str) -> metadata.ModelDescription:
    """The embedded description of a line model: kind, strip geometry, blank index, input range, polarity."""
    training = model_checks.read_run_json(model_path.parent / "config.json") or {}
    accuracy = (model_checks.read_run_json(model_path.parent / "metrics.json") or {}).get("test_sequence_accuracy")
    return metadata.ModelDescription(
        labels=line_reader.LINE_LABELS, input_range=(0.0, 1.0), polarity=constants.POLARITY_WHITE_ON_BLACK,
        output="softmax", embedded=True,
        extra={"kind": line_reader.KIND_LINE, "height": line_reader.STRIP_HEIGHT,
               "blank_index": line_reader.BLANK_INDEX, "ink_height": line_reader.INK_HEIGHT,
               "ink_top": line_reader.INK_TOP, "margin": line_reader.MARGIN,
               "column_stride": line_reader.COLUMN_STRIDE, "width_bucket": line_reader.WIDTH_BUCKET,
               "min_width": line_reader.MIN_WIDTH, "decoding": "greedy CTC",
               "digitkit_version": digitkit_version, "quantize": config.quantize,
               "source_run": model_path.parent.name, "source_model": model_path.name,
               "training_seed": training.get("seed"), "keras_test_sequence_accuracy": accuracy,
               "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})


def calibration_strips(mnist, config: ExportConfig) -> np.ndarray:
    """Seeded lines of MNIST training digits at the full strip width, as the model's float input."""
    from trainer import lines

    count = min(config.calibration_samples, 500)
    rendered = lines.fixed_line_set(mnist.train_images, mnist.train_labels, count,
                                    config.seed + CALIBRATION_SEED_OFFSET)
    return rendered.strips[..., None]


def export_line(config: ExportConfig, mnist, model_path: pathlib.Path, out_dir: pathlib.Path,
                calibration: np.ndarray | None = None) -> tuple[pathlib.Path, dict]:
    """Converts a line model, embeds its description, proves it on the line test set and writes the reports.

    Args:
        config: Export options.
        mnist: Loaded MNIST: training digits draw the calibration lines, test digits the test lines.
        model_path: The line run's `model.keras`.
        out_dir: Where the `.tflite` and its reports go.
        calibration: Strips (N, 32, W, 1) to calibrate int8 on, instead of seeded training lines.

    Returns:
        The `.tflite` path and the report; the caller checks `report["gate_passed"]`.
    """
    import keras

    try:
        with model_checks.memory_capped():  # a config bomb fails cleanly, as on the digit path
            model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors... for a bad file.
        raise model_checks.ModelFileError(
            f"{model_path}: not a loadable Keras model ({type(error).__name__}: {error})") from error
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[1] != line_reader.STRIP_HEIGHT or shape[3] != 1:
        raise model_checks.ModelFileError(f"{model_path}: a line model whose input is {shape}; digitkit's line "
                                          f"model reads (batch, {line_reader.STRIP_HEIGHT}, width, 1)")
    if config.quantize == "int8" and calibration is None:
        calibration = calibration_strips(mnist, config)
    input_shape = (line_reader.STRIP_HEIGHT, None, 1)
    float32_bytes = convert.convert(model, "none", input_shape=input_shape)
    converted = float32_bytes if config.quantize == "none" else convert.convert(
        model, config.quantize, calibration, input_shape=input_shape)
    versions = verify.versions()
    description = describe(model_path, config, versions["digitkit_version"])
    tflite_bytes = export_metadata.embed_description(converted, description)
    float32_bytes = export_metadata.embed_description(float32_bytes, description)
    report = verify_line_model(model, tflite_bytes, float32_bytes, mnist, config)
    report.update(versions, file=f"{config.file_stem}.tflite", source_model=str(model_path),
                  source_run_complete=model_checks.run_status(model_path)[0], config=dataclasses.asdict(config))
    tflite_path = out_dir / f"{config.file_stem}.tflite"
    files.write_bytes(tflite_path, tflite_bytes)
    files.write_json(out_dir / f"{config.file_stem}.report.json", report)
    files.write_text(out_dir / f"{config.file_stem}.report.md", markdown(report))
    files.write_json(out_dir / f"{config.file_stem}.config.json", dataclasses.asdict(config))
    return tflite_path, report


def verify_line_model(model, tflite_bytes: bytes, float32_bytes: bytes, mnist, config: ExportConfig,
                      test_count: int | None = None) -> dict:
    """Keras vs TFLite (through edge_runtime's own LineRecognizer) on the fixed line test set."""
    from trainer import lines_report, lines_train

    test = lines_train.line_test_set(mnist, test_count)
    keras_probabilities = model.predict(test.strips[..., None], batch_size=250, verbose=0)
    if not np.isfinite(keras_probabilities).all():
        raise model_checks.ModelFileError("the Keras line model outputs NaN or infinity; nothing was exported")
    with tempfile.TemporaryDirectory() as scratch:
        candidate = pathlib.Path(scratch) / "candidate.tflite"
        candidate.write_bytes(tflite_bytes)
        float32_path = pathlib.Path(scratch) / "float32.tflite"
        float32_path.write_bytes(float32_bytes)
        recognizer = line_reader.LineRecognizer(candidate, num_threads=2)
        tflite_probabilities = np.concatenate([recognizer.column_probabilities(test.strips[start:start + 250])
                                               for start in range(0, len(test.strips), 250)])
        report = compare(test.texts, keras_probabilities, tflite_probabilities)
        strip = test.strips[-1:, :, :LATENCY_WIDTH]
        report["tflite_us_per_line"] = round(measure_latency_us(candidate, strip, config.latency_runs), 2)
        report["float32_us_per_line"] = round(measure_latency_us(float32_path, strip, config.latency_runs), 2)
    # The digit report's names, so digit-export's summary and gate read a line report unchanged.
    report["tflite_us_per_image"], report["float32_us_per_image"] = report["tflite_us_per_line"], \
        report["float32_us_per_line"]
    keras_metrics = lines_report.line_metrics(test.texts, lines_train.decode_batch(keras_probabilities))
    report["keras_per_length_sequence_accuracy"] = keras_metrics["per_length_sequence_accuracy"]
    report.update(kind=line_reader.KIND_LINE, quantize=config.quantize,
                  calibration_lines=int(min(config.calibration_samples, 500)) if config.quantize == "int8" else 0,
                  latency_strip=[line_reader.STRIP_HEIGHT, LATENCY_WIDTH],
                  tflite_bytes=len(tflite_bytes), float32_bytes=len(float32_bytes),
                  size_ratio=round(len(tflite_bytes) / len(float32_bytes), 4),
                  max_drop=config.max_drop, gate_passed=report["accuracy_drop"] <= config.max_drop)
    return report


def compare(truths: list[str], keras_probabilities: np.ndarray, tflite_probabilities: np.ndarray) -> dict:
    """Sequence accuracy and character error rate of both, the drop in points, and their agreement."""
    from trainer import lines_train

    keras_reads = lines_train.decode_batch(keras_probabilities)
    tflite_reads = lines_train.decode_batch(tflite_probabilities)
    keras_scores = lines_train.sequence_scores(truths, keras_reads)
    tflite_scores = lines_train.sequence_scores(truths, tflite_reads)
    return {
        "test_lines": len(truths), "test_digits": keras_scores["digits"],
        "keras_accuracy": round(keras_scores["sequence_accuracy"], 6),
        "tflite_accuracy": round(tflite_scores["sequence_accuracy"], 6),
        "accuracy_drop": round((keras_scores["sequence_accuracy"] - tflite_scores["sequence_accuracy"]) * 100, 4),
        "agreement": round(float(np.mean([a == b for a, b in zip(keras_reads, tflite_reads)])), 6),
        "keras_character_error_rate": round(keras_scores["character_error_rate"], 6),
        "tflite_character_error_rate": round(tflite_scores["character_error_rate"], 6),
        "column_agreement": round(float((keras_probabilities.argmax(-1) == tflite_probabilities.argmax(-1)).mean()), 6),
        "max_probability_difference": round(float(np.abs(keras_probabilities - tflite_probabilities).max()), 5),
    }


def measure_latency_us(model_path, strip: np.ndarray, runs: int) -> float:
    """Median microseconds to read one (1, 32, W) strip on one thread: quantize, invoke, dequantize, decode."""
    recognizer = line_reader.LineRecognizer(model_path, num_threads=1)
    timings = []
    for _ in range(min(runs, 2000) + 20):
        started = time.perf_counter()
        line_reader.greedy_ctc_decode(recognizer.column_probabilities(strip)[0], recognizer.blank_index)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings[20:]) * 1e6  # The first calls warm caches and allocate.


def markdown(report: dict) -> str:
    """A human-readable summary of a line model's export report."""
    verdict = "PASSED" if report["gate_passed"] else "FAILED"
    lengths = report.get("keras_per_length_sequence_accuracy", {})
    lines = [
        f"# Export report: {report['file']} (line model)",
        "",
        f"Gate: **{verdict}** (sequence accuracy drop {report['accuracy_drop']:+.3f} points, limit "
        f"{report['max_drop']} points)",
        "",
        "| | Keras (float) | TFLite |",
        "|---|---|---|",
        f"| sequence accuracy on {report['test_lines']} synthetic test lines ({report['test_digits']} MNIST test "
        f"digits) | {report['keras_accuracy']:.2%} | {report['tflite_accuracy']:.2%} |",
        f"| character error rate | {report['keras_character_error_rate']:.3%} | "
        f"{report['tflite_character_error_rate']:.3%} |",
        f"| size | | {report['tflite_bytes']:,} bytes (float32 .tflite: {report['float32_bytes']:,}) |",
        f"| latency, 1 thread, one {report['latency_strip'][0]}x{report['latency_strip'][1]} strip, decoded | | "
        f"{report['tflite_us_per_line']:.1f} µs (float32: {report['float32_us_per_line']:.1f} µs) |",
        "",
        f"Agreement: {report['agreement']:.3%} of lines read identically; {report['column_agreement']:.3%} of "
        f"columns have the same winning class. Quantization: {report['quantize']}"
        + (f", calibrated on {report['calibration_lines']} lines of MNIST training digits."
           if report["quantize"] == "int8" else "."),
        "",
        "Keras sequence accuracy by digits per line: "
        + ", ".join(f"{length}: {value:.1%}" for length, value in lengths.items()) + ".",
        "",
        "Versions: " + ", ".join(f"{key.replace('_version', '')} {value}" for key, value in report.items()
                                 if key.endswith("_version")) + f"; runtime backend {report['runtime_backend']}.",
        "",
    ]
    return "\n".join(lines)

