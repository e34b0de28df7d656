"""The line model: a small fully convolutional CNN that reads a strip of digits column by column, trained with CTC."""

from __future__ import annotations

import keras
from keras import layers

from edge_runtime import line_reader

DEFAULT_WIDTHS = (16, 32, 48, 64, 128)
"""Filters of the four 3x3 convolutions and of the column features (the height collapse and the context blocks)."""

CONTEXT_BLOCKS = 2
CONTEXT_KERNEL = 5
"""Residual blocks along the width after the height collapse, each a depthwise 1 x 5 and a 1 x 1 convolution."""

ACTIVATION_CAP = 6.0
"""Every ReLU is a ReLU6, and the context blocks apply it after their addition: int8 then splits 0-6
into 255 steps instead of the 0-12 that plain ReLUs reached, halving the rounding of every activation."""

LOGIT_PENALTY = 3e-5
"""L2 activity penalty on the column logits (per line, summed over its columns and classes).

Without it a confident blank column reaches a logit of 45 and the int8 logits spanned -23..50 in
steps of 0.29: two close classes often quantized to the same value and the int8 argmax took the
lower index (19 of the 26 columns that flipped a line were such exact ties), so int8 and float
agreed on only 98.85% of the test lines. With the penalty (and ReLU6) the int8 logits span
-5.8..14.6 in steps of 0.08 and 99.75% of the lines agree (greedy decoding needs only the argmax,
which a narrower logit range does not change). Weaker penalties measured 99.30-99.55% (3e-6, 1e-5).
"""


def build_line_model(widths: tuple[int, ...] = DEFAULT_WIDTHS, dropout_rate: float = 0.1,
                     height: int = line_reader.STRIP_HEIGHT, context_blocks: int = CONTEXT_BLOCKS) -> keras.Model:
    """Builds the line CNN: 32 x W strip in, W/4 columns of 11 class probabilities out.

    Four 3x3 conv-BN-ReLU6 blocks, pooled 2x2, 2x2, 2x1 (height only) and not at all, so the width
    keeps a stride of 4 pixels per output column (a digit is 3-6 columns wide, so CTC has room for a
    blank between repeated digits) and the fourth block works on 4 rows, at half the cost of 8. A
    (4, 1) convolution then collapses those 4 rows into one feature vector per column, and
    `context_blocks` residual blocks (a depthwise 1 x 5 convolution, a 1 x 1 convolution and BN,
    added to their input, then ReLU6) widen what each column sees along the line: from 26 strip
    pixels after the 3x3 blocks by 16 per block (58 with two, about a digit and a half either side),
    which helps with touching and overlapping digits. They cost few weights: the old (4, 3) column
    convolution was 73k of the old model's 122k; this model has 117k in all, 148 KB as int8. A 1x1
    convolution gives each column's logits (kept narrow by `LOGIT_PENALTY`) and a softmax over the
    ten digits and the blank (index 10). Every op is a plain or depthwise Conv2D, MaxPool, ReLU6,
    Add or softmax, which TFLite runs in full int8; BatchNorm folds into the convolutions on
    export. The width is free (None), so one model reads any bucketed strip width.

    Args:
        widths: Filters of the four 3x3 convolutions and of the column features.
        dropout_rate: Dropout before the classifier.
        height: Strip height in pixels; must be 32 for the pooling plan above.
        context_blocks: Residual 1 x 5 blocks after the height collapse (0 for none).

    Returns:
        An uncompiled model mapping (batch, 32, W, 1) floats in [0, 1], white ink on black, with W a
        multiple of 4, to (batch, W / 4, 11) probabilities.
    """
    if len(widths) != 5:
        raise ValueError(f"widths={widths}: the line model needs five filter counts")
    if height != 32:
        raise ValueError(f"height={height}: the line model's pooling plan needs a 32-pixel strip")
    if context_blocks < 0:
        raise ValueError(f"context_blocks={context_blocks}: must be zero or more")
    inputs = keras.Input((height, None, 1), name="strip")
    x = inputs
    pools = ((2, 2), (2, 2), (2, 1), None)
    for index, (filters, pool) in enumerate(zip(widths[:4], pools)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{index + 1}")(x)
        x = layers.ReLU(ACTIVATION_CAP, name=f"relu{index + 1}")(x)
        if pool is not None:
            x = layers.MaxPooling2D(pool, name=f"pool{index + 1}")(x)
    x = layers.Conv2D(widths[4], (height // 8, 1), use_bias=False, name="column_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name="column_bn")(x)
    x = layers.ReLU(ACTIVATION_CAP, name="column_relu")(x)
    for index in range(context_blocks):
        name = f"context{index + 1}"
        y = layers.DepthwiseConv2D((1, CONTEXT_KERNEL), padding="same", use_bias=False, name=f"{name}_depthwise")(x)
        y = layers.Conv2D(widths[4], 1, use_bias=False, name=f"{name}_pointwise")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(y)
        x = layers.Add(name=f"{name}_add")([x, y])
        x = layers.ReLU(ACTIVATION_CAP, name=f"{name}_relu")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Conv2D(line_reader.NUM_CLASSES, 1, name="column_logits",
                      activity_regularizer=keras.regularizers.L2(LOGIT_PENALTY) if LOGIT_PENALTY else None)(x)
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
