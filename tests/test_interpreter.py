"""The edge classifier: quantization read from the model, foreign signatures, metadata, and clear refusals."""

import numpy as np
import pytest

from edge_runtime import interpreter, metadata

pytestmark = pytest.mark.slow  # Builds small models with TensorFlow.


def _foreign_model(tmp_path, name, input_shape, input_type="float32", logits=False, seed=0):
    """A small dense model trained for no digit in particular, converted without digitkit metadata."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape[1:])
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(10, activation=None if logits else "softmax")(x)
    model = keras.Model(inputs, outputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if input_type != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.random.rand(1, *input_shape[1:]).astype(np.float32)]
                                                    for _ in range(20))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, input_type)
        converter.inference_output_type = getattr(tf, input_type)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(converter.convert())
    reference = model.predict(np.zeros((1, *input_shape[1:]), np.float32) + 0.5, verbose=0)
    return path, (keras.activations.softmax(reference).numpy() if logits else reference)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 28, 28, 1), (1, 784)])
def test_foreign_float_models_of_every_supported_shape(tmp_path, shape):
    path, reference = _foreign_model(tmp_path, "foreign", shape)
    classifier = interpreter.DigitClassifier(path)
    assert not classifier.description.embedded  # MNIST defaults assumed
    probabilities = classifier.classify(np.full((1, 28, 28), 0.5, np.float32))
    assert np.allclose(probabilities, reference, atol=1e-5)


def test_logits_are_turned_into_probabilities(tmp_path):
    path, reference = _foreign_model(tmp_path, "logits", (1, 28, 28, 1), logits=True)
    probabilities = interpreter.DigitClassifier(path, output="logits").classify(np.full((2, 28, 28), 0.5))
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert np.allclose(probabilities[0], reference[0], atol=1e-5)
    auto = interpreter.DigitClassifier(path).classify(np.full((1, 28, 28), 0.5))
    assert np.allclose(auto[0], reference[0], atol=1e-5)


@pytest.mark.parametrize("input_type", ["uint8", "int8"])
def test_quantization_is_read_from_the_tensor_details(tmp_path, input_type):
    path, reference = _foreign_model(tmp_path, input_type, (1, 28, 28, 1), input_type=input_type)
    classifier = interpreter.DigitClassifier(path)
    assert classifier.input.dtype == np.dtype(input_type).type and classifier.input.scale > 0
    probabilities = classifier.classify(np.full((1, 28, 28), 0.5, np.float32))
    assert np.abs(probabilities - reference).max() < 0.05


def test_overrides_for_models_without_metadata(tmp_path):
    path, _ = _foreign_model(tmp_path, "plain", (1, 28, 28, 1))
    images = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    plain = interpreter.DigitClassifier(path)
    inverted = interpreter.DigitClassifier(path, polarity="black-on-white")
    assert np.allclose(inverted.classify(images), plain.classify(1 - images), atol=1e-6)
    shifted = interpreter.DigitClassifier(path, input_range=(-1, 1))
    assert np.allclose(shifted.classify(images), plain.classify(images * 2 - 1), atol=1e-6)
    with pytest.raises(ValueError, match="polarity='sideways': choose one of white-on-black, black-on-white"):
        interpreter.DigitClassifier(path, polarity="sideways")


def test_unsupported_signature_is_refused(tmp_path):
    path, _ = _foreign_model(tmp_path, "wide", (1, 32, 32, 1))
    with pytest.raises(ValueError, match=r"wide.tflite: input shape \[1, 32, 32, 1\] is not supported"):
        interpreter.DigitClassifier(path)


def test_edge_tpu_style_custom_op_gets_a_clear_error(tmp_path):
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    path, _ = _foreign_model(tmp_path, "plain", (1, 28, 28, 1))
    model = flatbuffer_utils.read_model(str(path))
    model.operatorCodes[0].builtinCode = schema.BuiltinOperator.CUSTOM
    model.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    model.operatorCodes[0].customCode = "edgetpu-custom-op"
    tpu = tmp_path / "model_edgetpu.tflite"
    flatbuffer_utils.write_model(model, str(tpu))
    with pytest.raises(ValueError, match="model_edgetpu.tflite: the model uses operations the CPU interpreter cannot run"):
        interpreter.DigitClassifier(tpu)


def test_missing_and_non_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.tflite: model file not found"):
        interpreter.DigitClassifier(tmp_path / "absent.tflite")
    text = tmp_path / "notes.tflite"
    text.write_text("hello, not a model")
    with pytest.raises(ValueError, match="notes.tflite: not a TensorFlow Lite model"):
        interpreter.DigitClassifier(text)
    with pytest.raises(ValueError, match="is a folder"):
        interpreter.DigitClassifier(tmp_path)


def test_metadata_round_trip_without_tensorflow_on_the_reading_side(tmp_path):
    from exporter import metadata as export_metadata

    path, _ = _foreign_model(tmp_path, "plain", (1, 28, 28, 1))
    description = metadata.ModelDescription(polarity="black-on-white", input_range=(-1.0, 1.0),
                                            extra={"source_run": "r1"})
    once = export_metadata.embed_description(path.read_bytes(), description)
    twice = export_metadata.embed_description(once, description)
    entries = metadata.read_metadata_entries(twice)
    assert list(entries).count("digitkit") == 1
    assert len(twice) == len(once)  # the description is rewritten in place, not stacked in a new buffer
    read = metadata.read_description(twice)
    assert read.embedded and read.polarity == "black-on-white" and read.input_range == (-1.0, 1.0)
    assert read.extra["source_run"] == "r1"
    with pytest.raises(ValueError, match="not a well-formed TFLite flatbuffer"):
        metadata.read_metadata_entries(b"\xff\xff\xff\x7f" + b"\x00" * 12)


def test_backend_order_prefers_litert():
    _, name = interpreter.load_backend()
    assert name == "ai_edge_litert"
