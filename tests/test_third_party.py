"""Third-party models: an integer input without quantization parameters takes raw 0..255 pixels."""

import numpy as np
import pytest

from edge_runtime import interpreter

pytestmark = pytest.mark.slow  # Builds a small model with TensorFlow.


def _raw_uint8_model(tmp_path):
    """[1, 28, 28] uint8 in, no quantization: the model casts raw pixel values itself (as many do)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28), dtype="uint8", batch_size=1)
    x = keras.layers.Flatten()(keras.ops.cast(inputs, "float32") / 255.0)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "raw uint8.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path, model


def test_raw_uint8_input_is_fed_0_to_255_and_says_so(tmp_path):
    path, model = _raw_uint8_model(tmp_path)
    classifier = interpreter.DigitClassifier(path)
    assert classifier.input.dtype == np.uint8 and not classifier.input.quantized
    assert classifier.description.input_range == (0.0, 255.0)
    assert "0..255" in classifier.assumed
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 4:24, 12:16] = 1.0  # a white bar on black, in [0, 1] as the reader hands it over
    expected = model.predict(np.round(image * 255).astype(np.uint8), verbose=0)
    assert np.allclose(classifier.classify(image), expected, atol=1e-5)


def test_an_explicit_range_wins_over_the_assumption(tmp_path):
    path, _ = _raw_uint8_model(tmp_path)
    classifier = interpreter.DigitClassifier(path, input_range=(0, 1))
    assert classifier.description.input_range == (0.0, 1.0) and classifier.assumed == ""
