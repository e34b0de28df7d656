"""Segmentation: finding handwritten digits in photos, scans and tiles, each as an MNIST-style 28x28 image.

Photos and scans go through these stages, at a working resolution of about 320 pixels (the input
halved until it fits, which OpenCV does fast), so that a 640x480 frame costs about 2 ms:

1. `light`: gray, polarity, the paper's brightness and ink contrast relative to it.
2. `mask`: a threshold above the paper's grain, the stroke width, ruled and grid lines erased.
3. `components`: connected pieces of ink; pieces of one digit merged.
4. `filters`: what touches the frame or lies off the paper, specks, dashes, lines, blobs, page
   edges and faint smudges dropped; the most prominent digits kept.
5. `split`: touching digits cut apart.
6. `order`: text lines top to bottom, each left to right.
7. `crop`: each digit's own ink fitted into 20x20 and centred by mass in 28x28, as MNIST was made;
   lines of small digits are segmented again from the input at full resolution first.

Every number these stages decide with is a field of `Tuning` (`PreprocessOptions.tuning`).
`segment_image` also says why each dropped piece was dropped and which pieces were merged or split.
Small gray tiles (MNIST itself) skip all this: see `segment_image`.
"""

from edge_runtime.segment.crop import to_mnist
from edge_runtime.segment.options import PreprocessOptions
from edge_runtime.segment.pipeline import extract_digits, segment_image
from edge_runtime.segment.result import DigitCrop, Dropped, Event, Segmentation
from edge_runtime.segment.tuning import Tuning

__all__ = [
    "DigitCrop",
    "Dropped",
    "Event",
    "PreprocessOptions",
    "Segmentation",
    "Tuning",
    "extract_digits",
    "segment_image",
    "to_mnist",
]
