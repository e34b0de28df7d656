"""The line model's calibration temperature: applied to each column, decoding unchanged."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

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
