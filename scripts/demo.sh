#!/usr/bin/env bash
# The whole digitkit job, end to end, on a fresh machine: create .venv, install, train the CNN on MNIST,
# export it to int8 TensorFlow Lite (with its parity report), and read samples/ with the new model.
# Usage: bash scripts/demo.sh [--quick]      (--quick: the ~1-minute training profile)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
for argument in "$@"; do
  case "$argument" in
    --quick) profile=(--quick) ;;
    *) echo "demo.sh: unknown option '$argument'; the only one is --quick (point it at MNIST with MNIST_DIR=FOLDER)" >&2
       exit 2 ;;
  esac
done
bash scripts/setup_venv.sh train,dev,view
if [ -z "${MNIST_DIR:-}" ] && [ -d ../shared/mnist ]; then export MNIST_DIR="$(cd ../shared/mnist && pwd)"; fi
export TF_CPP_MIN_LOG_LEVEL=2
name="demo-$(date +%Y%m%d-%H%M%S)"
echo "== 1/3 train (runs/train/$name)"
.venv/bin/digit-train "${profile[@]}" --out runs/train --name "$name"
run="$(ls -d runs/train/"$name"* | tail -n 1)"
echo "== 2/3 export int8 ($run)"
.venv/bin/digit-export "$run" --quantize int8
echo "== 3/3 read samples/ with $run/model_int8.tflite (overlays in $run/overlays)"
.venv/bin/digit-infer samples/ --model "$run/model_int8.tflite" --save-overlays "$run/overlays"
