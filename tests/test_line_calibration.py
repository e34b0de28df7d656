"""The line model's calibration temperature: applied to each column, decoding unchanged."""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import cv2
import numpy as np
import pytest

from edge_runtime import line_reader


def _line_ink() -> np.ndarray:
    image = np.zeros((60, 200), np.uint8)
    cv2.putText(image, "407", (10, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 255, 4, cv2.LINE_AA)
    return image


def test_a_temperature_softens_confidences_but_keeps_the_digits():
    recognizer = line_reader.LineRecognizer()
    plain = recognizer.read_line(_line_ink())
    recognizer.description = dataclasses.replace(recognizer.description, temperature=3.0)
    softened = recognizer.read_line(_line_ink())
    assert softened.digits == plain.digits and plain.digits
    assert np.allclose(softened.probabilities.sum(axis=-1), 1.0, atol=1e-4)
    assert max(softened.confidences) < max(plain.confidences)
    assert np.array_equal(softened.probabilities.argmax(axis=-1), plain.probabilities.argmax(axis=-1))


def test_the_output_step_of_the_int8_line_model_is_its_quantization_scale():
    recognizer = line_reader.LineRecognizer()
    _, _, output_spec = recognizer._interpreter_for(None)
    assert output_spec.quantized and recognizer.output_step() == output_spec.scale > 0


def test_the_int8_line_models_top_confidence_is_one_step_short_of_one():
    recognizer = line_reader.LineRecognizer()
    recognizer.description = dataclasses.replace(recognizer.description, temperature=1.0)
    assert recognizer.top_confidence() == pytest.approx(1.0 - recognizer.output_step())


def test_the_line_models_top_confidence_stays_under_one_at_any_temperature():
    recognizer = line_reader.LineRecognizer()
    for temperature in (0.8, 0.95, 1.0, 1.5):
        recognizer.description = dataclasses.replace(recognizer.description, temperature=temperature)
        assert 0.5 < recognizer.top_confidence() < 1.0


def test_a_line_reading_at_the_line_models_top_confidence_is_surer_than_any_cut():
    from edge_runtime import reader as reader_module

    reader = reader_module.DigitReader()
    top = reader.line_recognizer.top_confidence()
    assert reader._surer(top, 0.999)  # the line model cannot say more than its top step
    assert not reader._surer(0.9, 0.95) and reader._surer(0.96, 0.95)


def test_the_fit_never_sharpens_an_int8_line_model():
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
    import calibrate

    recognizer = line_reader.LineRecognizer()
    assert min(calibrate.line_temperatures(recognizer.output_step())) == 1.0
    assert min(calibrate.line_temperatures(0.0)) < 1.0  # a float output can be sharpened
    sharpened = dataclasses.replace(recognizer.description, temperature=0.95)
    recognizer.description = sharpened
    assert recognizer.top_confidence() < 0.99  # why: the floored zeros take the top below 0.99
