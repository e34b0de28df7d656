"""Small cut-out cells at several sizes: MNIST test digits written into logbook-like cells, read whole.

The real photos' only cells are one logbook's (Meza, 60 x 34 px, the tuning part), and the reader's
cell rules were chosen on them. This writes cells that nothing was tuned on: 1-4 MNIST test digits
(handwriting no model here trained on) in a cell 40 px high with a grey rule along its top and bottom,
dark ink on light paper, slightly blurred, then scaled by each of `--scales` and saved as a JPEG of
quality 85, as a cell cut from a scanned form at another resolution would be. A read is right when
its digits are the cell's number. The same cell at every scale, so the figures show how much a read
depends on the cell's size.

Usage:
    MNIST_DIR=../shared/mnist python scripts/small_cells.py                       # 100 cells, 3 sizes
    MNIST_DIR=../shared/mnist python scripts/small_cells.py --cells 300 --json bench/small_cells.json
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import machine  # noqa: E402
import robustness  # noqa: E402

CELL_HEIGHT = 40
"""Pixels of a cell before scaling; its digits are 24 px high."""

DIGIT_HEIGHT = 24
DEFAULT_SCALES = (0.8, 1.0, 1.25)


def cell_image(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One cell (uint8 gray, dark on light) holding 1-4 random MNIST digits, and its number."""
    picks = rng.integers(0, len(images), int(rng.integers(1, 5)))
    ink = np.zeros((CELL_HEIGHT, 12 + 22 * len(picks)), np.uint8)
    x = 6
    for index in picks:
        digit = images[index]
        rows, columns = np.nonzero(digit > 30)
        digit = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
        width = max(1, round(digit.shape[1] * DIGIT_HEIGHT / digit.shape[0]))
        digit = cv2.resize(digit, (width, DIGIT_HEIGHT), interpolation=cv2.INTER_AREA)[:, :max(0, ink.shape[1] - x)]
        top = 8 + int(rng.integers(-2, 3))
        region = ink[top:top + DIGIT_HEIGHT, x:x + digit.shape[1]]
        np.maximum(region, digit, out=region)
        x += digit.shape[1] + int(rng.integers(-1, 5))  # some touch, some stand apart
    page = (225 - ink.astype(np.float32) * 0.7).clip(0, 255).astype(np.uint8)
    page[:2], page[-2:] = 120, 120  # the cell's rules
    return cv2.GaussianBlur(page, (3, 3), 0.6), "".join(str(int(labels[index])) for index in picks)


def scaled_jpeg(cell: np.ndarray, scale: float) -> np.ndarray:
    """The cell at `scale` times its size, saved as a JPEG of quality 85 and decoded (BGR): the real
    photos' everyday changes (`robustness.scaled`, `robustness.jpeg_again`), one after the other."""
    resized = robustness.scaled(scale, cv2.INTER_CUBIC)(cv2.cvtColor(cell, cv2.COLOR_GRAY2BGR))
    return robustness.jpeg_again(85)(resized)


def read_cells(reader, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, count: int,
               scales: tuple[float, ...]) -> dict[float, int]:
    """How many of `count` cells `reader` reads exactly at each scale."""
    right = {scale: 0 for scale in scales}
    for _ in range(count):
        cell, number = cell_image(images, labels, rng)
        for scale in scales:
            read = reader.read(scaled_jpeg(cell, scale)).digits
            right[scale] += "".join(character for character in read if character.isdigit()) == number
    return right


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100, help="cells, each read at every scale (default 100)")
    parser.add_argument("--scales", type=float, nargs="+", default=list(DEFAULT_SCALES),
                        help="sizes relative to a 40-px cell (default 0.8 1.0 1.25)")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.cells < 1:
        parser.error(f"--cells {args.cells}: must be 1 or more")
    if any(not 0.25 <= scale <= 4 for scale in args.scales):
        parser.error(f"--scales {args.scales}: each must be between 0.25 and 4")
    from edge_runtime import reader as reader_module
    from trainer import data

    mnist = data.load_mnist()
    started = time.perf_counter()
    right = read_cells(reader_module.DigitReader(), mnist.test_images, mnist.test_labels,
                       np.random.default_rng(args.seed), args.cells, tuple(args.scales))
    for scale, count in right.items():
        print(f"cells at {scale:g} x ({round(CELL_HEIGHT * scale)} px high): {count:>4}/{args.cells} exact")
    print(f"all: {sum(right.values())}/{args.cells * len(right)}")
    if args.json:
        machine.write_result(args.json, {
            "cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "seed": args.seed, "cells": args.cells,
            "scales": {f"{scale:g}": {"right": count, "cells": args.cells} for scale, count in right.items()},
            "seconds": round(time.perf_counter() - started, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
