"""Stem candidates side by side: int8 and dynamic-range LiteRT latency per stem, and accuracy when trained.

Latency does not depend on the weights, so untrained candidates (calibrated on MNIST) screen the
stems before any training; `--runs` adds trained run folders (their `config.json` names the stem)
and measures their MNIST test accuracy as float Keras and as int8.

    MNIST_DIR=../shared/mnist .venv/bin/python scripts/bench_stems.py                 # untrained screen
    MNIST_DIR=../shared/mnist .venv/bin/python scripts/bench_stems.py --runs runs/train/stem-*
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# Latency is measured in a fresh process per model: TensorFlow's own threads and allocations stay out of it.
_TIMER = r"""
import sys, time, json, numpy as np
from edge_runtime.interpreter import DigitClassifier
path, images_path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
images = np.load(images_path)
classifier = DigitClassifier(path, num_threads=1)
interpreter = classifier.interpreter
tensor = classifier._preprocess(images[:1])
interpreter.set_tensor(classifier.input.index, tensor)
for _ in range(200): interpreter.invoke()
invoke, whole = [], []
for round_ in range(rounds):
    # CPU time of this process, not wall time: on a machine shared with other jobs, waiting for the
    # core would otherwise be counted (one interpreter thread, so CPU time is the work itself).
    started = time.process_time()
    for _ in range(200): interpreter.invoke()
    invoke.append((time.process_time() - started) / 200 * 1e6)
    started = time.process_time()
    for index in range(200): classifier.classify(images[index:index + 1])
    whole.append((time.process_time() - started) / 200 * 1e6)
batch = images[:256]
classifier.classify(batch)
started = time.process_time()
for _ in range(10): classifier.classify(batch)
print(json.dumps({"invoke_us": sorted(invoke), "classify_us": sorted(whole),
                  "batch256_images_per_s": 2560 / (time.process_time() - started)}))
"""


def _time_model(path: pathlib.Path, images_path: str, rounds: int) -> dict:
    output = subprocess.run([sys.executable, "-c", _TIMER, str(path), images_path, str(rounds)], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return {"invoke_us_median": round(statistics.median(figures["invoke_us"]), 2),
            "invoke_us_min": round(min(figures["invoke_us"]), 2),
            "classify_us_median": round(statistics.median(figures["classify_us"]), 2),
            "batch256_images_per_s": round(figures["batch256_images_per_s"])}


def _description(network):
    from edge_runtime import constants, metadata

    outputs = int(network.outputs[0].shape[-1])
    labels = constants.LABELS + ((constants.NOT_A_DIGIT,) if outputs == constants.NUM_CLASSES + 1 else ())
    if len(labels) != outputs:
        labels = tuple(str(index) for index in range(outputs))
    return metadata.ModelDescription(labels=labels, output="softmax", embedded=True)


def _realworld(model_path: pathlib.Path, folder: pathlib.Path) -> dict:
    """Exact reads of the real photos (labels.json) through DigitReader with this model, by kind."""
    from edge_runtime.reader import DigitReader

    reader = DigitReader(model_path)
    right, total = {}, {}
    for item in json.loads((folder / "labels.json").read_text()):
        kind = item["kind"].split("/")[0]
        try:
            digits = reader.read(folder / item["file"]).digits
        except ValueError:
            digits = ""
        total[kind] = total.get(kind, 0) + 1
        right[kind] = right.get(kind, 0) + (digits == item["label"])
    return {"exact": round(sum(right.values()) / sum(total.values()), 4),
            **{kind: f"{right[kind]}/{total[kind]}" for kind in total}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=[], help="trained run folders to add (accuracy too)")
    parser.add_argument("--stems", nargs="*", default=None, help="untrained stems to screen (default: all)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--realworld", help="a folder with labels.json: exact reads per trained int8 model")
    parser.add_argument("--output", default=str(ROOT / "bench" / "stems.json"))
    arguments = parser.parse_args()

    import keras

    from edge_runtime import files
    from exporter import convert, metadata as export_metadata
    from trainer import data, model as model_module

    mnist = data.load_mnist(os.environ.get("MNIST_DIR"))
    calibration = mnist.train_images[:300].astype(np.float32)[..., None] / 255.0
    test_images = mnist.test_images.astype(np.float32)[..., None] / 255.0
    candidates = []
    stems = model_module.STEMS if arguments.stems is None else arguments.stems
    if not arguments.runs or arguments.stems:
        for stem in stems:
            keras.utils.set_random_seed(0)
            candidates.append((f"{stem} (untrained)", stem, model_module.build_model(stem=stem), None))
    for run in arguments.runs:
        config = json.loads((pathlib.Path(run) / "config.json").read_text())
        network = keras.models.load_model(pathlib.Path(run) / "model.keras")
        candidates.append((pathlib.Path(run).name, config.get("stem", "conv5"), network, run))

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        images_path = os.path.join(scratch, "images.npy")
        np.save(images_path, test_images[:256, ..., 0])
        for name, stem, network, run in candidates:
            row = {"name": name, "stem": stem, "parameters": int(network.count_params())}
            if run is not None:
                probabilities = network.predict(test_images, batch_size=1000, verbose=0)
                row["keras_accuracy"] = float((probabilities.argmax(1) == mnist.test_labels).mean())
            for mode in ("int8", "dynamic"):
                path = pathlib.Path(scratch, f"{name}-{mode}.tflite".replace(" ", "_"))
                converted = convert.convert(network, mode, calibration if mode == "int8" else None)
                # Labels in the file: 10 digits, or 11 with "not a digit", which the reader then drops.
                path.write_bytes(export_metadata.embed_description(converted, _description(network)))
                row[mode] = {"bytes": path.stat().st_size, **_time_model(path, images_path, arguments.rounds)}
                if run is not None:
                    from edge_runtime.interpreter import DigitClassifier
                    classifier = DigitClassifier(path)
                    predictions = np.concatenate([classifier.classify(test_images[start:start + 500, ..., 0])
                                                  for start in range(0, len(test_images), 500)]).argmax(1)
                    row[mode]["accuracy"] = float((predictions == mnist.test_labels).mean())
                    if arguments.realworld and mode == "int8":
                        row[mode]["realworld"] = _realworld(path, pathlib.Path(arguments.realworld))
            print(json.dumps(row), flush=True)
            rows.append(row)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    files.write_json(arguments.output, {"cpu": cpu, "machine": platform.machine(), "load_average": os.getloadavg(),
                                        "measured": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                        "command": " ".join(sys.argv), "rows": rows})


if __name__ == "__main__":
    main()
