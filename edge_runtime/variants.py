"""`--model auto`: picks the fastest packaged variant of the digit model on this machine, and remembers it.

The same network ships in several exports (full int8, dynamic-range, float16). Which is fastest depends on
the CPU: on x86 with AMX, XNNPACK runs int8 convolutions on tiles that a 1-channel first layer mostly
wastes, while dynamic-range kernels have no AMX path; on a Pi's Cortex-A72 the int8 model wins. So the
first use on a machine times each variant for a few milliseconds, and the choice is cached under the user
cache folder, keyed by a CPU signature (model, flags, interpreter version) and the variants' files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

from edge_runtime import metadata

MODELS_DIR = pathlib.Path(__file__).parent / "models"
PRIMARY = "digitkit_int8.tflite"
# The order is the preference on a tie; the primary is always a candidate when it exists.
VARIANTS = (PRIMARY, "digitkit_dynamic.tflite", "digitkit_float16.tflite")
AUTO = "auto"
ENVIRONMENT_OVERRIDE = "DIGITKIT_VARIANT"  # e.g. DIGITKIT_VARIANT=int8: skip the timing, use that file.
# Each variant gets this much timed work; the choice needs the order, not a precise figure.
_BUDGET_SECONDS = 0.004
_ROUNDS = 3


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which model file `auto` resolved to, and why.

    Attributes:
        path: The model file to load.
        reason: One line for `-v`.
        timings_us: Microseconds per batch-1 `classify` call of each timed variant (file name -> µs).
        cached: Whether the choice came from the cache rather than a timing made now.
    """

    path: pathlib.Path
    reason: str
    timings_us: dict = dataclasses.field(default_factory=dict)
    cached: bool = False


def cache_file() -> pathlib.Path:
    """$XDG_CACHE_HOME/digitkit/variants.json, else ~/.cache/digitkit/variants.json."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base, "digitkit", "variants.json")


def cpu_signature() -> str:
    """What decides which kernels run: architecture, CPU model and feature flags, and the interpreter's version.

    Only os and zlib, which are loaded anyway: hashlib, platform and importlib.metadata would add about
    5 MB and a few ms to every `digit-infer` start that reads the cache.
    """
    import zlib

    fields = {"machine": os.uname().machine, "flags": ""}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu part", "hardware") and not fields.get(key):
                    fields[key] = value.strip()
                elif key in ("flags", "features") and not fields["flags"]:
                    fields["flags"] = value.strip()
                elif not line.strip() and fields["flags"]:
                    break  # The first processor's block describes them all.
    except OSError:
        pass  # Not Linux: the machine name is what there is.
    fields["interpreter"] = _interpreter_version()
    text = json.dumps(fields, sort_keys=True).encode()
    return f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}"


def candidates(models_dir: pathlib.Path = MODELS_DIR) -> tuple[list[pathlib.Path], list[str]]:
    """The variants present that were exported from the same network as the primary int8 model.

    A variant whose embedded description names another source run, seed, accuracy or label set (say, a
    dynamic export left over after the int8 model was replaced) is skipped, as is one without its export
    report (the proof that it matches the Keras model).

    Returns:
        The usable files, primary first, and one line per skipped file saying why.
    """
    primary = models_dir / PRIMARY
    if not primary.is_file():
        return [], [f"{primary}: missing"]
    reference = _identity(primary)
    usable, skipped = [primary], []
    for name in VARIANTS[1:]:
        path = models_dir / name
        if not path.is_file():
            continue
        report = path.with_name(path.name.replace(".tflite", ".report.json"))
        if not report.is_file():
            skipped.append(f"{name}: no export report beside it")
            continue
        try:
            passed = json.loads(report.read_text()).get("gate_passed", False)
            identity = _identity(path)
        except (OSError, ValueError) as error:
            skipped.append(f"{name}: unreadable ({error})")
            continue
        if not passed:
            skipped.append(f"{name}: its export report says the parity gate failed")
        elif identity != reference:
            skipped.append(f"{name}: exported from another network than {PRIMARY}")
        else:
            usable.append(path)
    return usable, skipped


def resolve(model: str | os.PathLike | None = AUTO, num_threads: int = 1, models_dir: pathlib.Path = MODELS_DIR,
            use_cache: bool = True) -> Choice:
    """The model file to load: `model` itself, or for None/"auto" the fastest packaged variant.

    Args:
        model: A path, or None/"auto".
        num_threads: Interpreter threads the reader will use (the choice is cached per thread count).
        models_dir: Where the packaged variants are.
        use_cache: Read and write the per-machine cache.
    """
    if model is not None and os.fspath(model) != AUTO:
        return Choice(pathlib.Path(model), "given with --model")
    usable, skipped = candidates(models_dir)
    note = f" (skipped: {'; '.join(skipped)})" if skipped else ""
    forced = os.environ.get(ENVIRONMENT_OVERRIDE, "").strip()
    if forced:
        for path in usable:
            if forced in (path.name, path.stem, path.stem.replace("digitkit_", "")):
                return Choice(path, f"{path.name}: forced by {ENVIRONMENT_OVERRIDE}={forced}{note}")
        names = ", ".join(path.stem.replace("digitkit_", "") for path in usable)
        raise ValueError(f"{ENVIRONMENT_OVERRIDE}={forced!r}: no such usable packaged variant; choose one of {names}")
    if len(usable) <= 1:
        path = usable[0] if usable else models_dir / PRIMARY
        return Choice(path, f"{path.name}: the only packaged variant{note}")
    key = f"{cpu_signature()}|threads={num_threads}|" + "|".join(
        f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in usable)
    store = cache_file()
    if use_cache:
        entry = _read_cache(store).get(key)
        by_name = {path.name: path for path in usable}
        if entry and entry.get("choice") in by_name:
            return Choice(by_name[entry["choice"]], _reason(entry["choice"], entry["timings_us"],
                                                            f"timed {entry.get('measured', '?')}, cached in {store}") + note,
                          entry["timings_us"], cached=True)
    timings = time_variants(usable, num_threads)
    best = min(usable, key=lambda path: timings[path.name])
    where = "not cached"
    if use_cache:
        where = f"cached in {store}" if _write_cache(store, key, best.name, timings) else f"could not write {store}"
    return Choice(best, _reason(best.name, timings, f"timed now, {where}") + note, timings)


def time_variants(paths: list[pathlib.Path], num_threads: int = 1) -> dict[str, float]:
    """Microseconds per batch-1 `classify` call of each model, interleaved so that load drifts hit all alike."""
    from edge_runtime.interpreter import DigitClassifier

    image = _probe_image()
    classifiers = {path.name: DigitClassifier(path, num_threads=num_threads) for path in paths}
    for classifier in classifiers.values():
        for _ in range(10):  # First calls pay for XNNPACK's packing and the caches.
            classifier.classify(image)
    # One interpreter thread runs in this thread, so its CPU time is the work itself, and a core taken
    # by another process does not count against whichever variant happened to run then. With more
    # threads the wall clock is what the user waits for.
    clock = time.thread_time if num_threads == 1 else time.perf_counter
    best = {name: float("inf") for name in classifiers}
    for _ in range(_ROUNDS):
        for name, classifier in classifiers.items():
            calls, started = 0, clock()
            while (elapsed := clock() - started) < _BUDGET_SECONDS / _ROUNDS:
                classifier.classify(image)
                calls += 1
            best[name] = min(best[name], elapsed / calls * 1e6)
    return {name: round(value, 2) for name, value in best.items()}


def _reason(choice: str, timings: dict, how: str) -> str:
    others = ", ".join(f"{name} {value:.1f} µs" for name, value in timings.items() if name != choice)
    return f"{choice}: fastest here, {timings[choice]:.1f} µs per digit against {others} ({how})"


def _identity(path: pathlib.Path) -> tuple:
    description = metadata.read_description(path.read_bytes())
    extra = description.extra
    return (description.labels, extra.get("source_run"), extra.get("training_seed"), extra.get("keras_test_accuracy"))


def _probe_image():
    """A centred stroke, like a 1: the timing does not depend on the pixels, but realistic ones cost nothing."""
    import numpy as np

    image = np.zeros((1, 28, 28), np.float32)
    image[0, 4:24, 13:15] = 1.0
    return image


def _interpreter_version() -> str:
    """The interpreter package and version, from the module itself (importlib.metadata costs memory)."""
    import importlib

    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return f"{name} {getattr(module, '__version__', 'unknown')}"
    return "unknown"


def _read_cache(store: pathlib.Path) -> dict:
    try:
        value = json.loads(store.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}  # Missing, unreadable or corrupt: time again.


def _write_cache(store: pathlib.Path, key: str, choice: str, timings: dict) -> bool:
    from edge_runtime import files

    entries = _read_cache(store)
    entries[key] = {"choice": choice, "timings_us": timings,
                    "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        files.write_json(store, entries)
        return True
    except OSError:
        return False  # A read-only home: choose again next time, never fail a reading over a cache.
