#!/usr/bin/env bash
# Runs the whole test suite (slow tests included) in .venv, creating it first if needed.
# MNIST is read from $MNIST_DIR, defaulting to ../shared/mnist beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh train,dev,view,cluster
if [ -z "${MNIST_DIR:-}" ] && [ -d ../shared/mnist ]; then
  export MNIST_DIR="$(cd ../shared/mnist && pwd)"
fi
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest "$@"
