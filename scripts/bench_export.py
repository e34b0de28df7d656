#!/usr/bin/env python
"""Export benchmark: converts one trained model in every mode and checks the int8 targets.

Targets (int8): accuracy within 0.1 points of Keras, >= 99.9% agreement, at most 1/3 of the float32
file, and latency no worse than float32 (one thread, one image, through edge_runtime).

Usage:
    MNIST_DIR=../shared/mnist python scripts/bench_export.py RUN_FOLDER_OR_MODEL [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from exporter import config, export  # noqa: E402
from trainer import data  # noqa: E402

MODES = ("none", "float16", "dynamic", "int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model.keras or a run folder")
    parser.add_argument("--out", type=pathlib.Path, help="keep the .tflite files here (default: a temporary folder)")
    parser.add_argument("--latency-runs", type=int, default=5000)
    parser.add_argument("--json", type=pathlib.Path)
    arguments = parser.parse_args()
    mnist = data.load_mnist()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch:
        out = arguments.out or pathlib.Path(scratch)
        reports = {}
        for mode in MODES:
            settings = config.ExportConfig(model=arguments.model, quantize=mode, out=str(out),
                                           latency_runs=arguments.latency_runs)
            _, reports[mode] = export.export(settings, mnist)
    print(f"{'mode':<9}{'bytes':>9}{'accuracy':>10}{'drop pts':>10}{'agreement':>11}{'µs/image':>10}")
    for mode, report in reports.items():
        print(f"{mode:<9}{report['tflite_bytes']:>9,}{report['tflite_accuracy']:>10.2%}{report['accuracy_drop']:>10.3f}"
              f"{report['agreement']:>11.3%}{report['tflite_us_per_image']:>10.1f}")
    int8 = reports["int8"]
    checks = {
        "int8 accuracy within 0.1 points": int8["accuracy_drop"] <= 0.1,
        "agreement >= 99.9%": int8["agreement"] >= 0.999,
        "int8 size <= 1/3 of float32": int8["tflite_bytes"] <= int8["float32_bytes"] / 3,
        "int8 latency <= float32 latency": int8["tflite_us_per_image"] <= reports["none"]["tflite_us_per_image"],
    }
    for name, passed in checks.items():
        print(f"{'MET   ' if passed else 'MISSED'} {name}")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {mode: {key: report[key] for key in ("tflite_bytes", "float32_bytes", "keras_accuracy",
                                                       "tflite_accuracy", "accuracy_drop", "agreement",
                                                       "tflite_us_per_image", "float32_us_per_image")}
                   for mode, report in reports.items()}
        arguments.json.write_text(json.dumps({"modes": summary, "targets": checks}, indent=2) + "\n")


if __name__ == "__main__":
    main()
