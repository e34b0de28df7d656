"""Checks on what `digit-export` is given: file, archive and run folder before Keras, memory while it loads."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
import zipfile
from typing import Iterator

from exporter.config import ExportConfig
from trainer import input_files

# A digit model is well under 1 MB (the default one is 0.5 MB as .keras); this leaves room for
# much larger third-party models and still bounds what a crafted file can make the export read.
MAX_MODEL_BYTES = 256 << 20
# Weights as the HDF5 file inside the archive declares them, which its own compression could hide.
MAX_WEIGHT_BYTES = 256 << 20
MAX_RUN_JSON_BYTES = 16 << 20
# How much the process's address space may grow while Keras loads a model: a digit model needs a few
# MB, the largest accepted file (MAX_MODEL_BYTES of weights, read, then held as variables) under 1 GB;
# glibc reserves 64 MB of address space per malloc arena, up to 8 per CPU, as threads start.
LOAD_MEMORY_BYTES = (1536 << 20) + (64 << 20) * 8 * (os.cpu_count() or 1)
# Keras parses config.json whole; a digit model's is about 10 KB.
MAX_CONFIG_BYTES = 16 << 20
WEIGHT_MEMBERS = ("model.weights.h5", "model.weights.npz")


class ModelFileError(ValueError):
    """A MODEL argument that is not a usable Keras model; the message starts with the path."""


class IncompleteRunError(ModelFileError):
    """A model from a training run that did not finish; `--force` exports it anyway."""


class OutputFolderError(ValueError):
    """An output folder that cannot be written; found before any work is done."""


def resolve_model_path(config: ExportConfig) -> pathlib.Path:
    """The `model.keras` to export: the given file, the one in a given run folder, or the newest run's.

    Raises:
        FileNotFoundError: Nothing found, naming where it looked.
        ValueError: The file is not a `.keras` model.
    """
    if config.model is None:
        candidates = sorted((path for path in pathlib.Path(config.runs_dir).glob("*/model.keras") if path.exists()),
                            key=lambda path: path.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(f"no trained model found under {config.runs_dir}/*/model.keras; "
                                    f"train one with digit-train or pass MODEL")
        return candidates[-1]
    path = pathlib.Path(config.model)
    if path.is_dir():
        if not os.path.lexists(path / "model.keras"):
            raise FileNotFoundError(f"{path}: model not found: a folder without model.keras (give a model.keras "
                                    f"file or a run folder holding one)")
        path = path / "model.keras"
    if not path.exists():
        raise FileNotFoundError(f"{path}: model not found (give a model.keras file or a run folder holding one)")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: not a Keras model file; expected a .keras file or a run folder")
    return path


def check_inputs(config: ExportConfig) -> tuple[pathlib.Path, pathlib.Path]:
    """Everything checked before a model is loaded: the file, its training run and the output folder.

    Returns:
        The `model.keras` path and the output folder.

    Raises:
        FileNotFoundError: No model there.
        ModelFileError: Not a usable model file, or (IncompleteRunError) one from an
            unfinished training run while `config.force` is off.
        OutputFolderError: The output folder cannot be written.
    """
    model_path = resolve_model_path(config)
    check_model_file(model_path)
    if not config.force:
        check_run_complete(model_path)
    out_dir = pathlib.Path(config.out) if config.out else model_path.parent
    check_output_folder(out_dir)
    return model_path, out_dir


def check_model_file(path: pathlib.Path) -> None:
    """Refuses anything but a regular, bounded zip archive that holds a Keras model.

    Catches pipes and devices (which would block or read without end), empty files, files that
    are no zip archive, zip bombs (from the central directory, nothing decompressed), archives
    without Keras's config.json, and HDF5 weights that declare more than MAX_WEIGHT_BYTES.

    Raises:
        FileNotFoundError: Nothing there.
        ModelFileError: Naming the file and what is wrong with it.
    """
    what = "a Keras model (.keras)"
    try:
        size = input_files.check_regular_file(path, MAX_MODEL_BYTES, what)
    except input_files.InputFileError as error:
        raise ModelFileError(str(error)) from None
    if size == 0:
        raise ModelFileError(_not_loadable(path, "the file is empty (0 bytes)"))
    try:
        members = input_files.check_zip_archive(path, MAX_MODEL_BYTES, what)
    except input_files.InputFileError as error:
        raise ModelFileError(_not_loadable(path, str(error))) from None
    names = {member.filename for member in members}
    config_size = max((member.file_size for member in members if member.filename == "config.json"), default=0)
    if config_size > MAX_CONFIG_BYTES:
        raise ModelFileError(_not_loadable(path, f"its config.json declares {config_size:,} bytes, more than the "
                                                 f"{MAX_CONFIG_BYTES:,} accepted; refused unread"))
    if "config.json" not in names:
        listed = ", ".join(sorted(names)[:5]) or "nothing"
        raise ModelFileError(_not_loadable(path, f"a zip archive without Keras's config.json (it holds {listed})"))
    if not names.intersection(WEIGHT_MEMBERS):
        raise ModelFileError(_not_loadable(path, f"a zip archive without weights ({' or '.join(WEIGHT_MEMBERS)})"))
    if WEIGHT_MEMBERS[0] in names:
        _check_hdf5_weights(path, WEIGHT_MEMBERS[0])


def _not_loadable(path: pathlib.Path, message: str) -> str:
    reason = message.removeprefix(f"{path}: ")
    return f"{path}: not a loadable Keras model: {reason}"


def _check_hdf5_weights(path: pathlib.Path, member: str) -> None:
    """Sums the dataset sizes the weights file declares, without reading the datasets."""
    try:
        import h5py  # A Keras dependency; present wherever a .keras file can be loaded.
    except ImportError:
        return
    total = 0

    def add(_name, item) -> None:
        nonlocal total
        if isinstance(item, h5py.Dataset):
            total += int(item.size or 0) * item.dtype.itemsize

    try:
        # Keras stores its members uncompressed, so h5py's seeks within the member are cheap.
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream, h5py.File(stream, "r") as weights:
            weights.visititems(add)
    except Exception as error:  # h5py raises OSError, KeyError, ValueError, RuntimeError for bad files.
        raise ModelFileError(_not_loadable(path, f"its {member} is damaged ({type(error).__name__}: {error})")) from None
    if total > MAX_WEIGHT_BYTES:
        raise ModelFileError(_not_loadable(path, f"its {member} declares {total:,} bytes of weights, more than the "
                                                 f"{MAX_WEIGHT_BYTES:,} accepted; refused unread"))


def read_run_json(path: pathlib.Path) -> dict | None:
    """A run folder's JSON file (config.json, metrics.json) as a dict; None when absent or unreadable."""
    try:
        input_files.check_regular_file(path, MAX_RUN_JSON_BYTES, "a JSON file")
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError covers InputFileError, bad JSON and bad UTF-8.
        return None
    return value if isinstance(value, dict) else None


def run_status(model_path: pathlib.Path) -> tuple[bool | None, str]:
    """Whether the training run that wrote `model_path` finished.

    `digit-train` writes config.json before training and metrics.json (with "complete") after it,
    so a run folder with config.json but no usable metrics.json was killed or is still training.

    Returns:
        (True, "") for a finished run; (False, why) for an unfinished one; (None, "") when the
        folder is not a digit-train run (a model from elsewhere: nothing to check).
    """
    run_dir = model_path.parent
    metrics_path, config_path = run_dir / "metrics.json", run_dir / "config.json"
    if os.path.lexists(metrics_path):
        metrics = read_run_json(metrics_path)
        if metrics is None:
            return False, f"{metrics_path} is not readable JSON"
        if metrics.get("complete") is False or metrics.get("interrupted") is True:
            return False, str(metrics.get("incomplete_reason") or "training was interrupted")
        return True, ""
    if os.path.lexists(config_path):
        return False, "its folder has config.json but no metrics.json (killed, interrupted or still training)"
    return None, ""


def check_run_complete(model_path: pathlib.Path) -> None:
    """Refuses a model whose training run did not finish (see `run_status`).

    Raises:
        IncompleteRunError: Saying why and that `--force` overrides it.
    """
    complete, reason = run_status(model_path)
    if complete is False:
        raise IncompleteRunError(f"{model_path}: from a training run that did not finish: {reason}. The export "
                                 f"gate only compares TFLite with this model, so it would pass a half-trained "
                                 f"one; train again, or pass --force to export it anyway")


def check_output_folder(folder: pathlib.Path) -> None:
    """Creates `folder` when needed and proves it writable, before minutes of converting.

    Raises:
        OutputFolderError: Naming the folder and the reason.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".digitkit-write-check-"):
            pass
    except OSError as error:
        raise OutputFolderError(f"{folder}: cannot write the export there ({error.strerror or error})") from None


def check_model_shape(model, path: pathlib.Path) -> None:
    """Refuses a loaded model that cannot read MNIST digits: one (28, 28, 1) input, one (classes,) output.

    Raises:
        ModelFileError: Naming the shapes found.
    """
    inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelFileError(f"{path}: a Keras model with {len(inputs)} inputs and {len(outputs)} outputs; "
                             f"a digit model has one of each")
    input_shape, output_shape = tuple(inputs[0].shape), tuple(outputs[0].shape)
    fits = len(input_shape) == 4 and all(size in (None, wanted) for size, wanted in zip(input_shape[1:], (28, 28, 1)))
    if not fits:
        raise ModelFileError(f"{path}: a Keras model whose input is {input_shape}; a digit model reads "
                             f"(batch, 28, 28, 1)")
    if len(output_shape) != 2 or not output_shape[1] or output_shape[1] < 10:
        raise ModelFileError(f"{path}: a Keras model whose output is {output_shape}; a digit model gives "
                             f"(batch, classes) with a score for each of the ten digits at least")


@contextlib.contextmanager
def memory_capped(extra_bytes: int = LOAD_MEMORY_BYTES) -> Iterator[None]:
    """Lets the block grow this process's address space by at most `extra_bytes` (Linux, RLIMIT_AS).

    Keras builds a model from its config.json before reading any weight, so a config of a few KB
    that declares enormous layers would otherwise allocate them all. Under the cap an allocation
    past it fails (TensorFlow raises ResourceExhaustedError, Python MemoryError) instead of growing
    until the kernel kills the process. The previous limit is restored afterwards.
    """
    try:
        import resource
        current = _address_space_bytes()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):  # Not Linux: no cap, the file checks still apply.
        yield
        return
    limit = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft < limit:  # Never loosen a limit the user set.
        limit = soft
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocation refused under `memory_capped`."""
    return isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError"
