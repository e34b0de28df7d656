"""What a batch reads beyond plain files and folders: glob patterns, `--from-list` files, and URLs (through fsspec)."""

from __future__ import annotations

import glob
import os

from edge_runtime import imageio, reader as reader_module

_GLOB_CHARACTERS = frozenset("*?[")


def is_url(path: str) -> bool:
    """Whether `path` is an address such as https://host/a.jpg or s3://bucket/a.jpg (not a local path)."""
    scheme, separator, _ = path.partition("://")
    return bool(separator) and scheme.isascii() and scheme.replace("+", "").isalnum() and len(scheme) > 1


def expand_globs(paths) -> tuple[list[str], list[reader_module.ReadResult]]:
    """Expands each argument that holds `*`, `?` or `[` and is not itself an existing path (`**` recurses).

    A shell expands patterns before digit-infer sees them; a quoted pattern reaches here instead, which
    is the only way past the shell's argument-length limit for a million files.

    Returns:
        The paths, each pattern replaced by its sorted matches, and an error row per pattern matching nothing.
    """
    expanded, problems = [], []
    for raw in paths:
        path = os.fspath(raw)
        if is_url(path) or not _GLOB_CHARACTERS & set(path) or os.path.lexists(path):
            expanded.append(path)
            continue
        matches = _without_links_followed(path, sorted(glob.glob(path, recursive=True)))
        if matches:
            expanded.extend(matches)
        else:
            problems.append(reader_module.error_result(path, f"{path}: no file matches this pattern"))
    return expanded, problems


def _without_links_followed(pattern: str, matches: list[str]) -> list[str]:
    """The matches of `pattern` that do not go round a folder link back into a folder above it.

    Python's `**` follows folder links, so a link to a parent (`photos/up -> ..`) matched the same photo
    41 times over (`photos/up/photos/up/...`). Only such loops are dropped: a link to a folder elsewhere
    (`cams/cam1 -> ../store/cam1`) is followed as the shell's own patterns follow it.
    """
    looping: dict[str, bool] = {}

    def loops(folder: str) -> bool:
        if folder not in looping:
            target = os.path.realpath(folder) if os.path.islink(folder) else None
            parent = os.path.realpath(os.path.dirname(folder) or ".")
            looping[folder] = target is not None and (parent == target or parent.startswith(target.rstrip(os.sep) + os.sep))
        return looping[folder]

    kept = []
    for match in matches:
        parts = match.split(os.sep)
        if not any(loops(os.sep.join(parts[:end])) for end in range(1, len(parts))):
            kept.append(match)
    return kept


def read_list(list_file: str | os.PathLike) -> tuple[list[str], list[reader_module.ReadResult]]:
    """Reads a `--from-list` file: one path, folder, pattern or URL per line; blank lines and `#` comments skipped.

    Returns:
        The entries in order, each once, and an error row for each repeated entry (naming both lines),
        so that a list with duplicates still reads every file once and says which lines repeat.

    Raises:
        FileNotFoundError: The list file does not exist.
        ValueError: The list file is not UTF-8 text.
    """
    try:
        with open(list_file, encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{list_file}: not a UTF-8 text file of paths ({error.reason} at byte {error.start})") from None
    except IsADirectoryError:
        raise ValueError(f"{list_file}: is a folder; give a text file with one path per line") from None
    entries, problems, first_line = [], [], {}
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        key = entry if is_url(entry) else os.path.normpath(entry)
        if key in first_line:
            problems.append(reader_module.error_result(
                entry, f"{entry}: duplicate entry in {list_file}: line {number} repeats line {first_line[key]}; "
                       f"read once"))
            continue
        first_line[key] = number
        entries.append(entry)
    return entries, problems


def load_image_noted(path: str):
    """`imageio.load_image_noted` for a local path; for a URL, the bytes fetched with fsspec and decoded the same
    way (no note). fsspec earns its place here: one call for https, s3, gcs and the rest, and Dask brings it."""
    if not is_url(path):
        return imageio.load_image_noted(path)
    if path.startswith("file://"):  # fsspec would keep %20 and friends in the name.
        import urllib.parse
        import urllib.request

        return imageio.load_image_noted(urllib.request.url2pathname(urllib.parse.urlparse(path).path))
    try:
        import fsspec
    except ImportError:
        raise ValueError(f"{path}: reading URLs needs fsspec: pip install 'digitkit[cluster]'") from None
    try:
        with fsspec.open(path, "rb") as stream:
            data = stream.read()
    except (OSError, ValueError, ImportError) as error:  # ImportError: a scheme whose backend is missing (s3fs).
        raise ValueError(f"{path}: cannot fetch ({type(error).__name__}: {error})") from None
    return imageio.decode_image(data, path), ""


def gather(paths, from_list: str | os.PathLike | None = None,
           skip: str | os.PathLike | None = None) -> tuple[list[str], list[reader_module.ReadResult]]:
    """Every input of a batch: PATHS and the `--from-list` entries, patterns expanded, folders walked.

    Returns:
        The files and URLs to read (in the order given), and an error row per path that cannot be read
        at all (missing, no match, a repeated list line).
    """
    from edge_runtime import batch

    entries, problems = list(paths), []
    if from_list is not None:
        listed, problems = read_list(from_list)
        entries += listed
    entries, unmatched = expand_globs(entries)
    problems += unmatched
    found: list[str] = []
    local: list[str] = []

    def flush_local() -> None:
        files, missing = batch.discover(local, skip=skip)
        found.extend(files)
        problems.extend(missing)
        local.clear()

    for entry in entries:
        if is_url(entry):  # Fetched by the worker that reads it; not walked or checked here.
            flush_local()
            found.append(entry)
        else:
            local.append(entry)
    flush_local()
    return found, problems
