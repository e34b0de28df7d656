"""Proof that a `.tflite` still works: Keras vs edge-runtime accuracy, agreement, sizes and latency."""

from __future__ import annotations

import importlib.metadata
import statistics
import time

import numpy as np

from edge_runtime import constants
from edge_runtime import interpreter as edge_interpreter


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Share of each digit's test images predicted correctly."""
    return {constants.LABELS[digit]: round(float((predictions[labels == digit] == digit).mean()), 5)
            for digit in range(constants.NUM_CLASSES)}


def measure_latency_us(model_path, images: np.ndarray, runs: int) -> float:
    """Median microseconds of one single-image `classify` on one thread (pre- and post-processing included)."""
    classifier = edge_interpreter.DigitClassifier(model_path, num_threads=1)
    timings = []
    for index in range(runs + 50):
        image = images[index % len(images)][None]
        started = time.perf_counter()
        classifier.classify(image)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings[50:]) * 1e6  # The first calls warm caches and allocate.


def tflite_probabilities(model_path, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Probabilities from edge_runtime's own classifier, the code users run, not TensorFlow's."""
    classifier = edge_interpreter.DigitClassifier(model_path, num_threads=2)
    return np.concatenate([classifier.classify(images[start:start + batch_size])
                           for start in range(0, len(images), batch_size)])


def compare(keras_probabilities: np.ndarray, tflite_probabilities_: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of both models, the drop in percentage points, agreement and per-class accuracy."""
    keras_predictions = keras_probabilities.argmax(axis=1)
    tflite_predictions = tflite_probabilities_.argmax(axis=1)
    keras_accuracy = float((keras_predictions == labels).mean())
    tflite_accuracy = float((tflite_predictions == labels).mean())
    return {
        "test_images": int(len(labels)),
        "keras_accuracy": round(keras_accuracy, 6),
        "tflite_accuracy": round(tflite_accuracy, 6),
        "accuracy_drop": round((keras_accuracy - tflite_accuracy) * 100, 4),
        "agreement": round(float((keras_predictions == tflite_predictions).mean()), 6),
        "max_probability_difference": round(float(np.abs(keras_probabilities - tflite_probabilities_).max()), 5),
        "keras_per_class_accuracy": per_class_accuracy(labels, keras_predictions),
        "tflite_per_class_accuracy": per_class_accuracy(labels, tflite_predictions),
    }


def versions() -> dict[str, str]:
    """Versions of the converter and runtime that produced and checked the file."""
    import tensorflow as tf

    _, backend = edge_interpreter.load_backend()
    return {"tensorflow_version": tf.__version__, "litert_version": _package_version("ai-edge-litert"),
            "keras_version": _package_version("keras"), "runtime_backend": backend,
            "digitkit_version": _package_version("digitkit")}


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def markdown(report: dict) -> str:
    """A human-readable summary of the report."""
    verdict = "PASSED" if report["gate_passed"] else "FAILED"
    lines = [
        f"# Export report: {report['file']}",
        "",
        f"Gate: **{verdict}** (accuracy drop {report['accuracy_drop']:+.3f} points, limit {report['max_drop']} points)",
        "",
        "| | Keras (float) | TFLite |",
        "|---|---|---|",
        f"| accuracy on {report['test_images']} MNIST test images | {report['keras_accuracy']:.2%} | "
        f"{report['tflite_accuracy']:.2%} |",
        f"| size | | {report['tflite_bytes']:,} bytes (float32 .tflite: {report['float32_bytes']:,}) |",
        f"| latency, 1 thread, 1 image | | {report['tflite_us_per_image']:.1f} µs "
        f"(float32: {report['float32_us_per_image']:.1f} µs) |",
        "",
        f"Agreement: {report['agreement']:.4%} identical predictions. Quantization: {report['quantize']}"
        + (f", calibrated on {report['calibration_samples']} training images." if report["quantize"] == "int8" else "."),
        "",
        "| digit | " + " | ".join(constants.LABELS) + " |",
        "|---|" + "---|" * constants.NUM_CLASSES,
        "| Keras | " + " | ".join(f"{v:.2%}" for v in report["keras_per_class_accuracy"].values()) + " |",
        "| TFLite | " + " | ".join(f"{v:.2%}" for v in report["tflite_per_class_accuracy"].values()) + " |",
        "",
        "Versions: " + ", ".join(f"{key.replace('_version', '')} {value}" for key, value in report.items()
                                 if key.endswith("_version")) + f"; runtime backend {report['runtime_backend']}.",
        "",
    ]
    return "\n".join(lines)
