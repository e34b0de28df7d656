"""Digits in a form's boxes: MNIST test digits written one per box, in a comb or in boxes apart, on a page.

Forms ask for one digit per box. The box lines are not writing: a comb's separators read as 1s and a
box around a digit reads as no digit, unless they are taken out (`edge_runtime/segment/boxes.py`).
This draws such forms from MNIST's test digits (handwriting no model here trained on), with box lines
1-3 px thick, on paper of varied grey with sensor noise, and reads them with the packaged reader.

Usage:
    MNIST_DIR=../shared/mnist python scripts/forms.py                      # 15 forms per layout
    MNIST_DIR=../shared/mnist python scripts/forms.py --per-layout 50 --json bench/forms.json
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

LAYOUTS = tuple((gap, thickness) for gap in (0, 8) for thickness in (1, 2, 3))
"""(gap between boxes in px, box line thickness in px): gap 0 is a comb."""


def form_page(digit_images: list[np.ndarray], rng: np.random.Generator, gap: int, thickness: int,
              box: int = 56, fill: float = 0.7) -> np.ndarray:
    """A 640x480 BGR page with one box per digit image (28x28 MNIST, white on black) written in it."""
    page = np.full((480, 640, 3), int(rng.integers(200, 245)), np.float32)
    page = np.clip(page + rng.normal(0, 3, page.shape), 0, 255).astype(np.uint8)
    count = len(digit_images)
    left = int(rng.integers(20, max(21, 640 - count * (box + gap) - 20)))
    top = int(rng.integers(60, 360))
    line_colour = tuple(int(value) for value in rng.integers(30, 110, 3))
    size = int(box * fill)
    for index, tile in enumerate(digit_images):
        x = left + index * (box + gap)
        cv2.rectangle(page, (x, top), (x + box, top + box), line_colour, thickness)
        ink = cv2.resize(tile, (size, size)).astype(np.float32)[..., None] / 255
        ox = x + (box - size) // 2 + int(rng.integers(-3, 4))
        oy = top + (box - size) // 2 + int(rng.integers(-3, 4))
        region = page[oy:oy + size, ox:ox + size].astype(np.float32)
        page[oy:oy + size, ox:ox + size] = (region * (1 - ink) + 30 * ink).astype(np.uint8)
    return cv2.GaussianBlur(page, (3, 3), 0.6)


def read_forms(reader, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, gap: int,
               thickness: int, count: int) -> int:
    """How many of `count` forms of 3-7 digits (drawn from `images`/`labels`) `reader` reads exactly."""
    right = 0
    for _ in range(count):
        wanted = rng.integers(0, 10, int(rng.integers(3, 8)))
        tiles = [images[rng.choice(np.flatnonzero(labels == label))] for label in wanted]
        read = reader.read(form_page(tiles, rng, gap, thickness)).digits
        right += "".join(character for character in read if character.isdigit()) == "".join(map(str, wanted))
    return right


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-layout", type=int, default=15, help="forms per layout (default 15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.per_layout < 1:
        parser.error(f"--per-layout {args.per_layout}: must be 1 or more")
    from edge_runtime import reader as reader_module
    from trainer import data

    mnist = data.load_mnist()
    rng = np.random.default_rng(args.seed)
    reader = reader_module.DigitReader()
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "seed": args.seed, "layouts": {}}
    for gap, thickness in LAYOUTS:
        right = read_forms(reader, mnist.test_images, mnist.test_labels, rng, gap, thickness, args.per_layout)
        name = f"{'comb' if gap == 0 else 'boxes apart'}, lines {thickness} px"
        figures["layouts"][name] = {"right": right, "forms": args.per_layout}
        print(f"{name:<26} {right:>4}/{args.per_layout} exact", flush=True)
    total = sum(layout["right"] for layout in figures["layouts"].values())
    figures["right"], figures["forms"] = total, args.per_layout * len(LAYOUTS)
    print(f"all layouts: {total}/{figures['forms']} forms read exactly")
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
