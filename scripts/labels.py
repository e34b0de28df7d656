"""Printed labels beside handwriting: `Age: 85063`, a form's printed word, then MNIST test digits written after it.

Forms carry printed words beside the fields people write in. The reader has no notion of print: the
digit model's "not a digit" class knows only the letters no handwritten digit resembles, and the line
model never saw a word. This probe measures how often such a label turns into digits. It writes a
label in one of OpenCV's Hershey fonts (printed, 0.45-0.8 of a digit's tile high), a gap of 15-40 px,
then a 2-5 digit number from MNIST's test digits (handwriting no model here trained on), on paper with
sensor noise. A read is right when its digits are the number's: any digit read from the label is wrong.

Usage:
    MNIST_DIR=../shared/mnist python scripts/labels.py                      # 10 numbers per label
    MNIST_DIR=../shared/mnist python scripts/labels.py --per-label 20 --json bench/labels.json
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
import dates  # noqa: E402
import machine  # noqa: E402

LABELS = ("Age:", "Tel:", "Room", "No.", "Total", "Date", "ID:", "Qty", "Page", "Mark", "Name", "Score")
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


def _label(text: str, rng: np.random.Generator) -> np.ndarray:
    """The label printed white on black, `dates.HEIGHT` rows, cut to its ink."""
    font = FONTS[int(rng.integers(len(FONTS)))]
    height = int(rng.uniform(0.45, 0.8) * dates.HEIGHT)
    scale = cv2.getFontScaleFromHeight(font, height, 2)
    (width, _), _ = cv2.getTextSize(text, font, scale, 2)
    tile = np.zeros((dates.HEIGHT, width + 8), np.uint8)
    cv2.putText(tile, text, (2, int(0.15 * dates.HEIGHT) + height), font, scale, 255, 2, cv2.LINE_AA)
    columns = np.flatnonzero(tile.max(axis=0))
    return tile[:, :columns[-1] + 2]


def label_page(images: np.ndarray, labels: np.ndarray, label: str, number: str,
               rng: np.random.Generator) -> np.ndarray:
    """A 640x480 BGR page: the printed label, a gap, then the number in handwriting, in one line."""
    parts = [_label(label, rng), np.zeros((dates.HEIGHT, int(rng.integers(15, 40))), np.uint8)]
    for character in number:
        parts += [dates.digit_tile(images, labels, int(character), rng),
                  np.zeros((dates.HEIGHT, int(rng.integers(4, 14))), np.uint8)]
    strip = np.hstack(parts)[:, :600]
    page = np.full((480, 640), int(rng.integers(200, 240)), np.float32)
    top, left = int(rng.integers(60, 360)), 20
    ink = strip.astype(np.float32) / 255
    region = page[top:top + dates.HEIGHT, left:left + strip.shape[1]]
    page[top:top + dates.HEIGHT, left:left + strip.shape[1]] = region * (1 - ink) + 30 * ink
    page = cv2.GaussianBlur(page, (3, 3), 0.8) + rng.normal(0, 3, page.shape)
    return cv2.cvtColor(np.clip(page, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def read_labelled(reader, images: np.ndarray, labels: np.ndarray, label: str, rng: np.random.Generator,
                  count: int) -> tuple[int, int]:
    """How many of `count` numbers after `label` `reader` reads exactly, and in how many a digit came
    from the label (more digits read than written, the number's own at the end)."""
    right = from_label = 0
    for _ in range(count):
        number = str(rng.integers(10, 100000))
        read = reader.read(label_page(images, labels, label, number, rng)).digits
        digits = "".join(character for character in read if character.isdigit())
        right += digits == number
        from_label += len(digits) > len(number) and digits.endswith(number)
    return right, from_label


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=10, help="numbers per label (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.per_label < 1:
        parser.error(f"--per-label {args.per_label}: must be 1 or more")
    from edge_runtime import reader as reader_module
    from trainer import data

    mnist = data.load_mnist()
    rng = np.random.default_rng(args.seed)
    reader = reader_module.DigitReader()
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "seed": args.seed, "labels": {}}
    for label in LABELS:
        right, from_label = read_labelled(reader, mnist.test_images, mnist.test_labels, label, rng, args.per_label)
        figures["labels"][label] = {"right": right, "label_read_as_digits": from_label, "numbers": args.per_label}
        print(f"{label:<8} {right:>3}/{args.per_label} exact, {from_label:>3} with the label read as digits", flush=True)
    total = sum(value["right"] for value in figures["labels"].values())
    figures["right"], figures["numbers"] = total, args.per_label * len(LABELS)
    print(f"all      {total:>3}/{figures['numbers']} exact")
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
