#!/usr/bin/env python
"""Regenerates tests/golden/samples.json: what the shipped model reads from every file in samples/.

Run it after changing the model or the preprocessing on purpose, look at the diff, and commit it:
    python scripts/regen_golden.py
"""

from __future__ import annotations

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_runtime import batch, files  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "samples.json"


def read_samples() -> dict[str, dict]:
    """Readings of samples/ keyed by file name, rounded so tiny numeric drift does not churn the file."""
    paths, problems = batch.discover([REPO / "samples"])
    if problems:
        raise SystemExit(f"cannot read samples: {[problem.error for problem in problems]}")
    readings = {}
    for result in batch.read_files(batch.BatchJob(), paths):
        record = result.to_record()
        readings[pathlib.Path(record["path"]).name] = {
            "digits": record["digits"], "status": record["status"], "confidence": round(record["confidence"], 3),
            "boxes": record["boxes"]}
    return readings


def main() -> None:
    files.write_json(GOLDEN, read_samples())
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
