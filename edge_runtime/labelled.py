"""Labelled folders, the one format every digitkit tool reads and writes: `<folder>/<label>/*.png` and `labels.csv`.

Two layouts, which may be mixed in one folder:

* `<folder>/<label>/<name>.png`: one digit per image; the subfolder's name is the label.
* `<folder>/labels.csv` with columns `path,label` (more columns are allowed and ignored): any image,
  e.g. the crops under `<folder>/crops/` that `digit-infer --save-crops` writes, or whole photos,
  single or multi-digit; `path` is relative to the CSV's folder (or absolute); `label` is the digits
  as `digit-infer` prints them, which may hold spaces and ` / ` between lines ("12 / 34").

Loading validates everything and never crashes on a bad entry: an unknown label, a missing file, a
duplicate or an empty label each become a warning naming the file (and the CSV row), and the entry
is skipped. Only a source with nothing usable at all is an error. Standard library, numpy and
OpenCV only, so the edge install can read and write these folders.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import pathlib

import cv2
import numpy as np

from edge_runtime import constants, files

LABELS_CSV = "labels.csv"
CROPS_FOLDER = "crops"
"""Where collected crops go inside a labelled folder; `labels.csv` lists them, so it is not a label folder."""
CSV_COLUMNS = ("path", "label")
_LINE_SEPARATOR = "/"


@dataclasses.dataclass(frozen=True)
class LabelledImage:
    """One labelled image.

    Attributes:
        path: The image file.
        label: The label as written ("7", "2024", "12 / 34").
        origin: Where the label came from: "<folder>/<label>/" or "labels.csv row N", for messages.
    """

    path: pathlib.Path
    label: str
    origin: str = ""
    classes: tuple[str, ...] = ()

    @property
    def digits(self) -> str:
        """The label without spaces and line separators: what `ReadResult.digits` holds for this image."""
        return "".join(self.classes) if self.classes else digits_of(self.label)

    @property
    def single(self) -> bool:
        """One class: a digit, or a model's whole class name such as "not a digit"."""
        return len(self.classes) == 1 if self.classes else len(self.digits) == 1


@dataclasses.dataclass(frozen=True)
class LabelledSet:
    """What was loaded from a labelled folder or CSV.

    Attributes:
        items: The valid entries, in a stable order (folder entries by label and name, then CSV rows).
        warnings: One message per skipped entry, naming the file.
        source: The folder or CSV that was loaded.
    """

    items: tuple[LabelledImage, ...]
    warnings: tuple[str, ...]
    source: pathlib.Path

    @property
    def labels(self) -> list[str]:
        return [item.digits for item in self.items]


def digits_of(label: str) -> str:
    """"12 / 34" -> "1234": a label as `digit-infer` prints it, reduced to its characters."""
    return "".join(label.replace(_LINE_SEPARATOR, " ").split())


def classes_of(label: str, valid: tuple[str, ...] = constants.LABELS) -> tuple[str, ...]:
    """The classes a label names, in reading order: a whole class name ("not a digit") or one per character."""
    stripped = label.strip()
    return (stripped,) if stripped in valid else tuple(digits_of(label))


def load(source: str | os.PathLike, valid_labels: tuple[str, ...] = constants.LABELS) -> LabelledSet:
    """Loads and validates a labelled folder or a `labels.csv`.

    Args:
        source: A folder (its `<label>/` subfolders and its `labels.csv`, if any) or a CSV file.
        valid_labels: The labels a model can output (its `description.labels`); every character of a
            label must be one of them.

    Returns:
        The valid entries and a warning for each skipped one.

    Raises:
        FileNotFoundError: `source` does not exist.
        ValueError: `source` holds no usable entry (empty folder, a CSV without `path,label` columns,
            every entry invalid); the message says what was found and the expected layout.
    """
    source_path = pathlib.Path(source)
    if not source_path.exists():
        raise FileNotFoundError(f"{source_path}: no such folder or file; expected a labelled folder "
                                f"(<folder>/<label>/*.png and/or {LABELS_CSV}) or a CSV with columns path,label")
    valid = tuple(str(label) for label in valid_labels)
    candidates: list[LabelledImage] = []
    warnings: list[str] = []
    if source_path.is_dir():
        csv_path = source_path / LABELS_CSV
        listed = _csv_entries(csv_path, warnings) if csv_path.is_file() else []
        # Subfolders that labels.csv lists files in (crops/, drawings/) hold images, not a label.
        listed_folders = {os.path.normcase(os.path.abspath(item.path.parent)) for item in listed}
        candidates += _folder_entries(source_path, valid, warnings, listed_folders) + listed
    else:
        candidates += _csv_entries(source_path, warnings, strict=True)
    items = _validated(candidates, valid, warnings)
    if not items:
        found = f"; skipped: {len(warnings)} entries (first: {warnings[0]})" if warnings else ""
        raise ValueError(f"{source_path}: no labelled images found{found}. Expected <folder>/<label>/*.png "
                         f"with labels {_describe_labels(valid)}, or {LABELS_CSV} with columns path,label")
    return LabelledSet(tuple(items), tuple(warnings), source_path)


def _describe_labels(valid: tuple[str, ...]) -> str:
    return "0-9" if valid == constants.LABELS else ", ".join(repr(label) for label in valid)


def _folder_entries(folder: pathlib.Path, valid: tuple[str, ...], warnings: list[str],
                    listed_folders: set[str] = frozenset()) -> list[LabelledImage]:
    entries = []
    with os.scandir(folder) as scan:
        subfolders = sorted((entry for entry in scan if entry.is_dir()), key=lambda entry: entry.name)
    for subfolder in subfolders:
        images = sorted(name for name in os.listdir(subfolder.path)
                        if os.path.splitext(name)[1].lower() in constants.IMAGE_SUFFIXES)
        if subfolder.name not in valid:
            # crops/ holds the images that labels.csv lists (digit-infer --save-crops writes them there).
            listed = os.path.normcase(os.path.abspath(subfolder.path)) in listed_folders
            if images and not listed and subfolder.name != CROPS_FOLDER and not subfolder.name.startswith("."):
                warnings.append(f"{subfolder.path}/: unknown label {subfolder.name!r} (valid: "
                                f"{_describe_labels(valid)}); its {len(images)} images are skipped")
            continue
        entries += [LabelledImage(pathlib.Path(subfolder.path, name), subfolder.name, f"{subfolder.name}/")
                    for name in images]
    return entries


def _csv_entries(csv_path: pathlib.Path, warnings: list[str], strict: bool = False) -> list[LabelledImage]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        message = f"{csv_path}: cannot read the labels CSV ({error})"
        if strict:
            raise ValueError(message) from error
        warnings.append(message)
        return []
    reader = csv.DictReader(io.StringIO(text))
    columns = [name.strip() for name in reader.fieldnames or ()]
    if not set(CSV_COLUMNS) <= set(columns):
        message = (f"{csv_path}: the header is {columns or 'missing'}; a labels CSV needs the columns "
                   f"{','.join(CSV_COLUMNS)}")
        if strict:
            raise ValueError(message)
        warnings.append(message)
        return []
    reader.fieldnames = columns
    entries = []
    for number, row in enumerate(reader, start=2):
        where = f"{csv_path} row {number}"
        path_text, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not path_text:
            warnings.append(f"{where}: empty path; row skipped")
            continue
        path = pathlib.Path(path_text)
        entries.append(LabelledImage(path if path.is_absolute() else csv_path.parent / path, label, where))
    return entries


def _validated(candidates: list[LabelledImage], valid: tuple[str, ...], warnings: list[str]) -> list[LabelledImage]:
    """Drops entries with an empty or unknown label, a missing file, or a duplicate path."""
    kept: dict[str, LabelledImage] = {}
    conflicted: set[str] = set()
    for item in candidates:
        name = f"{item.origin} ({item.path})" if " row " in item.origin else str(item.path)
        if not item.digits:
            warnings.append(f"{name}: no label yet (write the digits in the label column); skipped")
            continue
        item = dataclasses.replace(item, classes=classes_of(item.label, valid))
        unknown = sorted({character for character in item.classes if character not in valid})
        if unknown:
            warnings.append(f"{name}: label {item.label!r} holds {', '.join(map(repr, unknown))}, not a valid label "
                            f"(valid: {_describe_labels(valid)}); skipped")
            continue
        text = os.fspath(item.path)
        if not os.path.isfile(text):
            warnings.append(f"{name}: image file not found; skipped")
            continue
        key = os.path.normcase(os.path.abspath(text))  # realpath would cost a system call per path part
        if key in conflicted:
            warnings.append(f"{name}: listed again; skipped")
        elif key in kept:
            first = kept[key]
            if first.digits == item.digits:
                warnings.append(f"{name}: duplicate of {first.origin or first.path}; the first is kept")
            else:
                del kept[key]
                conflicted.add(key)
                warnings.append(f"{name}: duplicate of {first.origin or first.path} with a different label "
                                f"({item.label!r} vs {first.label!r}); both skipped")
        else:
            kept[key] = item
    return list(kept.values())


def read_crop(path: str | os.PathLike) -> np.ndarray | None:
    """A 28x28 model-ready crop (uint8, white digit on black), or None when the file is another size.

    digitkit writes its crops white on black, as MNIST is; a 28x28 image whose border is mostly
    bright is taken to be dark ink on paper and inverted.

    Raises:
        ValueError: The file cannot be decoded as an image.
    """
    try:
        data = np.fromfile(os.fspath(path), np.uint8)  # Not cv2.imread: it cannot open non-ASCII paths on Windows.
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from error
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.shape != (constants.IMAGE_SIZE, constants.IMAGE_SIZE):
        return None
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return 255 - image if float(border.mean()) > 127 else image


def write_crop(path: str | os.PathLike, crop: np.ndarray) -> None:
    """Writes a crop (float in [0, 1] or uint8, 28x28, white on black) as a PNG, atomically."""
    pixels = np.asarray(crop)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", pixels.reshape(constants.IMAGE_SIZE, constants.IMAGE_SIZE))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the crop")
    files.write_bytes(path, encoded.tobytes())


def read_csv_rows(csv_path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of an existing labels CSV, to add to it without losing what is there ([] when absent)."""
    path = pathlib.Path(csv_path)
    if not path.is_file():
        return [], []
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return [name.strip() for name in reader.fieldnames or ()], [dict(row) for row in reader]


def write_csv_rows(csv_path: str | os.PathLike, columns: list[str], rows: list[dict]) -> None:
    """Writes a labels CSV atomically; `columns` must start with path and label."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files.write_text(csv_path, buffer.getvalue())


def next_free_path(folder: str | os.PathLike, stem: str, suffix: str = ".png") -> pathlib.Path:
    """`folder/stem.png`, or `stem-2.png`, `stem-3.png`, ... when taken: saving never overwrites."""
    base = pathlib.Path(folder)
    for attempt in range(1, 100_000):
        candidate = base / (f"{stem}{suffix}" if attempt == 1 else f"{stem}-{attempt}{suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"{base / stem}{suffix}: too many files of that name")
