"""Keras -> TensorFlow Lite conversion in four modes: float32, float16, dynamic range and full int8."""

from __future__ import annotations

import tempfile
from typing import Iterator

import numpy as np
import tensorflow as tf

from edge_runtime import constants
from exporter.config import QUANTIZE_MODES


def convert(model, mode: str, calibration_images: np.ndarray | None = None,
            input_shape: tuple[int | None, ...] | None = None) -> bytes:
    """Converts a Keras model to a `.tflite` flatbuffer.

    The conversion goes through a SavedModel written by Keras's own `model.export` into a temporary
    folder, with a dynamic batch dimension. `TFLiteConverter.from_keras_model` is unreliable with
    Keras 3 on TF >= 2.16, and a plain `tf.function` concrete function leaves the weights as
    resource variables that int8 calibration cannot read (READ_VARIABLE fails to invoke).

    Args:
        model: A Keras model taking (batch, 28, 28, 1) floats in [0, 1].
        mode: One of QUANTIZE_MODES; "none" keeps float32.
        calibration_images: float32 (N, 28, 28, 1) images in [0, 1]; required for "int8".
        input_shape: The input shape without the batch, None for a free dimension; default
            (28, 28, 1). A line model passes (32, None, 1), so one file reads any strip width.

    Returns:
        The flatbuffer bytes.

    Raises:
        ValueError: Unknown mode, or int8 without calibration images.
    """
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize mode {mode!r} is not one of {', '.join(QUANTIZE_MODES)}")
    size = constants.IMAGE_SIZE
    shape = list(input_shape) if input_shape is not None else [size, size, 1]
    signature = [tf.TensorSpec([None, *shape], tf.float32, name="image")]
    with tempfile.TemporaryDirectory(prefix="digitkit-export-") as saved_model:
        model.export(saved_model, format="tf_saved_model", input_signature=signature, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        _configure(converter, mode, calibration_images)
        return converter.convert()


def _configure(converter, mode: str, calibration_images: np.ndarray | None) -> None:
    """Sets the converter options of one quantization mode."""
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if calibration_images is None or len(calibration_images) == 0:
            raise ValueError("int8 quantization needs calibration images (got none)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative(calibration_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


def _representative(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    for image in images:
        yield [image[None].astype(np.float32)]
