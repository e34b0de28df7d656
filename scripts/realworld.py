"""The real-photo yardstick: `../shared/realworld` split by source repository, read and scored.

The set is not ours to redistribute, so nothing here copies it: it is read where it lies
(`$REALWORLD_DIR`, else `../shared/realworld` beside the checkout).

The split is fixed here, by whole source repository, so that nothing tuned on one writer's pages is
measured on the same writer. TUNING holds the sources that preprocessing and calibration may be
tuned on; MEASURING holds the ones that are only ever measured.

Usage:
    python scripts/realworld.py                    # whole set, both parts, per kind and per repository
    python scripts/realworld.py --part measuring --show-misses
    python scripts/realworld.py --model other.tflite --json out.json
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUNING = (
    "Charitable-Analytics-International/AI4Good---Meza-OCR-Challenge",
    "shrsai123/Project-5-Recognition-using-Deep-Networks",
    "harkib/digit-recognition-CNN",
    "Sourav-02121996/Recognition-using-Deep-Networks",
    "adelian14/Handwritten-Digit-Recognition",
)
MEASURING = (
    "pavitrakumar78/Python-Custom-Digit-Recognition",
    "Atharva-Pandkar/Recgnition-Using-Deep-Networks",
    "samusamusam/CS5330_Spring2024",
    "harshalnishar/handwritten_digit_recognition",
    "niraj-dudani/mnist-multiple-digits",
    "filippoguerranti/handwritten_long_numbers_recognition",
)
PARTS = ("tuning", "measuring", "whole")


def data_dir() -> pathlib.Path:
    """Where the set lies: $REALWORLD_DIR, else ../shared/realworld beside the checkout."""
    return pathlib.Path(os.environ.get("REALWORLD_DIR") or ROOT.parent / "shared" / "realworld")


@dataclasses.dataclass(frozen=True)
class Item:
    """One labelled real image."""

    path: pathlib.Path
    label: str  # digits only, reading order
    kind: str  # "single" or "multi"
    repo: str
    part: str  # "tuning" or "measuring"
    desc: str


def load(part: str = "whole", folder: pathlib.Path | None = None) -> list[Item]:
    """The labelled items of one part ("tuning", "measuring" or "whole").

    Raises:
        FileNotFoundError: The set is not there.
        ValueError: Unknown part, or a repository that the split does not place.
    """
    if part not in PARTS:
        raise ValueError(f"part={part!r}: choose one of {', '.join(PARTS)}")
    folder = folder or data_dir()
    labels = folder / "labels.json"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels}: the real-photo set is missing (set REALWORLD_DIR)")
    items = []
    for entry in json.loads(labels.read_text(encoding="utf-8")):
        repo = entry["repo"]
        if repo not in TUNING + MEASURING:
            raise ValueError(f"{repo}: not placed in the tuning/measuring split; add it to one side")
        item = Item(folder / entry["file"], entry["label"], entry["kind"].split("/")[0], repo,
                    "tuning" if repo in TUNING else "measuring", entry.get("desc", ""))
        if part in ("whole", item.part):
            items.append(item)
    return items


def digits_of(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


def is_right(item: Item, result) -> bool:
    """Exact read: status ok and the digits (groups and lines aside) equal the label."""
    return result.status == "ok" and digits_of(result.digits) == item.label


def score(items: list[Item], results: list) -> dict:
    """Exact-read rates per part, kind and repository, and the 'no digit found' count."""
    tally = collections.defaultdict(lambda: [0, 0])
    no_digit = 0
    for item, result in zip(items, results):
        right = is_right(item, result)
        no_digit += result.status == "no digit found"
        for key in (("whole", item.kind), (item.part, item.kind), ("repo", item.repo, item.kind)):
            tally[key][0] += right
            tally[key][1] += 1
    return {"counts": {" ".join(key): value for key, value in sorted(tally.items())},
            "no_digit_found": no_digit, "images": len(items)}


def read_all(reader, items: list[Item]) -> list:
    return [reader.read(str(item.path)) for item in items]


def report_lines(summary: dict) -> list[str]:
    lines = []
    for key, (right, total) in summary["counts"].items():
        lines.append(f"{key:<75} {right:>4}/{total:<4} {100 * right / total:6.1f}%")
    lines.append(f"'no digit found' on {summary['no_digit_found']} of {summary['images']} images (all hold digits)")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, default="whole")
    parser.add_argument("--model", help="a .tflite model (default: the packaged one)")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from edge_runtime import reader as reader_module

    reader = reader_module.DigitReader(args.model)
    items = load(args.part)
    results = read_all(reader, items)
    summary = score(items, results)
    print("\n".join(report_lines(summary)))
    if args.show_misses:
        for item, result in zip(items, results):
            if not is_right(item, result):
                print(f"MISS {item.part:<9} {item.path.relative_to(item.path.parents[2])}  label {item.label}  "
                      f"read {result.digits or '-'} ({result.status}, {result.confidence:.2f})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
