"""Batch reading: finds image files in the paths given, reads them in parallel workers, and keeps going past bad files."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pathlib
import re
import sys
import time
from typing import Iterable, Iterator

import cv2

from edge_runtime import constants, files, inputs, overlay, reader as reader_module, stopping


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """What every worker needs to read files on its own.

    Attributes:
        model_path: The `.tflite` model (None: the packaged default).
        options: Reading options.
        classifier_overrides: `input_range`, `polarity`, `output` for models without metadata.
        overlay_dir: Where annotated copies go, or None.
        workers: Processes; 1 reads in this process.
        keep_details: Keep each digit's crop and probabilities in the results (for collecting
            training data; they cost a pickle per digit across processes, so batches drop them).
    """

    model_path: str | None = None
    options: reader_module.ReaderOptions = reader_module.ReaderOptions()
    classifier_overrides: tuple[tuple[str, object], ...] = ()
    overlay_dir: str | None = None
    workers: int = 1
    keep_details: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: must be at least 1")

    def make_reader(self) -> reader_module.DigitReader:
        return reader_module.DigitReader(self.model_path, self.options, **dict(self.classifier_overrides))


UNSUPPORTED_IMAGE_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jxl")
"""Photos digit-infer cannot decode: found in folders anyway, so each gets an error row saying how to convert it."""

_OVERLAY_NAME = re.compile(r"\.overlay\.(jpg|png)$")


def discover(paths: Iterable[str | os.PathLike],
             skip: str | os.PathLike | None = None) -> tuple[list[str], list[reader_module.ReadResult]]:
    """Expands files and folders (recursively, image suffixes only) into a sorted list of files.

    Args:
        paths: Files and folders.
        skip: The overlay folder: when it is inside (or is) an input folder, the overlays a previous run
            wrote there are not read as inputs.

    Returns:
        The files to read, and an error result for each path that cannot be read at all
        (missing, broken symlink, unreadable folder), so a batch reports them and goes on.
    """
    found, problems = [], []
    skip_real = os.path.realpath(skip) if skip else None
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_symlink() and not path.exists():
            problems.append(reader_module.error_result(str(path), f"{path}: broken symbolic link (points to "
                                                                  f"{os.readlink(path)}, which does not exist)"))
        elif path.is_dir():
            found.extend(_walk(path, problems, skip_real, root=True))
        elif path.exists():
            found.append(str(path))
        else:
            problems.append(reader_module.error_result(str(path), f"{path}: no such file or folder"))
    return found, problems


def _walk(folder: pathlib.Path, problems: list, skip_real: str | None = None, root: bool = False) -> list[str]:
    """Image files under `folder`, depth first in name order; os.scandir because pathlib per entry
    costs more than reading a 28x28 PNG."""
    found = []
    if skip_real is not None and not root and os.path.realpath(folder) == skip_real:
        return found  # The overlay folder inside an input folder.
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        problems.append(reader_module.error_result(str(folder), f"{folder}: cannot read folder ({error.strerror})"))
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden, as a quoted `**` pattern skips them: .git, .thumbnails, macOS's ._a.jpg twins
        if entry.is_dir(follow_symlinks=False):
            found.extend(_walk(pathlib.Path(entry.path), problems, skip_real))
        elif os.path.splitext(entry.name)[1].lower() in _FOUND_SUFFIXES:
            if _OVERLAY_NAME.search(entry.name):
                continue  # digitkit's own overlays, wherever an earlier run put them
            if entry.is_symlink() and not os.path.exists(entry.path):
                problems.append(reader_module.error_result(entry.path, f"{entry.path}: broken symbolic link"))
            else:
                found.append(entry.path)
    return found


_FOUND_SUFFIXES = frozenset(constants.IMAGE_SUFFIXES) | frozenset(UNSUPPORTED_IMAGE_SUFFIXES)
FOUND_SUFFIXES = tuple(sorted(_FOUND_SUFFIXES))
"""The suffixes a folder walk reads (any case)."""


def overlay_path(overlay_dir: str | os.PathLike, source: str) -> pathlib.Path:
    """Where the annotated copy of `source` goes: its path mirrored under `overlay_dir`.

    A path inside the current folder is mirrored from there, however it was spelled (`scans/a.jpg` and
    `$PWD/scans/a.jpg` both give `overlays/scans/a.jpg.overlay.jpg`, not `overlays/home/pi/...`); a path
    elsewhere is mirrored whole. Either way two inputs never share an overlay, in one run or across runs
    into the same folder. The whole file name is kept (`a.jpeg` -> `a.jpeg.overlay.jpg`), so that `a.jpg`
    and `a.jpeg`, or `a.png` and `a.tif`, do not share one overlay.
    """
    relative = pathlib.Path(_below_current_folder(source))
    parts = [part for part in relative.parts if part not in ("..", ".", relative.anchor)]
    suffix = ".jpg" if relative.suffix.lower() in (".jpg", ".jpeg") else ".png"
    mirrored = pathlib.Path(overlay_dir, *parts)
    return mirrored.with_name(mirrored.name + ".overlay" + suffix)


def _below_current_folder(source: str) -> str:
    """`source` relative to the current folder when it is an absolute path inside it; else as given."""
    if "://" in source or not os.path.isabs(source):
        return source
    with contextlib.suppress(ValueError):  # on another drive (Windows)
        relative = os.path.relpath(source, os.getcwd())
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            return relative
    return source


def write_overlay(path: pathlib.Path, image, result) -> None:
    """Draws the reading onto `image` and writes it atomically."""
    ok, encoded = cv2.imencode(path.suffix, overlay.draw_reading(image, result))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the overlay")
    files.write_bytes(path, encoded.tobytes())


_worker_state: dict = {}


def _init_worker(job: BatchJob) -> None:
    cv2.setNumThreads(1)  # The workers are the parallelism; nested OpenCV threads only contend.
    stopping.quiet_worker()
    _worker_state["job"], _worker_state["reader"] = job, job.make_reader()


def read_chunk(job: BatchJob, paths: list[str]) -> list[reader_module.ReadResult]:
    """Reads one chunk with this process's reader for `job`, loading the model on the first call only.

    The entry point for workers that a distributed engine starts (edge_runtime/cluster.py): the same
    chunk reader as `read_files`, so a cluster gives the same rows.
    """
    if _worker_state.get("job") != job:
        # Not _init_worker: an engine runs tasks in a thread, where signal handlers cannot be set (the
        # engine handles signals itself).
        cv2.setNumThreads(1)
        _worker_state["job"], _worker_state["reader"] = job, job.make_reader()
    return _read_chunk(paths)


def chunk_paths(job: BatchJob, paths: list[str]) -> list[list[str]]:
    """Splits `paths` into the chunks `read_files` hands to its workers (about 32 per worker, at most 64 files)."""
    # Overlays keep each decoded image until its chunk is classified: smaller chunks bound the memory.
    largest = 8 if job.overlay_dir else 64
    size = max(1, min(largest, len(paths) // (job.workers * 32)))
    return [paths[start:start + size] for start in range(0, len(paths), size)]


def _read_chunk(paths: list[str]) -> list[reader_module.ReadResult]:
    """Reads a chunk of files in a worker: decodes and segments each, then classifies every crop of the
    chunk in one interpreter call (a per-image call costs about as much again in overhead as the model).

    Any failure becomes an error result naming the file, so one bad file never stops the batch.
    """
    job, reader = _worker_state["job"], _worker_state["reader"]
    started = time.perf_counter()
    results: list = [None] * len(paths)
    group, held = [], 0

    def read_group() -> None:
        for (index, path, image, note), result in zip(group, _read_group(reader, job, group, started)):
            if note:
                result = dataclasses.replace(result, warning=_message(path, note))
            if job.overlay_dir and result.status != constants.STATUS_ERROR:
                result = _with_overlay(job.overlay_dir, path, image, result)
            results[index] = result
        group.clear()

    for index, path in enumerate(paths):
        item = _prepare(path)
        if not isinstance(item, tuple):
            results[index] = item
            continue
        group.append((index, *item))
        held += item[1].nbytes
        if held >= GROUP_IMAGE_BYTES:  # Large photos: classify now rather than hold 64 decoded images.
            read_group()
            held = 0
    read_group()
    return results


GROUP_IMAGE_BYTES = 16_000_000
"""Decoded images a worker holds before classifying them (issue 12: a worker stays under 400 MB even
when a chunk is 64 large photos); 28x28 digits still go to the interpreter 64 at a time."""


def _read_group(reader, job: BatchJob, group: list, started: float) -> list[reader_module.ReadResult]:
    """Reads (index, path, image, note) items in one call; if that fails, one by one, so that only the
    image that breaks segmentation or the interpreter gets an error row."""
    if not group:
        return []
    try:
        return reader.read_images([item[2] for item in group], [item[1] for item in group], started,
                                  keep_details=job.keep_details)
    except (ValueError, RuntimeError, cv2.error, MemoryError) as error:
        if len(group) == 1:
            return [reader_module.error_result(group[0][1], _message(group[0][1], error))]
        return [result for item in group for result in _read_group(reader, job, [item], started)]


def _prepare(path: str):
    """(path, image, note) for a readable image, else an error result."""
    try:
        image, note = inputs.load_image_noted(path)  # A local file, or a URL from --from-list.
        return path, image, note
    except (ValueError, OSError, cv2.error, MemoryError) as error:  # ImageError is a ValueError.
        return reader_module.error_result(path, _message(path, error))


def _with_overlay(overlay_dir: str, path: str, image, result):
    """Writes the overlay; a failure keeps the reading and becomes a warning (the digits were read)."""
    try:
        write_overlay(overlay_path(overlay_dir, path), image, result)
        return result
    except (ValueError, OSError, cv2.error) as error:
        warning = _message(path, f"the overlay could not be written ({error}); the reading is kept")
        return dataclasses.replace(result, warning="; ".join(filter(None, (result.warning, warning))))


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
    chunks = chunk_paths(job, paths)
    if job.workers == 1 or len(chunks) < 2:
        # One OpenCV thread here too: a process whose OpenCV thread pool has started cannot safely
        # fork workers later (the children hang), and a CLI run may read in-process, then fork.
        cv2.setNumThreads(1)
        _worker_state["job"], _worker_state["reader"] = job, reader or job.make_reader()
        for chunk in chunks:
            yield from _read_chunk(chunk)
        return
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with stopping.signals_held():
        pool = context.Pool(job.workers, initializer=_init_worker, initargs=(job,))
    with pool:
        pending = pool.imap(_read_chunk, chunks)
        while True:
            try:
                # A bounded wait: a signal that the kernel hands to one of the pool's threads only runs its
                # Python handler (Ctrl-C, SIGTERM) once the main thread wakes; a wait without end would hang.
                results = pending.next(timeout=0.25)
            except multiprocessing.TimeoutError:
                continue
            except StopIteration:
                break
            yield from results
        # Every file is read: the workers are told to leave, and leave by themselves, before the pool's
        # exit ends them with SIGTERM. That could hang: a worker that gets the signal just before it
        # blocks on the task queue's lock runs its handler only once it has the lock, which never comes
        # (seen once in a benchmark: all results in, output never written).
        pool.close()
        pool.join()
