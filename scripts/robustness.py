"""The real photos made harder: each of `../shared/realworld` read again in worse light, at another scale or turned a little.

Real photos in the wild are dimmer, more shaded and sharper or blurrier than any set of 209. Reading
the same photos through a few plain changes shows which kinds of change the reader withstands
(a gain that fits only the photos as they are shows up here as a loss). The changes are fixed, so
runs compare. Like `realworld.py`, nothing is copied: the photos are read where they lie.

Two sets of changes:
- `harder` (the default): shaded, washed out, half and twice the size, turned 8 degrees, blurred,
  JPEG 25. Each is a photo a user might take on a bad day.
- `everyday`: changes too small to see. The photo saved again as a JPEG (quality 92, 80), scaled by
  0.8, 1.25 or 1.5, a little darker or lighter (gamma 1.25, 0.8). A reading that changes under these
  was right by luck: another photo of the same page would be read otherwise. The per-image stability
  (how many of the versions each image is read right in) shows how much of a score is luck.

Usage:
    python scripts/robustness.py                       # every change, both parts, singles and numbers
    python scripts/robustness.py --changes shaded washed-out --json bench/robustness.json
    python scripts/robustness.py --set everyday --json bench/everyday.json
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import time

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import machine  # noqa: E402
import realworld  # noqa: E402


def _shaded(image: np.ndarray) -> np.ndarray:
    """Light falling to 55% from right to left, as beside a window or under a hand."""
    light = np.linspace(0.55, 1.0, image.shape[1], dtype=np.float32)[np.newaxis, :, np.newaxis]
    return np.clip(image * light, 0, 255).astype(np.uint8)


def _washed_out(share: float):
    """Contrast cut to `share`, towards light grey paper: pencil, a faded print, a dim photo."""
    def change(image: np.ndarray) -> np.ndarray:
        return (image.astype(np.float32) * share + 235 * (1 - share)).astype(np.uint8)
    return change


def scaled(factor: float, enlarge: int = cv2.INTER_LINEAR):
    """Scaled by `factor`: area interpolation down, `enlarge` up (cubic for the everyday set, as a
    camera's own resampling; linear for the harder one, as it always was)."""
    def change(image: np.ndarray) -> np.ndarray:
        interpolation = cv2.INTER_AREA if factor < 1 else enlarge
        return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)
    return change


def _turned(degrees: float):
    """Turned by a few degrees about the centre; the corners are filled with the nearest paper."""
    def change(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
        return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    return change


def _blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 1.5)


def jpeg_again(quality: int):
    """Saved again as a JPEG of this quality: what any photo app or upload does (25: a messaging app)."""
    def change(image: np.ndarray) -> np.ndarray:
        return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)
    return change


def _gamma(exponent: float):
    """Another exposure: mid-tones darker (exponent over 1) or lighter, black and white kept."""
    table = np.array([255.0 * (level / 255.0) ** exponent for level in range(256)]).round().astype(np.uint8)

    def change(image: np.ndarray) -> np.ndarray:
        return cv2.LUT(image, table)
    return change


EVERYDAY = {
    "as-is": lambda image: image,
    "jpeg-92": jpeg_again(92),
    "jpeg-80": jpeg_again(80),
    "scaled-0.8": scaled(0.8),
    "scaled-1.25": scaled(1.25, cv2.INTER_CUBIC),
    "scaled-1.5": scaled(1.5, cv2.INTER_CUBIC),
    "darker": _gamma(1.25),
    "lighter": _gamma(0.8),
}

CHANGES = {
    "as-is": lambda image: image,
    "shaded": _shaded,
    "washed-out": _washed_out(0.6),
    "very-washed-out": _washed_out(0.4),
    "half-size": scaled(0.5),
    "double-size": scaled(2.0),
    "turned+8": _turned(8.0),
    "turned-8": _turned(-8.0),
    "blurred": _blurred,
    "jpeg-25": jpeg_again(25),
}


SETS = {"harder": CHANGES, "everyday": EVERYDAY}


def read_changed(reader, items: list, change, right_in: collections.Counter | None = None,
                 ) -> tuple[collections.Counter, collections.Counter, int]:
    """Right reads per (part, kind), totals per (part, kind), and 'no digit found' count.

    Args:
        right_in: If given, each item's path is counted in it when the item is read right.
    """
    right, total, no_digit = collections.Counter(), collections.Counter(), 0
    for item in items:
        image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{item.path}: cannot be read as an image")
        result = reader.read(change(image), source=str(item.path))
        is_right = realworld.is_right(item, result)
        for key in ((item.part, item.kind), ("whole", item.kind)):
            right[key] += is_right
            total[key] += 1
        if right_in is not None and is_right:
            right_in[str(item.path)] += 1
        no_digit += result.status == "no digit found"
    return right, total, no_digit


def stability(items: list, right_in: collections.Counter, versions: int) -> dict:
    """Per part and kind: how many images were read right in every version, in none, and the histogram
    (index k: images read right in exactly k of the versions)."""
    figures = {}
    for part in ("measuring", "tuning", "whole"):
        for kind in ("single", "multi"):
            counts = [right_in[str(item.path)] for item in items
                      if item.kind == kind and part in ("whole", item.part)]
            histogram = [counts.count(k) for k in range(versions + 1)]
            figures[f"{part} {kind}"] = {"every": histogram[-1], "none": histogram[0], "of": len(counts),
                                         "histogram": histogram}
    return figures


def summed(reader, items: list, changes: dict = EVERYDAY) -> dict:
    """Whole-set right reads summed over `changes`' versions, and the images read right in all of them."""
    right_in, singles, numbers = collections.Counter(), 0, 0
    for change in changes.values():
        right, _, _ = read_changed(reader, items, change, right_in)
        singles, numbers = singles + right[("whole", "single")], numbers + right[("whole", "multi")]
    stable = stability(items, right_in, len(changes))
    return {"singles": singles, "numbers": numbers, "singles_in_every_version": stable["whole single"]["every"],
            "numbers_in_every_version": stable["whole multi"]["every"]}


def _row(name: str, cells: dict, no_digit: int) -> str:
    shown = [cells[key] for key in ("measuring single", "measuring multi", "whole single", "whole multi")]
    cells = [f"{r:>10}/{t:<4}{100 * r / t:3.0f}%" if i < 2 else f"{r:>6}/{t:<4}{100 * r / t:3.0f}%"
             for i, (r, t) in enumerate(shown)]
    return f"{name:<16} " + " ".join(cells) + f" {no_digit:>9}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=list(SETS), default="harder", dest="change_set",
                        help="harder: worse light, other sizes, turns, blur (default); everyday: changes too "
                             "small to see (JPEG again, scaled by 0.8-1.5, gamma)")
    parser.add_argument("--changes", nargs="+", choices=[*CHANGES, *EVERYDAY],
                        help="only these changes of the set (default: all of them)")
    parser.add_argument("--model", help="a .tflite model (default: the packaged one)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    changes = SETS[args.change_set]
    names = args.changes or list(changes)
    unknown = [name for name in names if name not in changes]
    if unknown:
        parser.error(f"--changes {' '.join(unknown)}: not in --set {args.change_set} "
                     f"(its changes: {', '.join(changes)})")
    sys.path.insert(0, str(ROOT))
    from edge_runtime import reader as reader_module

    reader = reader_module.DigitReader(args.model)
    items = realworld.load("whole")
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "set": args.change_set, "changes": {}}
    print(f"{'change':<16} {'measuring singles':>18} {'measuring numbers':>18} {'whole singles':>14} "
          f"{'whole numbers':>14} {'no digit':>9}")
    right_in = collections.Counter()
    for name in names:
        right, total, no_digit = read_changed(reader, items, changes[name], right_in)
        cells = {f"{part} {kind}": [right[(part, kind)], total[(part, kind)]]
                 for part in ("measuring", "tuning", "whole") for kind in ("single", "multi")}
        figures["changes"][name] = {"right_of": cells, "no_digit_found": no_digit}
        print(_row(name, cells, no_digit), flush=True)
    figures["stability"] = stability(items, right_in, len(names))
    for key in ("whole single", "whole multi", "measuring single", "measuring multi"):
        counts = figures["stability"][key]
        print(f"{key}: right in all {len(names)} versions {counts['every']}/{counts['of']}, in none {counts['none']}, "
              f"histogram {counts['histogram']}")
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
