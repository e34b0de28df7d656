"""The line model: a small fully convolutional CNN that reads a strip of digits column by column, trained with CTC."""

from __future__ import annotations

import keras
from keras import layers

from edge_runtime import line_reader

DEFAULT_WIDTHS = (16, 32, 48, 64, 96)
"""Filters of the four 3x3 convolutions and of the column convolution that collapses the height."""


def build_line_model(widths: tuple[int, ...] = DEFAULT_WIDTHS, dropout_rate: float = 0.1,
                     height: int = line_reader.STRIP_HEIGHT) -> keras.Model:
    """Builds the line CNN: 32 x W strip in, W/4 columns of 11 class probabilities out.

    Four 3x3 conv-BN-ReLU blocks, pooled 2x2, 2x2 and then 2x1 (height only), so the width keeps a
    stride of 4 pixels per output column (a digit is 3-6 columns wide, so CTC has room for a blank
    between repeated digits); a (4, 3) convolution then collapses the remaining 4 rows into one
    feature vector per column, and a 1x1 convolution gives each column's softmax over the ten digits
    and the blank (index 10). Every op is a plain Conv2D, MaxPool, ReLU or softmax, which TFLite runs
    in full int8; BatchNorm folds into the convolutions on export. The width is free (None), so one
    model reads any bucketed strip width.

    Args:
        widths: Filters of the five convolutions.
        dropout_rate: Dropout before the classifier.
        height: Strip height in pixels; must be 32 for the pooling plan above.

    Returns:
        An uncompiled model mapping (batch, 32, W, 1) floats in [0, 1], white ink on black, with W a
        multiple of 4, to (batch, W / 4, 11) probabilities.
    """
    if len(widths) != 5:
        raise ValueError(f"widths={widths}: the line model needs five filter counts")
    if height != 32:
        raise ValueError(f"height={height}: the line model's pooling plan needs a 32-pixel strip")
    inputs = keras.Input((height, None, 1), name="strip")
    x = inputs
    pools = ((2, 2), (2, 2), None, (2, 1))
    for index, (filters, pool) in enumerate(zip(widths[:4], pools)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{index + 1}")(x)
        x = layers.ReLU(name=f"relu{index + 1}")(x)
        if pool is not None:
            x = layers.MaxPooling2D(pool, name=f"pool{index + 1}")(x)
    # Pads the width only, so the (4, 3) kernel keeps W/4 columns while consuming the 4 rows.
    x = layers.ZeroPadding2D(((0, 0), (1, 1)), name="column_pad")(x)
    x = layers.Conv2D(widths[4], (4, 3), use_bias=False, name="column_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name="column_bn")(x)
    x = layers.ReLU(name="column_relu")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Conv2D(line_reader.NUM_CLASSES, 1, name="column_logits")(x)
    x = layers.Reshape((-1, line_reader.NUM_CLASSES), name="columns")(x)
    outputs = layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digitkit_line_cnn")


def ctc_loss(y_true, y_pred):
    """CTC loss of padded label rows against per-column probabilities.

    Args:
        y_true: int (batch, max_digits) digit labels, padded with -1 after each line's digits.
        y_pred: (batch, columns, 11) softmax probabilities; the blank is index 10.

    Returns:
        (batch,) negative log-likelihoods of the label sequences.
    """
    labels = keras.ops.cast(y_true, "int32")
    label_length = keras.ops.sum(keras.ops.cast(labels >= 0, "int32"), axis=-1)
    batch = keras.ops.shape(y_pred)[0]
    columns = keras.ops.shape(y_pred)[1]
    output_length = keras.ops.full((batch,), columns, dtype="int32")
    # tf.nn.ctc_loss takes logits and applies log-softmax; log-softmax of log-probabilities is a no-op.
    log_probabilities = keras.ops.log(keras.ops.clip(y_pred, 1e-7, 1.0))
    return keras.ops.ctc_loss(keras.ops.maximum(labels, 0), log_probabilities, label_length, output_length,
                              mask_index=line_reader.BLANK_INDEX)


def is_line_model(model: keras.Model) -> bool:
    """Whether a loaded Keras model is a line model (a 3-D per-column output) rather than a digit classifier."""
    return len(model.outputs[0].shape) == 3
