"""The lean `classify` path: reused buffers never leak between calls, and it computes what the plain formulas do."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime import interpreter, variants

PACKAGED = variants.MODELS_DIR / variants.PRIMARY


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    batch = rng.random((9, 28, 28), np.float32)
    batch[:, 4:24, 12:16] = 1.0  # A stroke, so the model has something to say.
    return batch


def test_results_do_not_share_memory_between_calls(images):
    classifier = interpreter.DigitClassifier(PACKAGED)
    first = classifier.classify(images[:1])
    kept = first.copy()
    classifier.classify(images[1:2])
    classifier.classify(images[2:7])
    assert np.array_equal(first, kept)


def test_changing_batch_sizes_give_the_same_rows(images):
    classifier = interpreter.DigitClassifier(PACKAGED)
    one_by_one = np.concatenate([classifier.classify(images[index:index + 1]) for index in range(len(images))])
    for sizes in ((9,), (4, 5), (1, 7, 1)):
        chunks, start = [], 0
        for size in sizes:
            chunks.append(classifier.classify(images[start:start + size]))
            start += size
        assert np.allclose(np.concatenate(chunks), one_by_one, atol=1e-6), sizes


def test_the_input_is_quantized_as_the_formula_says(images):
    classifier = interpreter.DigitClassifier(PACKAGED)
    spec = classifier.input
    if not spec.quantized:
        pytest.skip("the packaged model has a float input")
    limits = np.iinfo(spec.dtype)
    expected = np.clip(np.rint(images[..., None] * np.float32(1.0 / spec.scale) + spec.zero_point),
                       limits.min, limits.max).astype(spec.dtype)
    assert np.array_equal(classifier._preprocess(images), expected.reshape(classifier._preprocess(images).shape))
    # Out-of-range pixels are clamped, never wrapped around.
    extreme = classifier._preprocess(np.stack([np.full((28, 28), -5.0), np.full((28, 28), 5.0)]).astype(np.float32))
    assert extreme[0].max() == limits.min and extreme[1].min() == limits.max


def test_overrides_fold_into_the_same_input(images):
    plain = interpreter.DigitClassifier(PACKAGED)
    inverted = interpreter.DigitClassifier(PACKAGED, polarity="black-on-white")
    assert np.array_equal(inverted.classify(1.0 - images), plain.classify(images))
    float64 = plain.classify(images.astype(np.float64))
    assert np.allclose(float64, plain.classify(images), atol=1e-6)
