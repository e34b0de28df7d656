"""Phone-size photos: 5-digit numbers of MNIST test digits, a few millimetres high, on a 12-megapixel page.

A phone photographs a whole form at 4032x3024 pixels, where handwriting 3-6 mm high is 30-70 pixels
high. The reader works on a copy a few hundred pixels wide, where such digits are a few pixels high.
This writes one number per page at several digit sizes, saves each page as a JPEG (quality 90) and
reads it from the file as `digit-infer` does, timing each read (decoding included).

Usage:
    MNIST_DIR=../shared/mnist python scripts/large_photos.py                   # 8 pages per size
    MNIST_DIR=../shared/mnist python scripts/large_photos.py --per-size 20 --json bench/large_photos.json
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import dates  # noqa: E402
import machine  # noqa: E402

SIZES = ((48, 4032), (64, 4032), (80, 4032), (96, 4032), (48, 2016))
"""(digit tile height in pixels, page width): MNIST digits fill about 0.7 of their tile."""


def large_page(images: np.ndarray, labels: np.ndarray, number: str, tile: int, width: int,
               rng: np.random.Generator) -> np.ndarray:
    """A width x 3/4 width BGR page with `number` written somewhere on it in tiles `tile` pixels high."""
    saved, dates.HEIGHT = dates.HEIGHT, tile
    try:
        patch = dates.number_page(images, labels, [number], "-", rng)
    finally:
        dates.HEIGHT = saved
    height = width * 3 // 4
    page = np.full((height, width, 3), int(patch[5, 5, 0]), np.float32) + rng.normal(0, 3, (height, width, 3))
    page = np.clip(page, 0, 255).astype(np.uint8)
    top, left = int(rng.integers(0, height - patch.shape[0])), int(rng.integers(0, width - patch.shape[1]))
    page[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return page


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-size", type=int, default=8, help="pages per digit size (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.per_size < 1:
        parser.error(f"--per-size {args.per_size}: must be 1 or more")
    from edge_runtime import reader as reader_module
    from trainer import data

    mnist = data.load_mnist()
    rng = np.random.default_rng(args.seed)
    reader = reader_module.DigitReader()
    figures = {"cpu": machine.cpu_name(), "date": time.strftime("%Y-%m-%d"), "seed": args.seed, "sizes": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for tile, width in SIZES:
            right, seconds = 0, []
            for index in range(args.per_size):
                number = f"{rng.integers(0, 100000):05d}"
                path = pathlib.Path(scratch) / f"page {tile} {width} {index}.jpg"
                cv2.imwrite(str(path), large_page(mnist.test_images, mnist.test_labels, number, tile, width, rng),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
                started = time.perf_counter()
                read = reader.read(path).digits
                seconds.append(time.perf_counter() - started)
                right += read == number
            name = f"digits ~{round(0.7 * tile)} px on a {width}x{width * 3 // 4} JPEG"
            figures["sizes"][name] = {"right": right, "pages": args.per_size,
                                      "median_ms": round(1000 * statistics.median(seconds), 1)}
            print(f"{name:<40} {right:>3}/{args.per_size} exact, median {1000 * statistics.median(seconds):.0f} ms "
                  f"a page (decoding included)", flush=True)
    if args.json:
        machine.write_result(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
