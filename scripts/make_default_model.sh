#!/usr/bin/env bash
# Regenerates the models that ship with digitkit (edge_runtime/models/: int8 and dynamic-range) with digitkit's own
# digit-train and digit-export, from seed 0, and records its export report beside it.
# Usage: MNIST_DIR=../shared/mnist bash scripts/make_default_model.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-0}"
bash scripts/setup_venv.sh train,dev,view
if [ -z "${MNIST_DIR:-}" ] && [ -d ../shared/mnist ]; then export MNIST_DIR="$(cd ../shared/mnist && pwd)"; fi
export TF_CPP_MIN_LOG_LEVEL=2
run="runs/train/default-model-seed$seed"
if [ ! -f "$run/metrics.json" ]; then
  rm -rf "$run"   # a half-finished earlier attempt; digit-train never overwrites, so clear it first
  # 16 epochs rather than the default profile's 12: with the "not a digit" class and the style
  # augmentation, 12 epochs gave 99.49% on MNIST, 16 gave 99.58% (the packaged model must be >= 99.5%).
  .venv/bin/digit-train --seed "$seed" --epochs 16 --out runs/train --name "default-model-seed$seed"
fi
models=edge_runtime/models
# Two exports of the same network: `digit-infer --model auto` times both once per machine and uses the
# faster (edge_runtime/variants.py). Each export must pass its parity proof (digit-export exits 1 otherwise).
for mode in int8 dynamic; do
  .venv/bin/digit-export "$run" --quantize "$mode" --seed "$seed"
done
for mode in int8 dynamic; do
  cp "$run/model_$mode.tflite" "$models/digitkit_$mode.tflite.tmp" && mv "$models/digitkit_$mode.tflite.tmp" "$models/digitkit_$mode.tflite"
  cp "$run/model_$mode.report.json" "$models/digitkit_$mode.report.json"
  cp "$run/model_$mode.report.md" "$models/digitkit_$mode.report.md"
  echo "Shipped $(stat -c %s "$models/digitkit_$mode.tflite") bytes: $models/digitkit_$mode.tflite"
done
cp "$run/config.json" "$models/digitkit_int8.train-config.json"
cp "$run/metrics.json" "$models/digitkit_int8.train-metrics.json"
# Confidence calibration: temperature scaling fitted on the tuning part of ../shared/realworld (real photos,
# split by source in scripts/realworld.py), stored in each shipped file's metadata; skipped without the set.
if [ -f ../shared/realworld/labels.json ] || [ -n "${REALWORLD_DIR:-}" ]; then
  for mode in int8 dynamic; do
    .venv/bin/python scripts/calibrate.py --model "$models/digitkit_$mode.tflite" --write --json "bench/calibration_$mode.json"
  done
else
  echo "warning: ../shared/realworld not found: the shipped models are not calibrated (temperature 1)" >&2
fi
