"""Batch reading: finds image files in the paths given, reads them in parallel workers, and keeps going past bad files."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pathlib
import sys
import time
from typing import Iterable, Iterator

import cv2

from edge_runtime import constants, files, imageio, overlay, reader as reader_module


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """What every worker needs to read files on its own.

    Attributes:
        model_path: The `.tflite` model (None: the packaged default).
        options: Reading options.
        classifier_overrides: `input_range`, `polarity`, `output` for models without metadata.
        overlay_dir: Where annotated copies go, or None.
        workers: Processes; 1 reads in this process.
    """

    model_path: str | None = None
    options: reader_module.ReaderOptions = reader_module.ReaderOptions()
    classifier_overrides: tuple[tuple[str, object], ...] = ()
    overlay_dir: str | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: must be at least 1")

    def make_reader(self) -> reader_module.DigitReader:
        return reader_module.DigitReader(self.model_path, self.options, **dict(self.classifier_overrides))


def discover(paths: Iterable[str | os.PathLike]) -> tuple[list[str], list[reader_module.ReadResult]]:
    """Expands files and folders (recursively, image suffixes only) into a sorted list of files.

    Returns:
        The files to read, and an error result for each path that cannot be read at all
        (missing, broken symlink, unreadable folder), so a batch reports them and goes on.
    """
    found, problems = [], []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_symlink() and not path.exists():
            problems.append(reader_module.error_result(str(path), f"{path}: broken symbolic link (points to "
                                                                  f"{os.readlink(path)}, which does not exist)"))
        elif path.is_dir():
            found.extend(_walk(path, problems))
        elif path.exists():
            found.append(str(path))
        else:
            problems.append(reader_module.error_result(str(path), f"{path}: no such file or folder"))
    return found, problems


def _walk(folder: pathlib.Path, problems: list) -> list[str]:
    """Image files under `folder`, depth first in name order; os.scandir because pathlib per entry
    costs more than reading a 28x28 PNG."""
    found = []
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        problems.append(reader_module.error_result(str(folder), f"{folder}: cannot read folder ({error.strerror})"))
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            found.extend(_walk(pathlib.Path(entry.path), problems))
        elif os.path.splitext(entry.name)[1].lower() in constants.IMAGE_SUFFIXES:
            if entry.is_symlink() and not os.path.exists(entry.path):
                problems.append(reader_module.error_result(entry.path, f"{entry.path}: broken symbolic link"))
            else:
                found.append(entry.path)
    return found


def overlay_path(overlay_dir: str | os.PathLike, source: str) -> pathlib.Path:
    """Where the annotated copy of `source` goes: its path mirrored under `overlay_dir`."""
    relative = pathlib.Path(source)
    parts = [part for part in relative.parts if part not in ("..", ".", relative.anchor)]
    suffix = ".jpg" if relative.suffix.lower() in (".jpg", ".jpeg") else ".png"
    mirrored = pathlib.Path(overlay_dir, *parts)
    return mirrored.with_name(mirrored.stem + ".overlay" + suffix)


def write_overlay(path: pathlib.Path, image, result) -> None:
    """Draws the reading onto `image` and writes it atomically."""
    ok, encoded = cv2.imencode(path.suffix, overlay.draw_reading(image, result))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the overlay")
    files.write_bytes(path, encoded.tobytes())


_worker_state: dict = {}


def _init_worker(job: BatchJob) -> None:
    cv2.setNumThreads(1)  # The workers are the parallelism; nested OpenCV threads only contend.
    _worker_state["job"], _worker_state["reader"] = job, job.make_reader()


def _read_chunk(paths: list[str]) -> list[reader_module.ReadResult]:
    """Reads a chunk of files in a worker: decodes and segments each, then classifies every crop of the
    chunk in one interpreter call (a per-image call costs about as much again in overhead as the model).

    Any failure becomes an error result naming the file, so one bad file never stops the batch.
    """
    job, reader = _worker_state["job"], _worker_state["reader"]
    started = time.perf_counter()
    prepared = [_prepare(reader, path, keep_image=bool(job.overlay_dir)) for path in paths]
    good = [item for item in prepared if isinstance(item, tuple)]
    classified = iter(reader.classify([crops for _, _, crops, _ in good], [path for path, *_ in good],
                                      [shape for _, _, _, shape in good], started, keep_details=False))
    results = []
    for item in prepared:
        if not isinstance(item, tuple):
            results.append(item)
            continue
        path, image, _, _ = item
        result = next(classified)
        if job.overlay_dir:
            result = _with_overlay(job.overlay_dir, path, image, result)
        results.append(result)
    return results


def _prepare(reader, path: str, keep_image: bool):
    """(path, image or None, crops, shape) for a readable image, else an error result."""
    try:
        image = imageio.load_image(path)
        return path, image if keep_image else None, reader.find(image), image.shape[:2]
    except (ValueError, OSError, cv2.error, MemoryError) as error:  # ImageError is a ValueError.
        return reader_module.error_result(path, _message(path, error))


def _with_overlay(overlay_dir: str, path: str, image, result):
    try:
        write_overlay(overlay_path(overlay_dir, path), image, result)
        return result
    except (ValueError, OSError, cv2.error) as error:
        return reader_module.error_result(path, _message(path, f"cannot write the overlay: {error}"))


def _message(path: str, error) -> str:
    text = str(error)
    return text if path in text else f"{path}: {text}"


def read_files(job: BatchJob, paths: list[str],
               reader: reader_module.DigitReader | None = None) -> Iterator[reader_module.ReadResult]:
    """Reads files in input order, in `job.workers` processes, a chunk of files at a time.

    Args:
        job: What to read with and where overlays go.
        paths: The files, in output order.
        reader: A reader already made from `job`, used when reading in this process, so the model
            is not loaded twice.

    Yields:
        One result per path, errors included.
    """
    # Overlays keep each decoded image until its chunk is classified: smaller chunks bound the memory.
    largest = 8 if job.overlay_dir else 64
    size = max(1, min(largest, len(paths) // (job.workers * 32)))
    chunks = [paths[start:start + size] for start in range(0, len(paths), size)]
    if job.workers == 1 or len(chunks) < 2:
        # One OpenCV thread here too: a process whose OpenCV thread pool has started cannot safely
        # fork workers later (the children hang), and a CLI run may read in-process, then fork.
        cv2.setNumThreads(1)
        _worker_state["job"], _worker_state["reader"] = job, reader or job.make_reader()
        for chunk in chunks:
            yield from _read_chunk(chunk)
        return
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(job.workers, initializer=_init_worker, initargs=(job,)) as pool:
        for results in pool.imap(_read_chunk, chunks):
            yield from results
