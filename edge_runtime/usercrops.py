"""Labelled images to labelled 28x28 crops: crops as they are, whole images segmented exactly as `digit-infer` does.

Fine-tuning and the real-photo loop train on single digits. A 28x28 image of a labelled folder is
already the model's input; any other image is segmented by `edge_runtime.preprocess` (the reader's
own code path, no model needed) and used only when it can be labelled without guessing: a single-digit
image where exactly one digit is found, or a number where the count of digits found equals the
label's length (the crops then take the label's digits in reading order).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from edge_runtime import constants, imageio, labelled, preprocess


@dataclasses.dataclass(frozen=True)
class LabelledCrops:
    """Crops with labels, ready to train or evaluate on.

    Attributes:
        images: uint8 (N, 28, 28), white digit on black.
        labels: The label of each crop ("0"-"9", or a model's other class names).
        sources: The file each crop came from.
        warnings: Files skipped, and why.
    """

    images: np.ndarray
    labels: tuple[str, ...]
    sources: tuple[str, ...]
    warnings: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def crops_of(image: np.ndarray, label: str, options: preprocess.PreprocessOptions) -> list[np.ndarray] | None:
    """The 28x28 crops of a whole image when they can be labelled unambiguously, else None."""
    found = preprocess.extract_digits(image, options)
    if len(found) != len(labelled.digits_of(label)):
        return None
    return [_to_uint8(crop.image) for crop in found]


def _to_uint8(crop: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(crop * 255.0), 0, 255).astype(np.uint8)


def from_set(dataset: labelled.LabelledSet, polarity: str = constants.INK_AUTO) -> LabelledCrops:
    """Every usable crop of a labelled set; unreadable or ambiguous files are skipped with a warning."""
    options = preprocess.PreprocessOptions(polarity=polarity)
    images, labels, sources, warnings = [], [], [], list(dataset.warnings)
    for item in dataset.items:
        path = os.fspath(item.path)
        try:
            crop = labelled.read_crop(path) if item.single else None
            if crop is not None:
                images.append(crop)
                labels.append(item.digits)
                sources.append(path)
                continue
            found = crops_of(imageio.load_image(path), item.label, options)
        except (ValueError, OSError) as error:
            warnings.append(f"{path}: {error}; skipped")
            continue
        if found is None:
            warnings.append(f"{path}: the number of digits found differs from the label {item.label!r}; skipped")
            continue
        images += found
        labels += list(item.classes)
        sources += [path] * len(found)
    stacked = np.stack(images) if images else np.zeros((0, constants.IMAGE_SIZE, constants.IMAGE_SIZE), np.uint8)
    return LabelledCrops(stacked, tuple(labels), tuple(sources), tuple(warnings))


def load(source: str | os.PathLike, valid_labels: tuple[str, ...] = constants.LABELS,
         polarity: str = constants.INK_AUTO) -> LabelledCrops:
    """Loads a labelled folder or CSV as crops.

    Raises:
        FileNotFoundError: `source` does not exist.
        ValueError: Nothing usable in `source`.
    """
    crops = from_set(labelled.load(source, valid_labels), polarity)
    if not len(crops):
        raise ValueError(f"{source}: no usable crop (every file was skipped; first reason: "
                         f"{crops.warnings[0] if crops.warnings else 'none'})")
    return crops
