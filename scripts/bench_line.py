"""Benchmarks the line reader: synthetic line test set accuracy (int8 and float), agreement, size and latency.

Usage:
    MNIST_DIR=../shared/mnist .venv/bin/python scripts/bench_line.py \
        [--model edge_runtime/models/digitkit_line_int8.tflite] [--keras runs/train/line-model-seed0/model.keras] \
        [--out bench/line_reader.json]

Measures, on the fixed line test set (2,000 lines of MNIST test digits, 1-12 digits, seed 2026, the
set `digit-train --task line` and `digit-export` report on):
  * sequence accuracy and character error rate of the int8 model through edge_runtime's LineRecognizer,
    on the prepared 32x256 strips and end to end (`read_line` on the raw line images, bucketed widths);
  * the same for the float Keras model when --keras is given, and int8-vs-float sequence agreement;
  * the file size, and the latency of one 32x256 strip on one thread pinned to one core: `invoke`
    alone and the whole call (quantize, invoke, dequantize, greedy decoding), medians.
The CPU model and the load average are recorded: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_runtime import files, line_reader  # noqa: E402


def cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_us(function, runs: int) -> float:
    timings = []
    for _ in range(runs + 50):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings[50:]) * 1e6


def latency(model: pathlib.Path, strip: np.ndarray, runs: int) -> dict:
    """One thread, pinned to one core when the OS allows it."""
    pinned = False
    if hasattr(os, "sched_setaffinity"):
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(previous)})
        pinned = True
    try:
        recognizer = line_reader.LineRecognizer(model, num_threads=1)
        interpreter, input_spec, _ = recognizer._interpreter_for((1, strip.shape[2]))
        tensor = recognizer._preprocess(strip, input_spec)

        def invoke_only():
            interpreter.set_tensor(input_spec.index, tensor)
            interpreter.invoke()

        def whole_call():
            line_reader.greedy_ctc_decode(recognizer.column_probabilities(strip)[0], recognizer.blank_index)

        return {"invoke_us": round(median_us(invoke_only, runs), 1), "call_us": round(median_us(whole_call, runs), 1),
                "pinned_to_one_core": pinned}
    finally:
        if pinned:
            os.sched_setaffinity(0, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=line_reader.DEFAULT_MODEL, help="int8 line .tflite")
    parser.add_argument("--keras", type=pathlib.Path, help="the float model.keras it was exported from")
    parser.add_argument("--lines", type=int, default=None, help="test lines (default: the 2,000 of the fixed set)")
    parser.add_argument("--latency-runs", type=int, default=2000)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "bench" / "line_reader.json")
    arguments = parser.parse_args()

    from trainer import data, lines_train

    mnist = data.load_mnist()
    test = lines_train.line_test_set(mnist, arguments.lines, keep_canvases=True)
    recognizer = line_reader.LineRecognizer(arguments.model, num_threads=1)
    int8_probabilities = np.concatenate([recognizer.column_probabilities(test.strips[start:start + 250])
                                         for start in range(0, len(test.strips), 250)])
    int8_reads = lines_train.decode_batch(int8_probabilities)
    result = {"model": str(arguments.model), "model_bytes": arguments.model.stat().st_size,
              "test_lines": len(test.texts), "test_seed": lines_train.TEST_SEED,
              "int8": lines_train.sequence_scores(test.texts, int8_reads)}
    started = time.perf_counter()
    readings = [recognizer.read_line(canvas) for canvas in test.canvases]
    seconds = time.perf_counter() - started
    end_to_end = lines_train.sequence_scores(test.texts, [reading.digits for reading in readings])
    end_to_end["us_per_line"] = round(seconds / len(readings) * 1e6, 1)
    result["int8_read_line_end_to_end"] = end_to_end
    if arguments.keras:
        import keras

        model = keras.saving.load_model(arguments.keras, compile=False)
        float_reads = lines_train.decode_batch(model.predict(test.strips[..., None], batch_size=250, verbose=0))
        result["float_keras"] = lines_train.sequence_scores(test.texts, float_reads)
        result["int8_vs_float_sequence_agreement"] = float(np.mean([a == b for a, b in zip(int8_reads, float_reads)]))
    strip = np.zeros((1, line_reader.STRIP_HEIGHT, 256), np.float32)
    strip[0] = test.strips[-1, :, :256]
    result["latency_32x256"] = latency(arguments.model, strip, arguments.latency_runs)
    result["cpu"] = cpu_name()
    result["load_average_at_end"] = list(os.getloadavg())
    result["command"] = " ".join([pathlib.Path(sys.executable).name, *sys.argv])
    files.write_json(arguments.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
