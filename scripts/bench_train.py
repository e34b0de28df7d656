#!/usr/bin/env python
"""Training benchmark: wall time and MNIST test accuracy of `digit-train` profiles, against the targets.

Runs the real command line in a subprocess, so the wall time includes start-up, data loading,
training and the report, exactly what a user waits for.

Usage:
    MNIST_DIR=../shared/mnist python scripts/bench_train.py [--profiles default quick] [--compare-classic]
        [--json bench/train.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import machine  # noqa: E402

TARGETS = {"default": (0.995, 240.0), "quick": (0.990, 60.0)}


def run_profile(profile: str, out: pathlib.Path, seed: int) -> dict:
    """Runs `digit-train` for one profile and returns its measured figures."""
    if (out / profile).exists():
        raise SystemExit(f"{out / profile} exists already; give --keep an empty folder")
    command = [sys.executable, "-m", "trainer.cli", "--out", str(out), "--name", profile, "--seed", str(seed)]
    if profile == "quick":
        command.append("--quick")
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"digit-train {profile} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    metrics = json.loads((out / profile / "metrics.json").read_text())
    accuracy_target, time_target = TARGETS[profile]
    return {"profile": profile, "wall_seconds": round(wall, 1), "train_seconds": metrics["train_seconds"],
            "test_accuracy": metrics["test_accuracy"], "epochs_run": metrics["epochs_run"],
            "best_epoch": metrics["best_epoch"], "parameters": metrics["parameters"],
            "target": f">= {accuracy_target:.1%} in <= {time_target:.0f} s",
            "met": metrics["test_accuracy"] >= accuracy_target and wall <= time_target}


def run_classic(seed: int) -> dict:
    """The classic Keras MNIST CNN (conv32-pool-conv64-pool-dense128, 5 epochs, batch 128), for reference."""
    import keras
    from keras import layers

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from trainer import data

    keras.utils.set_random_seed(seed)
    mnist = data.load_mnist()
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
                              layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
                              layers.Dropout(0.5), layers.Dense(128, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    images = mnist.train_images[..., None] / 255.0
    started = time.perf_counter()
    model.fit(images, mnist.train_labels, batch_size=128, epochs=5, validation_split=0.1, verbose=0)
    seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(mnist.test_images[..., None] / 255.0, mnist.test_labels, verbose=0)
    return {"profile": "classic CNN (reference)", "train_seconds": round(seconds, 1), "test_accuracy": accuracy,
            "parameters": model.count_params()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["default", "quick"], choices=sorted(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare-classic", action="store_true", help="Also train the classic Keras CNN.")
    parser.add_argument("--json", type=pathlib.Path, help="Write the figures here as JSON.")
    parser.add_argument("--keep", type=pathlib.Path, help="Keep the run folders here (default: deleted).")
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        out = arguments.keep or pathlib.Path(scratch)
        for profile in arguments.profiles:
            rows.append(run_profile(profile, out, arguments.seed))
            print(json.dumps(rows[-1]), flush=True)
    if arguments.compare_classic:
        rows.append(run_classic(arguments.seed))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'profile':<26}{'wall s':>8}{'train s':>9}{'test acc':>10}  target")
    for row in rows:
        print(f"{row['profile']:<26}{row.get('wall_seconds', ''):>8}{row['train_seconds']:>9}"
              f"{row['test_accuracy']:>10.2%}  {row.get('target', '')} {'' if 'met' not in row else ('MET' if row['met'] else 'MISSED')}")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        machine.write_result(arguments.json, {"cpu": machine.cpu_name(), "cpu_count": os.cpu_count(),
                                              "date": time.strftime("%Y-%m-%d"), "results": rows})


if __name__ == "__main__":
    main()
