"""Compares line models side by side on the real photos: as they are, at the CLI's default, made harder and under everyday changes.

A line model is chosen by what it reads in `../shared/realworld`, not by the synthetic line test set
alone. One number per model hides too much: the reader's rules were tuned around the packaged model
on the tuning part, so any other model starts a little behind there. The photos made harder
(`scripts/robustness.py`), the everyday versions (`robustness.EVERYDAY`: saved again as a JPEG,
scaled by 0.8-1.5, a little darker or lighter) and the CLI's default `--min-confidence` show whether a
model reads better beyond the exact pixels the rules were tuned on. Nothing is copied: the photos are read where they lie.

The realistic synthetic sets (`scripts/make_realistic_set.py`; `--realistic FOLDER`, once per set)
are read too where given: issue 8's and issue 9's targets are set on them.

Usage:
    python scripts/compare_line_models.py --model packaged=edge_runtime/models/digitkit_line_int8.tflite \\
        --model other=runs/train/line-model-seed1/model_int8.tflite --json bench/line_models.json
    ... --realistic /tmp/digitkit-realistic --realistic /tmp/realistic-seed7
"""

from __future__ import annotations

import argparse
import collections
import csv
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
import machine  # noqa: E402
import realworld  # noqa: E402
import robustness  # noqa: E402


def _named_model(text: str) -> tuple[str, pathlib.Path]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: give a model as NAME=PATH")
    if not pathlib.Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such line model file")
    return name, pathlib.Path(path)


def measure(model: pathlib.Path, items: list) -> dict:
    """Right reads at `--min-confidence 0`, accepted right and wrong at the CLI's default, and the ten changes."""
    from edge_runtime import constants, imageio, reader as reader_module

    def reader_at(min_confidence: float):
        return reader_module.DigitReader(options=reader_module.ReaderOptions(
            min_confidence=min_confidence, line_model=str(model)))

    everything, at_default = reader_at(0.0), reader_at(constants.CLI_MIN_CONFIDENCE)
    counts = collections.Counter()
    for item in items:
        image = imageio.load_image(str(item.path))
        right = realworld.is_right(item, everything.read(image))
        result = at_default.read(image)
        accepted, right_at_default = result.status == constants.STATUS_OK, realworld.is_right(item, result)
        for part in (item.part, "whole"):
            counts[f"{part} {item.kind} right"] += right
            counts[f"{part} {item.kind} accepted right at default"] += accepted and right_at_default
            counts[f"{part} {item.kind} accepted wrong at default"] += accepted and not right_at_default
    changed = {}
    for name, change in robustness.CHANGES.items():
        right, _, no_digit = robustness.read_changed(everything, items, change)
        changed[name] = {"singles": right[("whole", "single")], "numbers": right[("whole", "multi")],
                         "no_digit_found": no_digit}
    return {"model": str(model), "real": dict(sorted(counts.items())), "changed": changed,
            "changed_total": {key: sum(figures[key] for figures in changed.values())
                              for key in ("singles", "numbers", "no_digit_found")},
            "everyday": robustness.summed(everything, items)}


def measure_realistic(model: pathlib.Path, folder: pathlib.Path) -> dict:
    """Exact reads of a realistic synthetic set (its labels.csv): singles and numbers, `--min-confidence 0`."""
    from edge_runtime import imageio, reader as reader_module

    reader = reader_module.DigitReader(options=reader_module.ReaderOptions(line_model=str(model)))
    with (folder / "labels.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    counts = collections.Counter()
    for row in rows:
        result = reader.read(imageio.load_image(str(folder / row["path"])), source=row["path"])
        kind = "numbers" if row["kind"] == "multi_digit" else "singles"
        counts[kind] += realworld.digits_of(result.digits) == row["label"]
        counts[f"{kind} total"] += 1
    return dict(sorted(counts.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=_named_model, action="append", required=True,
                        help="NAME=PATH of an int8 line model; give it once per model")
    parser.add_argument("--realistic", type=pathlib.Path, action="append", default=[],
                        help="a realistic synthetic set's folder (with labels.csv); give it once per set")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    for folder in args.realistic:
        if not (folder / "labels.csv").is_file():
            parser.error(f"--realistic {folder}: no labels.csv there (make one with scripts/make_realistic_set.py)")
    items = realworld.load("whole")
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "images": len(items), "models": {}}
    for name, path in args.model:
        figures["models"][name] = measure(path, items)
        figures["models"][name]["realistic"] = {str(folder): measure_realistic(path, folder)
                                                for folder in args.realistic}
        real, total = figures["models"][name]["real"], figures["models"][name]["changed_total"]
        everyday = figures["models"][name]["everyday"]
        print(f"{name}: singles {real.get('whole single right', 0)}, numbers {real.get('whole multi right', 0)}; "
              f"at the default, numbers {real.get('whole multi accepted right at default', 0)} right and "
              f"{real.get('whole multi accepted wrong at default', 0)} wrong; made harder: singles "
              f"{total['singles']}, numbers {total['numbers']}; everyday: singles {everyday['singles']}, "
              f"numbers {everyday['numbers']}; realistic: "
              + "; ".join(f"{counts.get('singles', 0)} and {counts.get('numbers', 0)}"
                          for counts in figures["models"][name]["realistic"].values()), flush=True)
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
