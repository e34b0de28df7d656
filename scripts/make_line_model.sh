#!/usr/bin/env bash
# Regenerates the int8 LINE model that ships with digitkit (edge_runtime/models/digitkit_line_int8.tflite)
# with digitkit's own digit-train --task line and digit-export, from seed 0, and records its reports beside it.
# The line profile's defaults are the recipe: 30% of the training 1s with a long lead-in (`--lead-in-share`,
# trainer.config.LINE_LEAD_IN_SHARE), since the eleventh session.
# Usage: MNIST_DIR=../shared/mnist bash scripts/make_line_model.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-0}"
bash scripts/setup_venv.sh train,dev
if [ -z "${MNIST_DIR:-}" ] && [ -d ../shared/mnist ]; then export MNIST_DIR="$(cd ../shared/mnist && pwd)"; fi
export TF_CPP_MIN_LOG_LEVEL=2
run="runs/train/line-model-seed$seed"
if [ ! -f "$run/metrics.json" ]; then
  rm -rf "$run"   # a half-finished earlier attempt; digit-train never overwrites, so clear it first
  .venv/bin/digit-train --task line --seed "$seed" --out runs/train --name "line-model-seed$seed"
fi
.venv/bin/digit-export "$run" --quantize int8 --seed "$seed"
models=edge_runtime/models
cp "$run/model_int8.tflite" "$models/digitkit_line_int8.tflite.tmp" && mv "$models/digitkit_line_int8.tflite.tmp" "$models/digitkit_line_int8.tflite"
cp "$run/model_int8.report.json" "$models/digitkit_line_int8.report.json"
cp "$run/model_int8.report.md" "$models/digitkit_line_int8.report.md"
cp "$run/config.json" "$models/digitkit_line_int8.train-config.json"
cp "$run/metrics.json" "$models/digitkit_line_int8.train-metrics.json"
echo "Shipped $(stat -c %s "$models/digitkit_line_int8.tflite") bytes: $models/digitkit_line_int8.tflite"
