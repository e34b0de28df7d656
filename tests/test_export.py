"""The exporter: every mode converts and classifies real MNIST, Keras and TFLite agree, the gate fires."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime import interpreter, metadata
from exporter import cli, config, convert, export

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["int8", "float16", "dynamic", "none"])
def test_every_mode_converts_loads_and_classifies_real_digits(tiny_exports, mnist, mode):
    path, report = tiny_exports[mode]
    assert path.name == ("model_float32.tflite" if mode == "none" else f"model_{mode}.tflite")
    classifier = interpreter.DigitClassifier(path)
    predictions = classifier.classify(mnist.test_images[:500] / 255.0).argmax(1)
    assert (predictions == mnist.test_labels[:500]).mean() > 0.8
    assert report["tflite_accuracy"] > 0.8 and report["agreement"] > 0.98
    for key in ("keras_accuracy", "tflite_accuracy", "accuracy_drop", "agreement", "keras_per_class_accuracy",
                "tflite_per_class_accuracy", "float32_bytes", "tflite_bytes", "tflite_us_per_image",
                "tensorflow_version", "litert_version"):
        assert key in report, key
    assert report["test_images"] == 10_000


def test_int8_has_int8_tensors_and_is_a_third_of_float32(tiny_exports):
    path, report = tiny_exports["int8"]
    classifier = interpreter.DigitClassifier(path)
    assert classifier.input.dtype == np.int8 and classifier.output.dtype == np.int8
    assert classifier.input.scale > 0  # read from the model, not assumed
    assert report["tflite_bytes"] <= report["float32_bytes"] / 3


def test_keras_and_tflite_agree_on_a_real_slice(tiny_run, tiny_exports, mnist):
    images = mnist.test_images[:300] / 255.0
    keras_probabilities = tiny_run.model.predict(images[..., None], verbose=0)
    float32 = interpreter.DigitClassifier(tiny_exports["none"][0]).classify(images)
    assert np.abs(float32 - keras_probabilities).max() < 1e-4
    int8 = interpreter.DigitClassifier(tiny_exports["int8"][0]).classify(images)
    assert (int8.argmax(1) == keras_probabilities.argmax(1)).mean() >= 0.98
    assert np.abs(int8 - keras_probabilities).max() < 0.25


def test_model_carries_its_description(tiny_exports, tiny_run):
    path, _ = tiny_exports["int8"]
    description = metadata.read_description(path.read_bytes())
    assert description.embedded and description.labels[:10] == tuple("0123456789")
    # A run trained with "not a digit" pieces (the default) exports an eleventh label, and its logits.
    assert description.labels[10:] in ((), ("not a digit",)) and description.output in ("softmax", "logits")
    assert description.polarity == "white-on-black" and description.input_range == (0.0, 1.0)
    assert description.extra["source_run"] == tiny_run.run_dir.name
    assert description.extra["digitkit_version"] and description.extra["quantize"] == "int8"


def test_reports_and_config_are_written_beside_the_model(tiny_exports):
    path, report = tiny_exports["int8"]
    saved = json.loads(path.with_name("model_int8.report.json").read_text())
    assert saved["tflite_accuracy"] == report["tflite_accuracy"]
    assert "Gate: **PASSED**" in path.with_name("model_int8.report.md").read_text()
    assert json.loads(path.with_name("model_int8.config.json").read_text())["quantize"] == "int8"


def test_gate_fires_when_calibrated_on_blank_images(tiny_run, mnist, tmp_path, monkeypatch):
    blank = np.zeros((50, 28, 28, 1), np.float32)
    monkeypatch.setattr(export, "calibration_images", lambda *_: blank)
    out = tmp_path / "blank calibration"
    result = CliRunner().invoke(cli.main, [str(tiny_run.run_dir), "--out", str(out), "--latency-runs", "5",
                                           "--data", str(mnist.source)])
    assert result.exit_code == 1, result.output
    assert "more than --max-drop 0.2" in result.output
    report = json.loads((out / "model_int8.report.json").read_text())
    assert report["gate_passed"] is False and report["accuracy_drop"] > 5


def test_missing_model_is_a_clear_usage_error(tmp_path):
    result = CliRunner().invoke(cli.main, [str(tmp_path / "nothing here.keras")])
    assert result.exit_code == 2
    assert "nothing here.keras: model not found" in result.output


def test_file_that_is_not_a_model_is_refused(tmp_path, mnist_path):
    bogus = tmp_path / "model.keras"
    bogus.write_text("not a model")
    result = CliRunner().invoke(cli.main, [str(bogus), "--data", str(mnist_path)])
    assert result.exit_code == 2
    assert "model.keras: not a loadable Keras model" in result.output


def test_unknown_quantize_mode_lists_the_choices(tiny_run):
    result = CliRunner().invoke(cli.main, [str(tiny_run.run_dir), "--quantize", "int4"])
    assert result.exit_code == 2
    assert "'int4' is not one of 'int8', 'float16', 'dynamic', 'none'" in result.output
    with pytest.raises(ValueError, match="'int4' is not one of int8, float16, dynamic, none"):
        convert.convert(None, "int4")


def test_newest_run_is_the_default(tmp_path):
    older, newer = tmp_path / "a", tmp_path / "b"
    for folder in (older, newer):
        folder.mkdir()
        (folder / "model.keras").write_bytes(b"x")
    import os

    os.utime(older / "model.keras", (1, 1))
    assert export.resolve_model_path(config.ExportConfig(runs_dir=str(tmp_path))) == newer / "model.keras"
    with pytest.raises(FileNotFoundError, match="no trained model found"):
        export.resolve_model_path(config.ExportConfig(runs_dir=str(tmp_path / "empty")))
