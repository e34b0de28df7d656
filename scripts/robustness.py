"""The real photos made harder: each of `../shared/realworld` read again in worse light, at another scale or turned a little.

Real photos in the wild are dimmer, more shaded and sharper or blurrier than any set of 209. Reading
the same photos through a few plain changes shows which kinds of change the reader withstands
(a gain that fits only the photos as they are shows up here as a loss). The changes are fixed, so
runs compare. Like `realworld.py`, nothing is copied: the photos are read where they lie.

Usage:
    python scripts/robustness.py                       # every change, both parts, singles and numbers
    python scripts/robustness.py --changes shaded washed-out --json bench/robustness.json
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


def _scaled(factor: float):
    def change(image: np.ndarray) -> np.ndarray:
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
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


def _jpeg(image: np.ndarray) -> np.ndarray:
    """Saved again as a JPEG of quality 25, as messaging apps do."""
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 25])[1], cv2.IMREAD_COLOR)


CHANGES = {
    "as-is": lambda image: image,
    "shaded": _shaded,
    "washed-out": _washed_out(0.6),
    "very-washed-out": _washed_out(0.4),
    "half-size": _scaled(0.5),
    "double-size": _scaled(2.0),
    "turned+8": _turned(8.0),
    "turned-8": _turned(-8.0),
    "blurred": _blurred,
    "jpeg-25": _jpeg,
}


def read_changed(reader, items: list, change) -> tuple[collections.Counter, collections.Counter, int]:
    """Right reads per (part, kind), totals per (part, kind), and 'no digit found' count."""
    right, total, no_digit = collections.Counter(), collections.Counter(), 0
    for item in items:
        image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{item.path}: cannot be read as an image")
        result = reader.read(change(image), source=str(item.path))
        for key in ((item.part, item.kind), ("whole", item.kind)):
            right[key] += realworld.is_right(item, result)
            total[key] += 1
        no_digit += result.status == "no digit found"
    return right, total, no_digit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", nargs="+", choices=list(CHANGES), default=list(CHANGES))
    parser.add_argument("--model", help="a .tflite model (default: the packaged one)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from edge_runtime import reader as reader_module

    reader = reader_module.DigitReader(args.model)
    items = realworld.load("whole")
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "changes": {}}
    print(f"{'change':<16} {'measuring singles':>18} {'measuring numbers':>18} {'whole singles':>14} "
          f"{'whole numbers':>14} {'no digit':>9}")
    for name in args.changes:
        right, total, no_digit = read_changed(reader, items, CHANGES[name])
        cells = {f"{part} {kind}": [right[(part, kind)], total[(part, kind)]]
                 for part in ("measuring", "tuning", "whole") for kind in ("single", "multi")}
        figures["changes"][name] = {"right_of": cells, "no_digit_found": no_digit}
        shown = [cells[key] for key in ("measuring single", "measuring multi", "whole single", "whole multi")]
        print(f"{name:<16} " + " ".join(f"{r:>10}/{t:<4}{100 * r / t:3.0f}%" if i < 2 else f"{r:>6}/{t:<4}{100 * r / t:3.0f}%"
                                        for i, (r, t) in enumerate(shown)) + f" {no_digit:>9}", flush=True)
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
