"""How well the digit CNN reads the line test set's digits when it is told where each one is.

The line test set (`trainer.lines_train.line_test_set`: 2,000 lines of 1-12 MNIST test digits) is read
by the line model at about 91% of lines; issue 9 asks for 97%. This script asks how much of that gap
is the set's own digits: it draws the very same lines (`trainer.lines.fixed_line_parts`) and gives the
digit model (default: the packaged one, read through `edge_runtime`) each digit

- **cut**: the line's columns under the digit's own tile, as a segmentation that knew the true
  boundaries would cut them: neighbours that touch or overlap, and noise pieces, reach in;
- **alone**: the digit's tile as the line drew it (scaled, stretched, slanted), with nothing beside
  it: an upper bound for any reader that must read these shapes.

Each crop is made MNIST-like (`segment.crop.to_mnist`) and read as its most likely digit (the "not a
digit" class ignored: the place is known to hold one). A line is right when all its digits are.

    MNIST_DIR=../shared/mnist python scripts/line_ceiling.py --json bench/line_ceiling.json
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
import machine  # noqa: E402


def read_digits(classifier, crops: list[np.ndarray]) -> str:
    """The digit model's most likely digit (of the ten) for each 28 x 28 crop."""
    probabilities = classifier.classify(np.stack(crops))
    digits = [label for label in classifier.description.labels if label.isdigit()]
    columns = [classifier.description.labels.index(label) for label in digits]
    return "".join(digits[int(row[columns].argmax())] for row in probabilities)


def measure(parts, texts, classifier) -> dict:
    """Sequence and digit accuracy of the digit model on each way of cutting the lines."""
    from edge_runtime.segment import crop as segment_crop

    figures = {}
    for way in ("cut", "alone"):
        right_lines = right_digits = total_digits = 0
        by_length: dict[int, list[int]] = {}
        for part, text in zip(parts, texts):
            if way == "cut":
                crops = [segment_crop.to_mnist(part.canvas[:, x:x + width]) for x, width in part.digit_spans]
            else:
                crops = [segment_crop.to_mnist(tile) for tile in part.digit_tiles]
            read = read_digits(classifier, crops)
            right_lines += read == text
            right_digits += sum(a == b for a, b in zip(read, text))
            total_digits += len(text)
            by_length.setdefault(len(text), [0, 0])
            by_length[len(text)][0] += read == text
            by_length[len(text)][1] += 1
        figures[way] = {
            "sequence_accuracy": round(right_lines / len(texts), 4),
            "digit_accuracy": round(right_digits / total_digits, 5),
            "sequence_accuracy_by_digits": {str(length): round(right / total, 3)
                                            for length, (right, total) in sorted(by_length.items())},
        }
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a digit .tflite model (default: the packaged one)")
    parser.add_argument("--data", help="the MNIST folder (default: $MNIST_DIR, or a download)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    from edge_runtime import reader as reader_module
    from trainer import data, lines, lines_train

    started = time.perf_counter()
    mnist = data.load_mnist(args.data)
    parts, texts = lines.fixed_line_parts(mnist.test_images, mnist.test_labels, lines_train.TEST_LINES,
                                          lines_train.TEST_SEED)
    reader = reader_module.DigitReader(args.model)
    report = {
        "cpu": machine.cpu_name(),
        "date": time.strftime("%Y-%m-%d"),
        "lines": len(texts),
        "digits": sum(len(text) for text in texts),
        "digit_model": reader.model_path.name,
        **measure(parts, texts, reader.classifier),
        "seconds": round(time.perf_counter() - started, 1),
    }
    for way in ("cut", "alone"):
        print(f"{way:6s} lines {report[way]['sequence_accuracy']:.2%}  digits {report[way]['digit_accuracy']:.2%}")
    if args.json:
        machine.write_result(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
