"""The export pipeline: find the model, convert, embed the description, verify, write the report and gate."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import tempfile

import numpy as np

from edge_runtime import constants, files, metadata
from exporter import convert, verify
from exporter import metadata as export_metadata
from exporter.config import ExportConfig


def resolve_model_path(config: ExportConfig) -> pathlib.Path:
    """The `model.keras` to export: the given file, the one in a given run folder, or the newest run's.

    Raises:
        FileNotFoundError: Nothing found, naming where it looked.
        ValueError: The file is not a `.keras` model.
    """
    if config.model is None:
        candidates = sorted(pathlib.Path(config.runs_dir).glob("*/model.keras"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(f"no trained model found under {config.runs_dir}/*/model.keras; "
                                    f"train one with digit-train or pass MODEL")
        return candidates[-1]
    path = pathlib.Path(config.model)
    if path.is_dir():
        path = path / "model.keras"
    if not path.exists():
        raise FileNotFoundError(f"{path}: model not found (give a model.keras file or a run folder holding one)")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: not a Keras model file; expected a .keras file or a run folder")
    return path


def load_keras_model(path: pathlib.Path):
    """Loads a `.keras` file, turning Keras's assorted failures into one clear ValueError."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors... for a bad file.
        raise ValueError(f"{path}: not a loadable Keras model ({type(error).__name__}: {error})") from error


def calibration_images(mnist, config: ExportConfig) -> np.ndarray:
    """A seeded random sample of training images, as the model's float input."""
    rng = np.random.default_rng(config.seed)
    chosen = rng.choice(len(mnist.train_images), size=min(config.calibration_samples, len(mnist.train_images)),
                        replace=False)
    return (mnist.train_images[chosen].astype(np.float32) / 255.0)[..., None]


def describe(model_path: pathlib.Path, config: ExportConfig, digitkit_version: str) -> metadata.ModelDescription:
    """The description embedded in the file: labels, input range and polarity, provenance."""
    run_config = model_path.parent / "config.json"
    training = json.loads(run_config.read_text()) if run_config.is_file() else {}
    run_metrics = model_path.parent / "metrics.json"
    accuracy = json.loads(run_metrics.read_text()).get("test_accuracy") if run_metrics.is_file() else None
    return metadata.ModelDescription(
        labels=constants.LABELS, input_range=(0.0, 1.0), polarity=constants.POLARITY_WHITE_ON_BLACK,
        output="softmax", embedded=True,
        extra={"digitkit_version": digitkit_version, "quantize": config.quantize,
               "source_run": model_path.parent.name, "source_model": model_path.name,
               "training_seed": training.get("seed"), "keras_test_accuracy": accuracy,
               "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})


def export(config: ExportConfig, mnist, calibration: np.ndarray | None = None) -> tuple[pathlib.Path, dict]:
    """Converts, embeds metadata, proves parity on the full test set, and writes the `.tflite` and reports.

    Args:
        config: Export options.
        mnist: Loaded MNIST (`trainer.data.Mnist`): calibration images and the test set.
        calibration: Images to calibrate int8 on, instead of a training sample (for checking the gate).

    Returns:
        The `.tflite` path and the report; the caller checks `report["gate_passed"]`.
    """
    model_path = resolve_model_path(config)
    model = load_keras_model(model_path)
    out_dir = pathlib.Path(config.out) if config.out else model_path.parent
    if config.quantize == "int8" and calibration is None:
        calibration = calibration_images(mnist, config)
    float32_bytes = convert.convert(model, "none")
    converted = float32_bytes if config.quantize == "none" else convert.convert(model, config.quantize, calibration)
    versions = verify.versions()
    tflite_bytes = export_metadata.embed_description(
        converted, describe(model_path, config, versions["digitkit_version"]))
    report = _verify(model, tflite_bytes, float32_bytes, mnist, config)
    report.update(versions, file=f"{config.file_stem}.tflite", source_model=str(model_path),
                  config=dataclasses.asdict(config))
    tflite_path = out_dir / f"{config.file_stem}.tflite"
    files.write_bytes(tflite_path, tflite_bytes)
    files.write_json(out_dir / f"{config.file_stem}.report.json", report)
    files.write_text(out_dir / f"{config.file_stem}.report.md", verify.markdown(report))
    files.write_json(out_dir / f"{config.file_stem}.config.json", dataclasses.asdict(config))
    return tflite_path, report


def _verify(model, tflite_bytes: bytes, float32_bytes: bytes, mnist, config: ExportConfig) -> dict:
    test_images = mnist.test_images.astype(np.float32) / 255.0
    keras_probabilities = model.predict(test_images[..., None], batch_size=1000, verbose=0)
    with tempfile.TemporaryDirectory() as scratch:
        candidate = pathlib.Path(scratch) / "candidate.tflite"
        candidate.write_bytes(tflite_bytes)
        float32_path = pathlib.Path(scratch) / "float32.tflite"
        float32_path.write_bytes(float32_bytes)
        report = verify.compare(keras_probabilities, verify.tflite_probabilities(candidate, test_images),
                                mnist.test_labels)
        report["tflite_us_per_image"] = round(verify.measure_latency_us(candidate, test_images, config.latency_runs), 2)
        report["float32_us_per_image"] = round(
            verify.measure_latency_us(float32_path, test_images, config.latency_runs), 2)
    report.update(quantize=config.quantize, calibration_samples=config.calibration_samples if config.quantize == "int8" else 0,
                  tflite_bytes=len(tflite_bytes), float32_bytes=len(float32_bytes),
                  size_ratio=round(len(tflite_bytes) / len(float32_bytes), 4),
                  max_drop=config.max_drop, gate_passed=report["accuracy_drop"] <= config.max_drop)
    return report
