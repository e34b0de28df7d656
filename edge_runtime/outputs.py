"""Where `digit-infer` may write and how: the output safety policy (collisions, writability) and the result rows.

Every file `digit-infer` writes (`--output`, `--record`, `--save-overlays`, the camera's JSON lines) is
checked here before anything is read, by one policy:

* an output is never one of the inputs, a file inside an input folder that would be read as input, the
  model in use or the camera source; paths are compared with `os.path.samefile` (hard links, `./x`,
  symbolic links and case-insensitive file systems included), not by name;
* a results file never carries an image, video or model suffix, so that a slip (`--output scans/*.jpg`)
  cannot turn a photo into a table;
* an existing file is replaced only when it is a previous results file (our CSV or table header, or JSON
  lines with our keys) or empty; never through a symbolic link, never when read-only (write bits off),
  and the replacement keeps the old file's permission bits;
* the folder must exist or be creatable, and is proved writable by creating the temporary file the
  results go into, before the first image is read.

A refusal raises `OutputRefused` (the CLI exits 2 with its message, which names both paths). A failure
while writing (a full disk, a folder gone read-only) raises `OutputFailed` (exit `EXIT_OUTPUT_FAILED`);
results stream into a temporary file renamed over the target only when complete, so the previous file,
if any, is kept. A reader that closes a pipe (`| head`) raises `PipeClosed` (exit `EXIT_PIPE_CLOSED`).
Paths that are not valid UTF-8 are written with their undecodable bytes as `\\xNN`.

A format is a `ResultWriter` subclass registered in `WRITERS` and a header recognised by `looks_like_results`:
Parquet is edge_runtime/parquet_results.py. `--resume` outputs are appended record by record instead of
renamed into place; edge_runtime/resume.py writes them (with `csv_fields` and `safe_record` from here).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import pathlib
import stat
import sys
from typing import Iterable, Iterator, TextIO

from edge_runtime import constants, files

FORMATS = ("table", "csv", "jsonl", "parquet")
CSV_COLUMNS = ("path", "digits", "confidence", "status", "error", "confidences", "boxes")

EXIT_OUTPUT_FAILED = 3
"""The results could not be written at the end (disk full, folder gone); every image was read."""
EXIT_PIPE_CLOSED = 141
"""stdout's reader went away (`| head`): 128 + SIGPIPE, what a shell reports for a Unix tool in a pipe."""

IMAGE_LIKE_SUFFIXES = frozenset(constants.IMAGE_SUFFIXES) | {
    ".gif", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".svg", ".ico", ".psd", ".pgm", ".ppm", ".pbm", ".pnm",
    ".exr", ".hdr", ".dng", ".cr2", ".nef", ".arw", ".raw"}
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".3gp", ".h264", ".h265", ".mjpeg", ".mjpg", ".ts"})
MODEL_SUFFIXES = frozenset({".tflite", ".lite", ".tfl", ".keras", ".h5", ".hdf5", ".pb", ".onnx", ".npz", ".npy",
                            ".pt", ".pth", ".safetensors", ".ckpt", ".weights"})
PROTECTED_SUFFIXES = IMAGE_LIKE_SUFFIXES | VIDEO_SUFFIXES | MODEL_SUFFIXES
"""Suffixes a results file (or overlay folder) may not have: such a name is a photo, a video or a model."""

_SNIFF_BYTES = 4096


class OutputRefused(ValueError):
    """An output that would destroy or be mistaken for something else; nothing has been read or written yet."""


class OutputFailed(OSError):
    """The results could not be written; the message says what, and what was kept."""


class PipeClosed(Exception):
    """stdout's reader has gone (`digit-infer ... | head`)."""


@dataclasses.dataclass(frozen=True)
class Protected:
    """What an output must never be.

    Attributes:
        inputs: The image files to be read.
        input_folders: The folders given (an output inside one with an image suffix would be read as input).
        model: The model in use.
        camera_source: The `--camera` source, when it is a file.
    """

    inputs: tuple[str, ...] = ()
    input_folders: tuple[str, ...] = ()
    model: str | None = None
    camera_source: str | None = None

    def named(self) -> Iterator[tuple[str, str]]:
        """(role, path) of every protected path that exists."""
        if self.model is not None:
            yield "the model in use", self.model
        if self.camera_source is not None:
            yield "the camera source", self.camera_source
        for folder in self.input_folders:
            yield "an input folder", folder
        for path in self.inputs:
            yield "an input", path


# --- The policy ----------------------------------------------------------------------------------------------


def check_results_file(path: str | os.PathLike, protected: Protected, option: str = "--output") -> None:
    """Refuses a results file that would destroy an input, the model, the source or a file not ours.

    Raises:
        OutputRefused: With the reason, naming `path` and whatever it collides with.
    """
    target = _non_empty(path, option)
    _refuse_collision(target, protected, option)
    _refuse_protected_suffix(target, option, "results file")
    if os.path.lexists(target):
        _refuse_unsafe_existing(target, option)
        if not looks_like_results(target):
            raise OutputRefused(f"{option} {display(target)}: the file exists and is not a previous digit-infer "
                                f"results file (no results header); refusing to replace it. Remove it or "
                                f"choose another name")
    _refuse_unusable_folder(target, option)


def check_record_file(path: str | os.PathLike, protected: Protected, option: str = "--record") -> None:
    """Refuses a video to record that is the source, an input or the model, a link, or read-only.

    An existing video that is none of those is replaced: naming it with `--record` asks for that.
    """
    target = _non_empty(path, option)
    _refuse_collision(target, protected, option)
    if os.path.lexists(target):
        _refuse_unsafe_existing(target, option)
    _refuse_unusable_folder(target, option)


def check_overlay_folder(path: str | os.PathLike, protected: Protected, option: str = "--save-overlays") -> None:
    """Refuses an overlay folder that is a file, has a file's suffix, or cannot be written.

    The overlay folder may be an input folder or lie inside one: `discover` skips overlays when reading.
    """
    target = _non_empty(path, option)
    if target.suffix.lower() in PROTECTED_SUFFIXES and not target.is_dir():
        raise OutputRefused(f"{option} {display(target)}: names a file ({target.suffix}), not a folder; give a "
                            f"folder for the annotated copies")
    for role, other in protected.named():
        if role != "an input folder" and _same(target, other):
            raise OutputRefused(f"{option} {display(target)} is {role} ({display(other)}); give a folder")
    if os.path.lexists(target) and not target.is_dir():
        raise OutputRefused(f"{option} {display(target)}: exists and is not a folder")
    if target.is_dir():
        _probe_folder(target, option)
    else:
        _refuse_unusable_folder(target, option)


def looks_like_results(path: str | os.PathLike) -> bool:
    """Whether `path` is empty or starts like a file digit-infer writes: a CSV or table header, or JSON lines
    with a "status" and a "path" (batch) or "frame" (camera)."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFF_BYTES)
    except OSError:
        return False
    if not head.strip():
        return True
    if head.startswith(b"PAR1"):  # Parquet: ours carry a "digitkit" entry in the footer's metadata.
        return _parquet_is_ours(path)
    first = head.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    if first.startswith("path") and "digits" in first and "status" in first:
        return True
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "status" in record and ("path" in record or "frame" in record)


def _parquet_is_ours(path) -> bool:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 65536))
            return b"digitkit" in file.read()
    except OSError:
        return False


def _non_empty(path, option: str) -> pathlib.Path:
    if not os.fspath(path):
        raise OutputRefused(f"{option} '': give a file name")
    return pathlib.Path(path)


def _refuse_protected_suffix(target: pathlib.Path, option: str, what: str) -> None:
    suffix = target.suffix.lower()
    if suffix in PROTECTED_SUFFIXES:
        kind = ("an image" if suffix in IMAGE_LIKE_SUFFIXES else "a video" if suffix in VIDEO_SUFFIXES
                else "a model")
        raise OutputRefused(f"{option} {display(target)}: a {what} cannot end in {suffix}, the suffix of {kind}; "
                            f"use .csv, .jsonl or .txt")


def _refuse_collision(target: pathlib.Path, protected: Protected, option: str) -> None:
    try:
        mine = os.stat(target)
    except (OSError, ValueError):
        return  # Nothing there yet, or a dangling link (refused later): it cannot be an input.
    for role, other in protected.named():
        if _same_file(mine, other):
            raise OutputRefused(f"{option} {display(target)} is {role} ({display(other)}); writing there would "
                                f"destroy it. Choose another name")


def _refuse_unsafe_existing(target: pathlib.Path, option: str) -> None:
    if target.is_symlink():
        raise OutputRefused(f"{option} {display(target)}: is a symbolic link (to {display(os.readlink(target))}); "
                            f"replacing it would break the link. Give the real path or another name")
    mode = os.stat(target).st_mode
    if stat.S_ISDIR(mode):
        raise OutputRefused(f"{option} {display(target)}: is a folder; give a file name")
    if not stat.S_ISREG(mode):
        # Never renamed over: `--output /dev/null` would replace the device with a file.
        raise OutputRefused(f"{option} {display(target)}: is not a regular file (a device, pipe or socket); leave "
                            f"out {option} to write to stdout, and redirect that (> /dev/null)")
    if not mode & 0o222:
        raise OutputRefused(f"{option} {display(target)}: is read-only; refusing to replace it")


def _refuse_unusable_folder(target: pathlib.Path, option: str) -> None:
    """The nearest existing folder above `target` must be a folder: `--output photo.jpg/out.csv` fails here,
    before reading."""
    existing = target.parent
    while str(existing) not in ("", ".") and not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if os.path.lexists(existing) and not existing.is_dir():
        raise OutputRefused(f"{option} {display(target)}: {display(existing)} is a file, not a folder")


def _probe_folder(folder: pathlib.Path, option: str) -> None:
    try:
        with files.atomic_path(folder / ".digitkit-probe") as temporary:
            temporary.write_bytes(b"")
            raise _ProbeDone
    except _ProbeDone:
        pass
    except OSError as error:
        raise OutputRefused(f"{option} {display(folder)}: cannot write there ({error.strerror or error})") from None


class _ProbeDone(Exception):
    """Leaves the atomic block without renaming the probe into place."""


def _same_file(mine: os.stat_result, other: str | os.PathLike) -> bool:
    """os.path.samefile with the target's stat taken once (a batch may have many inputs)."""
    try:
        return os.path.samestat(mine, os.stat(other))
    except (OSError, ValueError):
        return False


def _same(path: pathlib.Path, other: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False


# --- Opening the results ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Interruption:
    """Whether a run stopped early (set by the caller), and where `open_results` then put its rows.

    A run stopped early (Ctrl-C, a signal, a lost cluster) keeps the rows it has. Over a previous results
    file they would replace complete results with a part of them, with nothing in the file to say so:
    the previous file is kept instead, and the rows go to `partial_path(path)` (`partial`).
    """

    stopped: bool = False
    partial: pathlib.Path | None = None


class _PreviousKept(Exception):
    """Tells `files.atomic_path` not to rename its temporary file onto the target."""


def partial_path(path: str | os.PathLike) -> pathlib.Path:
    """Where an interrupted run's rows go when `path` holds earlier results: `r.csv` -> `r.interrupted.csv`,
    or `r.interrupted-2.csv` (-3, ...) when that name holds anything but an earlier run's results."""
    target = pathlib.Path(path)
    for attempt in range(1, 1000):
        number = "" if attempt == 1 else f"-{attempt}"
        candidate = target.with_name(f"{target.stem}.interrupted{number}{target.suffix}")
        if not os.path.lexists(candidate) or (candidate.is_file() and not candidate.is_symlink()
                                              and looks_like_results(candidate)):
            return candidate
    raise OutputFailed(f"--output {display(target)}: no free name for the interrupted run's rows beside it")


@contextlib.contextmanager
def open_results(path: str | os.PathLike | None, interruption: Interruption | None = None) -> Iterator[TextIO]:
    """stdout, or a temporary file beside `path` renamed onto it when the block ends.

    The temporary file is made on entry, so an unwritable place fails before any image is read. A previous
    results file keeps its permission bits. On an exception (other than KeyboardInterrupt or `Stopped`,
    whose callers keep the rows so far by returning normally) `path` is left as it was; so it is when
    `interruption.stopped` is set by the block's end and `path` held earlier results (see `Interruption`).

    Raises:
        OutputRefused: The temporary file cannot be made (read-only folder, no space).
        OutputFailed: Writing, flushing or renaming failed after reading began.
    """
    if path is None:
        with contextlib.suppress(AttributeError, ValueError):  # Not every stdout is a TextIOWrapper.
            sys.stdout.reconfigure(errors="backslashreplace")
        yield sys.stdout
        return
    target = pathlib.Path(path)
    previous_mode = os.stat(target).st_mode & 0o7777 if target.is_file() else None
    atomic = files.atomic_path(target)
    try:
        temporary = atomic.__enter__()
        stream = open(temporary, "w", newline="", encoding="utf-8", errors="backslashreplace")
    except OSError as error:
        atomic.__exit__(type(error), error, None)
        raise OutputRefused(f"--output {display(target)}: cannot write there ({error.strerror or error})") from None
    try:
        with stream:
            yield stream
        if previous_mode is not None:
            os.chmod(temporary, previous_mode)
    except OSError as error:
        atomic.__exit__(type(error), error, None)
        kept = "the previous file is unchanged" if previous_mode is not None else "no file was written"
        raise OutputFailed(f"--output {display(target)}: cannot write the results "
                           f"({error.strerror or error}); {kept}") from None
    except BaseException as error:
        atomic.__exit__(type(error), error, None)
        raise
    try:
        if interruption is not None and interruption.stopped and previous_mode is not None:
            partial = partial_path(target)
            os.replace(temporary, partial)
            interruption.partial = partial
            kept = _PreviousKept()
            atomic.__exit__(_PreviousKept, kept, None)  # skips its rename onto `path`
        else:
            atomic.__exit__(None, None, None)
    except OSError as error:
        raise OutputFailed(f"--output {display(target)}: cannot put the results in place "
                           f"({error.strerror or error})") from None


# --- Rows --------------------------------------------------------------------------------------------------------


def display(text: str | os.PathLike) -> str:
    """A path or message safe to print and encode: bytes that are not UTF-8 (kept by Python as surrogates)
    become `\\xNN`, so a file called b"\\xff\\xfe.jpg" is written as `\\xff\\xfe.jpg` instead of crashing."""
    text = os.fspath(text)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
            if _only_escapes(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _one_line(text: str) -> str:
    """A table cell on one line: a file name holding a newline or tab would break the table's rows."""
    return text.translate(_CONTROL_ESCAPES) if any(character in text for character in "\n\r\t") else text


_CONTROL_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _only_escapes(text: str) -> bool:
    """Whether every lone surrogate is one os.fsdecode made from a byte (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(character) <= 0xDFFF or 0xDC80 <= ord(character) <= 0xDCFF for character in text)


def safe_record(result) -> dict:
    """`result.to_record()` with printable paths and messages, and no NaN or infinity (invalid in JSON)."""
    record = result.to_record()
    for key in ("path", "error", "warning"):
        if isinstance(record.get(key), str):
            record[key] = display(record[key])
    return _finite(record)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class ResultWriter:
    """Streams results as an aligned table, CSV or JSON lines (one object per line)."""

    def __init__(self, stream: TextIO, output_format: str, all_paths: Iterable[str] = ()):
        """Writes the header.

        Args:
            stream: Where rows go.
            output_format: "table", "csv" or "jsonl".
            all_paths: Every path that will be written, to size the table's path column.
        """
        if output_format not in FORMATS:
            raise ValueError(f"output_format={output_format!r}: choose one of {', '.join(FORMATS)}")
        self.stream, self.format = stream, output_format
        self.path_width = min(60, max([4, *(len(display(path)) for path in all_paths)]))
        if output_format == "csv":
            self.csv = csv.writer(stream)
            self._guard(self.csv.writerow, CSV_COLUMNS)
        elif output_format == "table":
            self._line(f"{'path'.ljust(self.path_width)}  {'digits':<12} {'confidence':>10}  status")

    def write(self, result) -> None:
        """Writes one result's row.

        Raises:
            PipeClosed: stdout's reader has gone.
            OutputFailed: Writing failed (a full disk).
        """
        record = safe_record(result)
        confidence = record["confidence"] if record["confidence"] is not None else 0.0
        if self.format == "csv":
            self._guard(self.csv.writerow, csv_fields(record))
        elif self.format == "jsonl":
            self._line(json.dumps(record, allow_nan=False))
        else:
            path = _one_line(record["path"])
            path = path if len(path) <= self.path_width else "…" + path[-self.path_width + 1:]
            status = record["status"] + (f": {_one_line(record['error'])}" if record["error"] else "")
            self._line(f"{path.ljust(self.path_width)}  {record['digits'] or '-':<12} "
                       f"{confidence:>10.1%}  {status}")

    def _line(self, text: str) -> None:
        self._guard(self.stream.write, text + "\n")

    def _guard(self, write, value) -> None:
        try:
            write(value)
        except BrokenPipeError:
            raise PipeClosed() from None
        except OSError as error:
            raise OutputFailed(f"cannot write the results ({error.strerror or error})") from None

    def close(self) -> None:
        """Flushes the stream (the caller owns and closes it)."""
        self._guard(lambda _: self.stream.flush(), None)


def csv_fields(record: dict) -> list[str]:
    """The CSV row of a `safe_record`, in CSV_COLUMNS order (also what resumable outputs write)."""
    confidence = record["confidence"] if record["confidence"] is not None else 0.0
    return [record["path"], record["digits"], f"{confidence:.4f}", record["status"], record["error"],
            " ".join(f"{v:.4f}" if v is not None else "nan" for v in record["confidences"]),
            " ".join("x".join(str(v) for v in box) for box in record["boxes"])]


def _parquet_writer(*args, **kwargs):
    from edge_runtime import parquet_results  # pyarrow, from the [cluster] extra: imported only for parquet.

    return parquet_results.ParquetResultWriter(*args, **kwargs)


WRITERS = {name: ResultWriter for name in FORMATS} | {"parquet": _parquet_writer}
"""Format name -> writer class; a new format registers its class here."""


def detach_stdout() -> None:
    """Points stdout at /dev/null after its reader has gone, so that Python's flush at exit does not fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
