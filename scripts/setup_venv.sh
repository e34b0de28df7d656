#!/usr/bin/env bash
# Creates .venv (if missing) and installs digitkit with the given extras; does nothing when already current.
# Usage: scripts/setup_venv.sh [EXTRAS]   e.g. scripts/setup_venv.sh train,dev,view
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-train,dev,view}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv || { echo "error: '$python -m venv' failed; on Debian/Ubuntu: sudo apt install python3-venv" >&2; exit 1; }
fi
# Reinstall only when pyproject.toml or the extras changed, so repeated runs take a second.
stamp=".venv/.digitkit-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  echo "$want" > "$stamp"
fi
