"""Compatibility shim: the segmentation API now lives in `edge_runtime.segment`, re-exported here."""

from edge_runtime.segment import DigitCrop, PreprocessOptions, extract_digits, segment_image, to_mnist
from edge_runtime.segment.tuning import Tuning

TILE_MAX_SIDE = Tuning().tile_max_side
"""Gray images no larger than this (and roughly square) hold one digit and take the fast tile path."""

__all__ = ["DigitCrop", "PreprocessOptions", "extract_digits", "segment_image", "to_mnist"]
