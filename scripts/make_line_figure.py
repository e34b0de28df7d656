"""Draws docs/line_reader.png: a synthetic line, the strip the line model sees, its column predictions, the number.

Usage: MNIST_DIR=../shared/mnist .venv/bin/python scripts/make_line_figure.py [--model FILE] [--seed N] [--out FILE]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from edge_runtime import files, line_reader  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=line_reader.DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--digits", type=int, default=7)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "line_reader.png")
    arguments = parser.parse_args()

    from trainer import data, lines

    mnist = data.load_mnist()
    options = lines.LineOptions(touch_probability=0.5, noise_probability=0.0)
    rng = np.random.default_rng(arguments.seed)
    line = lines.make_batch(lines.DigitPool(mnist.test_images, mnist.test_labels), 1, rng, options,
                            lengths=np.array([arguments.digits]), keep_canvases=True)
    canvas, truth = line.canvases[0], line.texts[0]
    recognizer = line_reader.LineRecognizer(arguments.model)
    reading = recognizer.read_line(canvas)

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(8, 6.2), gridspec_kw={"height_ratios": [1.3, 1, 1.4]})
    top.imshow(canvas, cmap="gray")
    for digit, (x0, x1), confidence in zip(reading.digits, reading.x_ranges, reading.confidences):
        top.add_patch(plt.Rectangle((x0 - 0.5, 0), x1 - x0, canvas.shape[0] - 1, fill=False, color="tab:orange"))
        top.text((x0 + x1) / 2, -1.5, f"{digit} {confidence:.0%}", ha="center", va="bottom", color="tab:orange",
                 fontsize=9)
    top.set_title(f"1. one line of ink (true {truth}); boxes: x ranges from the CTC alignment", fontsize=9, pad=16)
    top.axis("off")
    strip = reading.strip.pixels
    middle.imshow(strip, cmap="gray", aspect="equal")
    for first, last in reading.columns:
        for column in range(first, last):
            middle.axvspan(column * line_reader.COLUMN_STRIDE - 0.5, (column + 1) * line_reader.COLUMN_STRIDE - 0.5,
                           color="tab:orange", alpha=0.35)
    middle.set_title(f"2. the {strip.shape[0]}x{strip.shape[1]} strip the model reads; shaded: the columns that "
                     f"emitted a digit", fontsize=9)
    middle.set_yticks([])
    probabilities = reading.probabilities.T
    bottom.imshow(probabilities, cmap="viridis", aspect="auto", vmin=0, vmax=1, interpolation="nearest")
    bottom.set_yticks(range(line_reader.NUM_CLASSES), [*line_reader.LINE_LABELS[:-1], "blank"], fontsize=7)
    bottom.set_xlabel(f"output column ({line_reader.COLUMN_STRIDE} strip pixels each)", fontsize=8)
    bottom.set_title(f"3. per-column probabilities (10 digits + blank); greedy CTC: best class per column,\n"
                     f"repeats merged, blanks dropped: reads {reading.digits}, line confidence "
                     f"{reading.confidence:.0%} (least sure column)", fontsize=9)
    figure.tight_layout()
    with files.atomic_path(arguments.out) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    print(f"{arguments.out}: true {truth}, read {reading.digits}, confidence {reading.confidence:.3f}")


if __name__ == "__main__":
    main()
