"""The network's stem option: every stem builds the same 12x12 map for the blocks after it, for any class count."""

from __future__ import annotations

import numpy as np
import pytest

from trainer import config, model


@pytest.mark.parametrize("stem", model.STEMS)
@pytest.mark.parametrize("classes", [10, 11])
def test_every_stem_reaches_12x12_and_gives_probabilities(stem, classes):
    network = model.build_model(stem=stem, num_classes=classes)
    assert network.get_layer("conv2").input.shape[1:3] == (12, 12)
    probabilities = np.asarray(network(np.random.default_rng(0).random((2, 28, 28, 1), np.float32)))
    assert probabilities.shape == (2, classes)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_space_to_depth_keeps_each_2x2_block_together():
    import keras

    network = model.build_model(stem="s2d")
    s2d = keras.Model(network.inputs, network.get_layer("space_to_depth").output)
    image = np.arange(28 * 28, dtype=np.float32).reshape(1, 28, 28, 1)
    blocks = np.asarray(s2d(image))
    assert blocks.shape == (1, 14, 14, 4)
    assert blocks[0, 3, 5].tolist() == image[0, 6:8, 10:12, 0].ravel().tolist()


def test_unknown_stems_and_class_counts_are_refused():
    with pytest.raises(ValueError, match="stem='conv7'.*conv5, s2d, stride2"):
        model.build_model(stem="conv7")
    with pytest.raises(ValueError, match="stem='conv7'.*conv5, s2d, stride2"):
        config.TrainConfig(stem="conv7")
    with pytest.raises(ValueError, match="num_classes=1"):
        model.build_model(num_classes=1)
    assert config.STEMS == model.STEMS
