#!/usr/bin/env python
"""Where one batch-1 `DigitClassifier.classify` call spends its time: CPU time of each step, best of 5 x 5,000 calls.

    .venv/bin/python scripts/profile_classify.py [MODEL.tflite ...]     # default: the packaged variants
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_runtime import variants  # noqa: E402
from edge_runtime.interpreter import DigitClassifier  # noqa: E402


def cpu_us(call, calls: int = 5000) -> float:
    """Best of five: CPU time, so that other processes on a shared machine do not count."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return round(best, 2)


def profile(path: pathlib.Path) -> dict:
    classifier = DigitClassifier(path)
    image = np.random.default_rng(0).random((1, 28, 28), np.float32)
    tensor = classifier._preprocess(image)
    classifier._set_input(tensor)
    classifier.invoke()
    raw = classifier.interpreter.get_tensor(classifier.output.index)
    return {"model": path.name, "classify": cpu_us(lambda: classifier.classify(image)), "invoke": cpu_us(classifier.invoke),
            "preprocess": cpu_us(lambda: classifier._preprocess(image)),
            "set_tensor": cpu_us(lambda: classifier._set_input(tensor)),
            "get_tensor": cpu_us(lambda: classifier.interpreter.get_tensor(classifier.output.index)),
            "postprocess": cpu_us(lambda: classifier._postprocess(raw))}


if __name__ == "__main__":
    paths = [pathlib.Path(arg) for arg in sys.argv[1:]] or variants.candidates()[0]
    for path in paths:
        print(json.dumps(profile(path)))
