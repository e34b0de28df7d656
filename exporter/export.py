"""The export pipeline: find the model, convert, embed the description, verify, write the report and gate."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import tempfile

import numpy as np

from edge_runtime import constants, files, metadata
from exporter import convert, model_checks, user_parity, verify
from exporter import metadata as export_metadata
from exporter.config import ExportConfig


# They live in model_checks, which imports no TensorFlow, so that digit-export refuses bad input at once.
resolve_model_path = model_checks.resolve_model_path
check_inputs = model_checks.check_inputs


def load_keras_model(path: pathlib.Path):
    """Loads a `.keras` file, turning Keras's assorted failures into one clear ValueError.

    The file is checked first (`model_checks.check_model_file`: type, size, zip bomb) and Keras runs
    under `model_checks.memory_capped`, so no file can make the load block or grow without bound.

    Raises:
        FileNotFoundError: No file there.
        model_checks.ModelFileError: Naming the file and what is wrong with it.
    """
    import keras

    model_checks.check_model_file(path)
    try:
        with model_checks.memory_capped():
            model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors... for a bad file.
        if model_checks.is_out_of_memory(error):
            raise model_checks.ModelFileError(
                f"{path}: not a loadable Keras model: building it needs more than the "
                f"{model_checks.LOAD_MEMORY_BYTES:,} bytes of memory a model may take while loading (its "
                f"config.json declares layers far larger than a digit model's); refused") from None
        raise model_checks.ModelFileError(
            f"{path}: not a loadable Keras model ({type(error).__name__}: {error})") from error
    return model


def calibration_images(mnist, config: ExportConfig) -> np.ndarray:
    """A seeded random sample of training images, as the model's float input."""
    rng = np.random.default_rng(config.seed)
    chosen = rng.choice(len(mnist.train_images), size=min(config.calibration_samples, len(mnist.train_images)),
                        replace=False)
    return (mnist.train_images[chosen].astype(np.float32) / 255.0)[..., None]


def class_labels(num_outputs: int) -> tuple[str, ...]:
    """The digits, and "not a digit" for a model with an eleventh output."""
    if num_outputs == constants.NUM_CLASSES:
        return constants.LABELS
    if num_outputs == constants.NUM_CLASSES + 1:
        return constants.LABELS + (constants.NOT_A_DIGIT,)
    raise ValueError(f"the model has {num_outputs} outputs; a digit model has 10 (digits) or 11 (and 'not a digit')")


def edge_model(model):
    """The part of `model` that goes to the edge: up to its logits when it has a "logits" layer.

    The runtime applies the softmax itself (with the calibration temperature), so confidences keep
    full precision instead of int8 probabilities that saturate at 255/256.
    """
    import keras

    names = [layer.name for layer in model.layers]
    if "logits" not in names:
        return model, "softmax"
    return keras.Model(model.inputs, model.get_layer("logits").output, name=f"{model.name}_logits"), "logits"


def describe(model_path: pathlib.Path, config: ExportConfig, digitkit_version: str, num_outputs: int = 10,
             output: str = "softmax") -> metadata.ModelDescription:
    """The description embedded in the file: labels, input range and polarity, provenance."""
    training = model_checks.read_run_json(model_path.parent / "config.json") or {}
    accuracy = (model_checks.read_run_json(model_path.parent / "metrics.json") or {}).get("test_accuracy")
    return metadata.ModelDescription(
        labels=class_labels(num_outputs), input_range=(0.0, 1.0), polarity=constants.POLARITY_WHITE_ON_BLACK,
        output=output, embedded=True,
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
    model_path, out_dir = check_inputs(config)
    from exporter import line_export  # A line model (digit-train --task line) has its own proof.

    if line_export.is_line_run(model_path):
        return line_export.export_line(config, mnist, model_path, out_dir, calibration)
    model = load_keras_model(model_path)
    model_checks.check_model_shape(model, model_path)
    class_labels(int(model.outputs[0].shape[-1]))  # Refuses an unknown class count now, not after converting.
    if config.quantize == "int8" and calibration is None:
        calibration = calibration_images(mnist, config)
    edge, output = edge_model(model)
    float32_bytes = convert.convert(edge, "none")
    converted = float32_bytes if config.quantize == "none" else convert.convert(edge, config.quantize, calibration)
    versions = verify.versions()
    num_outputs = int(model.outputs[0].shape[-1])
    description = describe(model_path, config, versions["digitkit_version"], num_outputs, output)
    tflite_bytes = export_metadata.embed_description(converted, description)
    # The float32 reference is timed through the runtime too, so it needs the same description.
    float32_bytes = export_metadata.embed_description(float32_bytes, description)
    report = _verify(model, tflite_bytes, float32_bytes, mnist, config)
    report.update(user_parity.measure(model, tflite_bytes, model_path))  # Fine-tuned runs: parity on the user's data.
    report.update(versions, file=f"{config.file_stem}.tflite", source_model=str(model_path),
                  source_run_complete=model_checks.run_status(model_path)[0], config=dataclasses.asdict(config))
    tflite_path = out_dir / f"{config.file_stem}.tflite"
    files.write_bytes(tflite_path, tflite_bytes)
    files.write_json(out_dir / f"{config.file_stem}.report.json", report)
    files.write_text(out_dir / f"{config.file_stem}.report.md", verify.markdown(report) + user_parity.markdown(report))
    files.write_json(out_dir / f"{config.file_stem}.config.json", dataclasses.asdict(config))
    return tflite_path, report


def _verify(model, tflite_bytes: bytes, float32_bytes: bytes, mnist, config: ExportConfig) -> dict:
    test_images = mnist.test_images.astype(np.float32) / 255.0
    keras_probabilities = model.predict(test_images[..., None], batch_size=1000, verbose=0)
    broken = int((~np.isfinite(keras_probabilities)).any(axis=1).sum())
    if broken:  # NaN never equals a label, yet argmax of NaN is 0: the gate could pass on garbage.
        raise model_checks.ModelFileError(f"the Keras model outputs NaN or infinity for {broken:,} of "
                                          f"{len(test_images):,} test images; nothing was exported")
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
