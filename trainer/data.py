"""MNIST loading: find the data, parse and validate IDX or npz files, and split off a seeded validation set."""

from __future__ import annotations

import dataclasses
import gzip
import lzma
import math
import os
import pathlib
import stat
import zipfile
import zlib

import numpy as np

from trainer import input_files

TRAIN_COUNT = 60_000
TEST_COUNT = 10_000
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
NPZ_NAME = "mnist.npz"
# The largest IDX file MNIST has (60,000 images of 28x28 after a 16-byte header): a header that
# promises more is refused before anything is read, so a gzip bomb expands no further than this.
MAX_IDX_BYTES = 16 + TRAIN_COUNT * 28 * 28
# Keras's mnist.npz expands to 55 MB; four times that leaves room for uncompressed or padded copies.
MAX_NPZ_BYTES = 4 * 55_000_000
KERAS_CACHE = pathlib.Path("~/.keras/datasets").expanduser()


class DataError(ValueError):
    """MNIST data that is missing, truncated or corrupt; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays, images uint8 (N, 28, 28), labels uint8 (N,), and where they came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


@dataclasses.dataclass(frozen=True)
class Split:
    """Training and validation arrays carved out of the MNIST training set."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray


def load_mnist(data_path: str | os.PathLike | None = None, allow_download: bool = True) -> Mnist:
    """Loads MNIST from the first source that exists.

    Order: `data_path` (a folder of IDX files, gzip or raw, or a `mnist.npz`), `$MNIST_DIR`,
    the Keras cache, then a download through Keras.

    Args:
        data_path: Folder or `.npz` file given by the user; it must exist when given.
        allow_download: Whether to fall back to a download through Keras.

    Returns:
        The validated arrays.

    Raises:
        FileNotFoundError: `data_path` or `$MNIST_DIR` does not exist, or nothing is found offline.
        DataError: A file is truncated, corrupt or inconsistent.
    """
    if data_path is not None:
        return _load_from(pathlib.Path(data_path), "--data")
    if os.environ.get("MNIST_DIR"):
        return _load_from(pathlib.Path(os.environ["MNIST_DIR"]), "$MNIST_DIR")
    cached = KERAS_CACHE / NPZ_NAME
    if cached.is_file():
        return load_npz(cached)
    if not allow_download:
        raise FileNotFoundError(_offline_help("no local MNIST copy was found and downloading is off"))
    return _download()


def _load_from(path: pathlib.Path, origin: str) -> Mnist:
    expected = (f"it must be a folder holding the four MNIST IDX files ({', '.join(IDX_NAMES.values())}, "
                f"optionally .gz) or a {NPZ_NAME}")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{origin} {path}: no such file or folder; {expected}") from None
    except OSError as error:
        raise DataError(f"{origin} {path}: cannot be read ({error.strerror or error})") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise DataError(f"{origin} {path} is {input_files.file_kind(mode)}; {expected}")
    if path.is_file():
        return load_npz(path)
    if (path / NPZ_NAME).is_file() and not _find_idx(path, IDX_NAMES["train_images"]):
        return load_npz(path / NPZ_NAME)
    return load_idx_folder(path)


def load_idx_folder(folder: pathlib.Path) -> Mnist:
    """Loads and validates the four IDX files (gzip or raw) in `folder`."""
    arrays = {}
    for key, stem in IDX_NAMES.items():
        file = _find_idx(folder, stem)
        if file is None:
            raise FileNotFoundError(f"{folder / stem}(.gz): missing; {folder} must hold all four MNIST IDX files: "
                                    f"{', '.join(IDX_NAMES.values())}")
        arrays[key] = read_idx(file)
    mnist = Mnist(**arrays, source=str(folder))
    validate(mnist)
    return mnist


def _find_idx(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for name in (stem + ".gz", stem):
        # Anything by that name, so a pipe or a folder by that name is named as such, not as missing.
        if os.path.lexists(folder / name):
            return folder / name
    return None


def read_idx(path: pathlib.Path) -> np.ndarray:
    """Parses one IDX file (gzip or raw) into a uint8 array, checking magic number and size.

    The header says how many bytes follow, so no more than that (and one byte to notice a longer
    file) is ever read or decompressed: a gzip bomb stops at the size MNIST needs.

    Raises:
        DataError: The file is not a regular file, not an unsigned-byte IDX file, larger than any
            MNIST file, or its data is truncated or too long.
    """
    compressed = path.suffix == ".gz"
    try:
        size = input_files.check_regular_file(path, 2 * MAX_IDX_BYTES, "an MNIST IDX file")
        stream = gzip.open(path, "rb") if compressed else open(path, "rb")
    except input_files.InputFileError as error:
        raise DataError(str(error)) from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        with stream:
            start = stream.read(4)
            if len(start) < 4:
                raise DataError(f"{path}: only {len(start)} bytes; an IDX file starts with an 8-byte header at least")
            magic = int.from_bytes(start, "big")
            if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
                raise DataError(f"{path}: magic number {magic:#010x} is not an MNIST IDX magic "
                                f"({IMAGE_MAGIC:#010x} images, {LABEL_MAGIC:#010x} labels)"
                                + _gzip_hint(start, compressed))
            dimensions = start[3]
            header = 4 + 4 * dimensions
            packed_shape = stream.read(4 * dimensions)
            if len(packed_shape) < 4 * dimensions:
                raise DataError(f"{path}: truncated: the header of {header} bytes is cut at {4 + len(packed_shape)}")
            shape = tuple(int.from_bytes(packed_shape[4 * i: 4 * i + 4], "big") for i in range(dimensions))
            expected = header + math.prod(shape)
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: header says shape {shape} ({expected:,} bytes), more than the largest "
                                f"MNIST file ({MAX_IDX_BYTES:,} bytes); refused unread")
            if not compressed and size < expected:
                raise DataError(f"{path}: truncated: header says shape {shape} ({expected} bytes), "
                                f"file has {size} bytes")
            body = stream.read(expected - header + 1)  # One byte more reveals a file longer than its header says.
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError.
        raise DataError(f"{path}: cannot decompress ({error}); the file is truncated or not gzip") from error
    if header + len(body) < expected:
        raise DataError(f"{path}: truncated: header says shape {shape} ({expected} bytes), "
                        f"file has {header + len(body)} bytes")
    if header + len(body) > expected:
        actual = f"file has {size} bytes" if not compressed else "the data goes on; decompression stopped there"
        raise DataError(f"{path}: longer than its header says: header says shape {shape} ({expected} bytes), "
                        f"{actual}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _gzip_hint(start: bytes, compressed: bool) -> str:
    if not compressed and start[:2] == b"\x1f\x8b":
        return "; the file is gzip-compressed: give it a .gz suffix"
    return ""


def load_npz(path: pathlib.Path) -> Mnist:
    """Loads and validates a Keras-style `mnist.npz` (x_train, y_train, x_test, y_test).

    The archive's central directory is checked first (see `input_files.check_zip_archive`), so a
    file that is not an npz is named for what it is and a zip bomb is refused unread.
    """
    try:
        input_files.check_regular_file(path, MAX_NPZ_BYTES, "an mnist.npz")
        input_files.check_zip_archive(path, MAX_NPZ_BYTES, "a NumPy .npz archive such as Keras's mnist.npz")
    except input_files.InputFileError as error:
        raise DataError(str(error)) from None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[key] for name, key in
                      (("train_images", "x_train"), ("train_labels", "y_train"),
                       ("test_images", "x_test"), ("test_labels", "y_test"))}
    except KeyError as error:
        raise DataError(f"{path}: missing array {error}; expected x_train, y_train, x_test, y_test") from error
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, TypeError, AttributeError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError) as error:  # Damaged, encrypted or oddly compressed members.
        raise DataError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from error
    mnist = Mnist(**arrays, source=str(path))
    validate(mnist)
    return mnist


def validate(mnist: Mnist) -> None:
    """Checks dtypes, shapes, counts and label range.

    Raises:
        DataError: Naming the array and what is wrong with it.
    """
    for name, count in (("train", TRAIN_COUNT), ("test", TEST_COUNT)):
        images, labels = getattr(mnist, f"{name}_images"), getattr(mnist, f"{name}_labels")
        where = f"{mnist.source}: {name}"
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DataError(f"{where} arrays are {images.dtype}/{labels.dtype}, expected uint8")
        if images.shape != (count, 28, 28):
            raise DataError(f"{where} images have shape {images.shape}, expected ({count}, 28, 28)")
        if labels.shape != (count,):
            raise DataError(f"{where} labels have shape {labels.shape}, expected ({count},)")
        if labels.max() > 9:
            raise DataError(f"{where} labels hold {int(labels.max())}; labels must be 0-9")


def _download() -> Mnist:
    import keras  # Imported here: only the download path needs it.

    try:
        keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises bare Exception subclasses for network failures.
        raise FileNotFoundError(_offline_help(f"downloading MNIST through Keras failed ({error})")) from error
    return load_npz(KERAS_CACHE / NPZ_NAME)


def _offline_help(reason: str) -> str:
    return (f"MNIST is not available: {reason}. Supply it with --data FOLDER (the four IDX files, "
            f"gzip or raw, or a {NPZ_NAME}) or set MNIST_DIR=FOLDER, or put {NPZ_NAME} in {KERAS_CACHE}.")


def split_validation(mnist: Mnist, validation_fraction: float, seed: int, limit: int | None = None) -> Split:
    """Holds out a seeded, stratification-free random validation split of the training set.

    Args:
        mnist: The loaded data.
        validation_fraction: Share of the (limited) training set held out, in [0, 0.5].
        seed: Seed of the permutation, so a run is reproducible.
        limit: Use only this many training samples in all (train plus validation), for smoke runs.
    """
    if not 0.0 < validation_fraction <= 0.5:
        raise ValueError(f"validation_fraction={validation_fraction}: must be in (0, 0.5]")
    order = np.random.default_rng(seed).permutation(len(mnist.train_labels))
    if limit is not None:
        if limit < 20:
            raise ValueError(f"limit={limit}: need at least 20 samples to train and validate")
        order = order[:limit]
    held_out = max(1, int(round(len(order) * validation_fraction)))
    validation, train = order[:held_out], order[held_out:]
    return Split(mnist.train_images[train], mnist.train_labels[train],
                 mnist.train_images[validation], mnist.train_labels[validation])
