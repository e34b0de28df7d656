"""The digit CNN: small enough for a Raspberry Pi, accurate enough to beat the classic MNIST CNN."""

from __future__ import annotations

import keras
from keras import layers

from edge_runtime import constants

# How the 28x28 image becomes the 12x12 map the second convolution reads:
#   conv5:  5x5 convolution (24 px) then 2x2 max pool; the original stem.
#   s2d:    space-to-depth 2x2 (14x14x4), then a 3x3 convolution (12 px): the first convolution reads
#           4 channels instead of 1, and there is no full-resolution map or pool.
#   stride2: a 5x5 convolution with stride 2 (12 px), no pool: a quarter of conv5's multiply-adds.
STEMS = ("conv5", "s2d", "stride2")


def build_model(widths: tuple[int, int, int] = (24, 48, 64), dropout_rate: float = 0.1, stem: str = "conv5",
                num_classes: int = constants.NUM_CLASSES) -> keras.Model:
    """Builds the edge CNN: a stem to 12x12, two conv-BN-ReLU blocks, then global pooling.

    Valid (unpadded) convolutions shrink the maps early, so most multiply-adds happen on small maps:
    28 -> stem -> 12 -> 10 (3x3) -> 5 (pool) -> 3 (3x3) -> global average -> classes.
    BatchNorm lets a high learning rate converge in few epochs, and folds into the convolutions on
    export, so it costs nothing on the edge. Its momentum is 0.9 rather than Keras's 0.99 so the
    moving statistics settle within a short run (with 0.99, a 100-step smoke run validates at ~25%).

    Args:
        widths: Filters of the three convolutions.
        dropout_rate: Dropout before the classifier.
        stem: One of STEMS: how the first block reaches 12x12.
        num_classes: Outputs of the classifier.

    Returns:
        An uncompiled model that maps (batch, 28, 28, 1) floats in [0, 1], white digit on black,
        to softmax probabilities over `num_classes` classes.

    Raises:
        ValueError: Unknown stem, or fewer than 2 classes.
    """
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r}: choose one of {', '.join(STEMS)}")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: must be at least 2")
    size = constants.IMAGE_SIZE
    inputs = keras.Input((size, size, 1), name="image")
    x = _stem(inputs, stem, widths[0], size)
    for index, filters in enumerate(widths[1:], start=2):
        x = layers.Conv2D(filters, 3, use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
        if index == 2:
            x = layers.MaxPooling2D(name=f"pool{index}")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    # Logits stay a layer of their own: the export stops there, so the runtime's softmax (with its
    # calibration temperature) sees them at full precision instead of int8 probabilities that
    # saturate at 255/256.
    logits = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="digitkit_cnn")


def _stem(inputs, stem: str, filters: int, size: int):
    """The first conv-BN-ReLU block, ending at 12x12 for a 28x28 input."""
    if stem == "s2d":
        # Reshape and transpose (not a Lambda of tf.nn.space_to_depth): saves and loads without custom code.
        half = size // 2
        x = layers.Reshape((half, 2, half, 2), name="s2d_split")(inputs)
        x = layers.Permute((1, 3, 2, 4), name="s2d_permute")(x)
        x = layers.Reshape((half, half, 4), name="space_to_depth")(x)
        x = layers.Conv2D(filters, 3, use_bias=False, name="conv1")(x)
    elif stem == "stride2":
        x = layers.Conv2D(filters, 5, strides=2, use_bias=False, name="conv1")(inputs)
    else:
        x = layers.Conv2D(filters, 5, use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    if stem == "conv5":
        x = layers.MaxPooling2D(name="pool1")(x)
    return x
