"""Dates and IDs with separators: MNIST test digits written as `24/08/1990`, `565-6806` or `12.50` on a page.

A slash is a straight stroke, and on its own crop it reads as a 1 (`24/08/1990` read `2410811990`
before `edge_runtime/separators.py`). This writes such numbers from MNIST's test digits (handwriting
no model here trained on) with separators drawn in the same pen: slashes 1.1-1.4 times as tall as the
digits, leaning 0.35-0.7 and reaching above and below them, dashes, and dots. A read is right when its
digits are the number's; group and line separators in the output are not compared.

Usage:
    MNIST_DIR=../shared/mnist python scripts/dates.py                      # 30 numbers per separator
    MNIST_DIR=../shared/mnist python scripts/dates.py --per-kind 100 --json bench/dates.json
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

HEIGHT = 64
"""Pixels of a digit's tile on the page (the digit itself is about 0.7 of it, as in MNIST)."""


def groups_for(kind: str, rng: np.random.Generator) -> list[str]:
    """A number's groups: a date for "/", a phone number for "-", an amount for "."."""
    if kind == "/":
        return [f"{rng.integers(1, 29):02d}", f"{rng.integers(1, 13):02d}", f"{rng.integers(1950, 2030):04d}"]
    if kind == "-":
        return [f"{rng.integers(0, 1000):03d}", f"{rng.integers(0, 10000):04d}"]
    return [f"{rng.integers(1, 100)}", f"{rng.integers(0, 100):02d}"]


def digit_tile(images: np.ndarray, labels: np.ndarray, digit: int, rng: np.random.Generator) -> np.ndarray:
    """A random MNIST image of `digit`, HEIGHT rows, cut to its ink with a 2-pixel margin (white on black)."""
    tile = cv2.resize(images[rng.choice(np.flatnonzero(labels == digit))], (HEIGHT, HEIGHT))
    columns = np.flatnonzero(tile.max(axis=0) > 30)
    return tile[:, max(0, columns[0] - 2):columns[-1] + 3]


def _separator(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A separator drawn with a stroke about as thick as the digits' (white on black, HEIGHT rows)."""
    thickness = int(rng.integers(4, 7))
    if kind == "/":
        tall = int(rng.uniform(1.1, 1.4) * 0.72 * HEIGHT)
        wide = int(rng.uniform(0.35, 0.7) * tall)
        tile = np.zeros((HEIGHT, wide + 2 * thickness), np.uint8)
        top = int(0.14 * HEIGHT - (tall - 0.72 * HEIGHT) / 2)
        cv2.line(tile, (thickness, min(HEIGHT - 1, top + tall)), (wide + thickness, max(0, top)), 255, thickness,
                 cv2.LINE_AA)
    elif kind == "-":
        length = int(0.4 * HEIGHT)
        tile = np.zeros((HEIGHT, length), np.uint8)
        cv2.line(tile, (thickness, HEIGHT // 2), (length - thickness, HEIGHT // 2 + int(rng.integers(-2, 3))), 255,
                 thickness, cv2.LINE_AA)
    else:
        tile = np.zeros((HEIGHT, 3 * thickness), np.uint8)
        cv2.circle(tile, (int(1.5 * thickness), int(0.82 * HEIGHT)), thickness // 2 + 1, 255, -1, cv2.LINE_AA)
    return tile


def number_page(images: np.ndarray, labels: np.ndarray, groups: list[str], kind: str,
                rng: np.random.Generator) -> np.ndarray:
    """A 640x480 BGR page with the groups written in one line, the separator between them."""
    def blank(low: int, high: int) -> np.ndarray:
        return np.zeros((HEIGHT, int(rng.integers(low, high))), np.uint8)

    parts = []
    for index, group in enumerate(groups):
        if index:
            parts += [blank(4, 14), _separator(kind, rng), blank(6, 16)]
        for character in group:
            parts += [digit_tile(images, labels, int(character), rng), blank(4, 14)]
    strip = np.hstack(parts)[:, :600]
    paper = int(rng.integers(200, 240))
    page = np.full((480, 640), paper, np.float32)
    top, left = int(rng.integers(60, 360)), (640 - strip.shape[1]) // 2
    ink = strip.astype(np.float32) / 255
    region = page[top:top + HEIGHT, left:left + strip.shape[1]]
    page[top:top + HEIGHT, left:left + strip.shape[1]] = region * (1 - ink) + 30 * ink
    page = cv2.GaussianBlur(page, (3, 3), 0.8) + rng.normal(0, 3, page.shape)
    return cv2.cvtColor(np.clip(page, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def read_numbers(reader, images: np.ndarray, labels: np.ndarray, kind: str, rng: np.random.Generator,
                 count: int) -> int:
    """How many of `count` numbers with separator `kind` `reader` reads exactly (digits only)."""
    right = 0
    for _ in range(count):
        groups = groups_for(kind, rng)
        read = reader.read(number_page(images, labels, groups, kind, rng)).digits
        right += "".join(character for character in read if character.isdigit()) == "".join(groups)
    return right


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=30, help="numbers per separator (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.per_kind < 1:
        parser.error(f"--per-kind {args.per_kind}: must be 1 or more")
    from edge_runtime import reader as reader_module
    from trainer import data

    mnist = data.load_mnist()
    rng = np.random.default_rng(args.seed)
    reader = reader_module.DigitReader()
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "seed": args.seed, "kinds": {}}
    for kind, name in (("/", "dates, slashes"), ("-", "phone numbers, dashes"), (".", "amounts, dots")):
        right = read_numbers(reader, mnist.test_images, mnist.test_labels, kind, rng, args.per_kind)
        figures["kinds"][name] = {"right": right, "numbers": args.per_kind}
        print(f"{name:<24} {right:>4}/{args.per_kind} exact", flush=True)
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
