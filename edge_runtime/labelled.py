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

A CSV saved by a spreadsheet is read as it comes: header names in any case and with spaces around
them (`Path, Label`), `;` or tab between columns (found from the header line, and only when it then
names path and label), UTF-8 with or without a BOM, UTF-16 with a BOM, and Windows-1252 for cells
that are not UTF-8 (with a warning naming the file, line and byte). A path cell that is not UTF-8 is
looked up as the bytes it holds first, then as Windows-1252; a row whose file is found by neither is
reported. An image, a model or other binary data given as the CSV is refused, saying what it is.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import os
import pathlib

import cv2
import numpy as np

from edge_runtime import constants, files, outputs

LABELS_CSV = "labels.csv"
CROPS_FOLDER = "crops"
"""Where collected crops go inside a labelled folder; `labels.csv` lists them, so it is not a label folder."""
CSV_COLUMNS = ("path", "label")
CSV_DELIMITERS = (",", ";", "\t")
"""Column separators a labels CSV may use, tried in this order on its header line: a spreadsheet in a
comma-decimal locale saves `;`, "Unicode text" saves tabs."""
FALLBACK_ENCODING = "cp1252"
"""How cells that are not UTF-8 are read: what spreadsheets on Windows save as "CSV"."""
_LINE_SEPARATOR = "/"
_shown = outputs.display
"""A path or cell safe to print: bytes that are not UTF-8 as `\\xNN` (digit-infer's own rule)."""
_IMAGE_KINDS = {"png": "a PNG image", "jpeg": "a JPEG image", "gif": "a GIF image", "tiff": "a TIFF image",
                "bmp": "a BMP image", "webp": "a WebP image"}


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
            every entry invalid) or is not a CSV (an image, a model, binary data); the message says what
            was found and the expected layout.
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
        _refuse_image_or_model(source_path)
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
        table = read_table(csv_path)
    except ValueError as error:
        if strict:
            raise
        warnings.append(str(error))
        return []
    warnings.extend(table.warnings)
    entries = []
    for line, row in table.rows:
        where = f"{csv_path} row {line}"
        path_text, label = (row.get("path") or "").strip(), _cell(row.get("label") or "").strip()
        if not path_text:
            warnings.append(f"{where}: empty path; row skipped")
            continue
        path = _resolve(csv_path.parent, path_text)
        if path is None:
            warnings.append(f"{where}: the path {_shown(path_text)} is not UTF-8, and no file is named by its bytes "
                            f"or by them read as Windows-1252 ({_cell(path_text)}); row skipped")
            continue
        entries.append(LabelledImage(path, label, where))
    return entries


@dataclasses.dataclass(frozen=True)
class CsvTable:
    """A labels CSV as read by `read_table`.

    Attributes:
        columns: The header names, stripped and lower-cased ("path", "label", ...).
        rows: (line the row starts on, {column: cell}) for each row that is not blank. Cells are as in
            the file; bytes that are not UTF-8 are surrogate escapes (`_cell` reads them as Windows-1252).
        delimiter: The column separator found on the header line.
        warnings: Notes on how the file was read (not UTF-8), naming the file.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]
    delimiter: str = ","
    warnings: tuple[str, ...] = ()


def read_table(csv_path: str | os.PathLike) -> CsvTable:
    """Reads a labels CSV as a spreadsheet may have saved it (see the module docstring for what is accepted).

    Raises:
        ValueError: The file cannot be read, is not text (an image, a model, binary data), or its header
            does not name path and label; the message names the file and what was found.
    """
    path = pathlib.Path(csv_path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{_shown(path)}: cannot read the labels CSV ({error.strerror or error})") from error
    text, note = _decode(path, data)
    try:
        for delimiter in CSV_DELIMITERS:
            rows = _rows(text, delimiter)
            header = next(rows, (1, []))[1]
            columns = tuple(_cell(name).strip().lower() for name in header)
            if set(CSV_COLUMNS) <= set(columns):
                _refuse_repeated_columns(path, header, columns)
                table = tuple((line, dict(zip(columns, cells))) for line, cells in rows)
                return CsvTable(columns, table, delimiter, (note,) if note else ())
    except csv.Error as error:
        raise ValueError(f"{_shown(path)}: not a readable CSV ({error})") from error
    raise ValueError(_header_error(path, text, note))


def _rows(text: str, delimiter: str):
    """(line the row starts on, cells) of each row that is not blank: a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield line, cells
        line = reader.line_num + 1


def _refuse_repeated_columns(path: pathlib.Path, header: list[str], columns: tuple[str, ...]) -> None:
    for name in CSV_COLUMNS:
        if columns.count(name) > 1:
            raise ValueError(f"{_shown(path)}: the header {[_cell(cell) for cell in header]} names the column "
                             f"{name!r} more than once; keep one")


def _header_error(path: pathlib.Path, text: str, note: str | None) -> str:
    header = next(_rows(text, ","), (1, []))[1]
    found = [_cell(name).strip() for name in header]
    message = (f"{_shown(path)}: the header is {found or 'missing'}; a labels CSV needs the columns "
               f"{','.join(CSV_COLUMNS)} (in any case, separated by commas, semicolons or tabs)")
    return f"{message}. Also: {note}" if note else message


def _decode(path: pathlib.Path, data: bytes) -> tuple[str, str | None]:
    """The CSV's text and, when it is not UTF-8, a note saying where and how it was read.

    Bytes that are not UTF-8 are kept as surrogate escapes, so a path cell still holds the bytes a file
    name may have; `_cell` reads them as Windows-1252 for everything else.

    Raises:
        ValueError: Binary data (a NUL byte, an image or model signature) or broken UTF-16.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError as error:
            raise ValueError(f"{_shown(path)}: starts as UTF-16 text but byte {error.start} is not; save it again "
                             f"as \"CSV UTF-8\"") from None
    kind = _signature(data[:16])
    if kind or b"\x00" in data:
        index = 0 if kind else data.index(b"\x00")
        line, column = _position(data, index)
        raise ValueError(f"{_shown(path)}: not a text CSV but {kind or 'binary data'} (byte 0x{data[index]:02x} on "
                         f"line {line}, column {column}); a labels CSV is text with the columns "
                         f"{','.join(CSV_COLUMNS)}")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:  # Without the -sig: the position counts the BOM's bytes too.
        index = error.start
    return data.decode("utf-8-sig", "surrogateescape"), _not_utf8(path, data, index)


def _not_utf8(path: pathlib.Path, data: bytes, index: int) -> str:
    line, column = _position(data, index)
    start = max(data.rfind(b"\n", 0, index) + 1, index - 30)
    stop = min(len(data), index + 30, *(at for at in (data.find(b"\n", index), data.find(b"\r", index)) if at >= 0))
    excerpt = data[start:stop]
    return (f"{_shown(path)}: not UTF-8 (byte 0x{data[index]:02x} on line {line}, column {column}: "
            f"'{excerpt.decode('utf-8', 'backslashreplace')}'); its text that is not UTF-8 is read as Windows-1252 "
            f"('{_windows_1252(excerpt)}'), a path first as the bytes it holds. Save it as \"CSV UTF-8\" to avoid "
            f"this")


def _position(data: bytes, index: int) -> tuple[int, int]:
    """Line and column (1-based, in bytes) of `data[index]`."""
    return data.count(b"\n", 0, index) + 1, index - (data.rfind(b"\n", 0, index) + 1) + 1


def _windows_1252(raw: bytes) -> str:
    try:
        return raw.decode(FALLBACK_ENCODING)
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90 and 0x9d mean nothing in Windows-1252.
        return raw.decode("latin-1")


def _cell(text: str) -> str:
    """A cell as its writer saw it: bytes that were not UTF-8 (surrogate escapes) read as Windows-1252."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _windows_1252(text.encode("utf-8", "surrogateescape"))


def _resolve(folder: pathlib.Path, text: str) -> pathlib.Path | None:
    """The file a path cell names, relative to the CSV's folder: as written, or for a cell that is not
    UTF-8, the file its bytes name, else the file its Windows-1252 reading names (None: neither exists)."""
    as_written = _joined(folder, text)
    readable = _cell(text)
    if readable == text or os.path.isfile(as_written):
        return as_written
    as_read = _joined(folder, readable)
    return as_read if os.path.isfile(as_read) else None


def _joined(folder: pathlib.Path, text: str) -> pathlib.Path:
    path = pathlib.Path(text)
    return path if path.is_absolute() else folder / path


def _signature(head: bytes) -> str | None:
    """What a file's first bytes say it is (an image format, a TFLite model), or None."""
    from edge_runtime import imageio

    if head[4:8] == b"TFL3":
        return "a TFLite model"
    image = imageio.sniff_format(head)
    if image == "bmp" and b"\x00" not in head:  # "BM" alone may start a text line.
        return None
    return _IMAGE_KINDS.get(image)


def _refuse_image_or_model(path: pathlib.Path) -> None:
    """Refuses an image or a model given where a labelled folder or labels CSV belongs, saying what to give."""
    try:
        with open(path, "rb") as handle:
            kind = _signature(handle.read(16))
    except OSError:
        kind = None  # Unreadable: read_table says so.
    if kind is None and path.suffix.lower() in constants.IMAGE_SUFFIXES:
        kind = "an image"
    if kind is None:
        return
    if kind.endswith("model"):
        raise ValueError(f"{_shown(path)} is {kind}, not a labelled folder or labels CSV; give the model as MODEL "
                         f"and the labelled folder as DATA")
    holder = next((folder for folder in path.parents[:2] if (folder / LABELS_CSV).is_file()), None)
    hint = f": {_shown(holder)} holds one" if holder is not None else ""
    raise ValueError(f"{_shown(path)} is an image, not a labelled folder or labels CSV; give the folder holding "
                     f"{LABELS_CSV} (digit-infer --save-crops writes one){hint}")


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
    if not path.is_file() or not path.read_bytes().strip():
        return [], []  # none yet, or an empty file to start from
    # Read as `load` reads it (a spreadsheet's `Path;Label` in Windows-1252 included), so that adding rows
    # keeps the rows already there under the columns digitkit writes; the file is written back as UTF-8.
    table = read_table(path)
    return list(table.columns), [{column: _cell(cell) for column, cell in row.items()} for _, row in table.rows]


def write_csv_rows(csv_path: str | os.PathLike, columns: list[str], rows: list[dict]) -> None:
    """Writes a labels CSV atomically; `columns` must start with path and label."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    # A file name that is not UTF-8 (kept by Python as surrogate escapes) is written as its own bytes, so
    # its row still names the file; `read_table` looks such a path up by those bytes.
    files.write_bytes(csv_path, buffer.getvalue().encode("utf-8", "surrogateescape"))


def next_free_path(folder: str | os.PathLike, stem: str, suffix: str = ".png") -> pathlib.Path:
    """`folder/stem.png`, or `stem-2.png`, `stem-3.png`, ... when taken: saving never overwrites."""
    base = pathlib.Path(folder)
    for attempt in range(1, 100_000):
        candidate = base / (f"{stem}{suffix}" if attempt == 1 else f"{stem}-{attempt}{suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"{base / stem}{suffix}: too many files of that name")
