"""`--resume`: results appended record by record, the inputs an earlier run already wrote, and which model wrote them.

A resumable output is not written atomically (a temporary file renamed at the end, as `open_results` does):
a run killed at that point would lose everything. Instead each record is appended and flushed to the
operating system as soon as it is read, so a run killed at any moment (SIGKILL included) leaves every
complete record; a record cut in half by the kill is dropped when the run is resumed. The price: while a
run is going, or after it died, the output holds only part of the inputs, and a reader must not take it
for complete. Records are flushed, not fsynced: a power cut (rather than a killed process) may lose the
last records the disk had not yet written, which a resumed run reads again.

Which inputs are done: each row records the input's `size` (bytes) and `mtime_ns` (modification time);
an input whose path, size and mtime match a row is skipped. A file changed since (new size or time) is
read again and its new row appended: the last row of a path is the current one. Inputs that are not
files (missing paths, repeated `--from-list` lines, URLs) are matched by path alone.

Which model wrote them: a sidecar `OUTPUT.digitkit.json` holds the model's SHA-256, its path, the reading
options and the format. `--resume` against an output written with another model or other options is
refused with the reason, so one output never mixes two models' readings.

Parquet keeps its index in a footer and cannot be appended to, so a resumable Parquet run appends JSON
lines to a journal, `OUTPUT.partial.jsonl`, and merges it into `OUTPUT` (written atomically) when the run
ends, interrupted or not; after a SIGKILL the next `--resume` merges it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib

from edge_runtime import files, outputs

RESUMABLE_FORMATS = ("csv", "jsonl", "parquet")
RESUME_COLUMNS = ("size", "mtime_ns")
SIDECAR_SUFFIX = ".digitkit.json"
JOURNAL_SUFFIX = ".partial.jsonl"
# What must match for two runs to share one output.
_IDENTITY_FIELDS = (("model_sha256", "another model"), ("reading", "other reading options"),
                    ("format", "another format"))


class ResumeRefused(ValueError):
    """The output cannot be resumed by this run; the message says why and what to do."""


def run_identity(model_path, model_sha256: str, options, classifier_overrides, output_format: str) -> dict:
    """What a resumable output records about the run that writes it (the sidecar's content)."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("digitkit")
    except importlib.metadata.PackageNotFoundError:  # A checkout used without installing it.
        version = "unknown"
    # Threads change the speed, not the readings: a resumed run may use another count.
    reading = {key: value for key, value in dataclasses.asdict(options).items() if key != "num_threads"}
    return {"writer": "digit-infer", "digitkit_version": version, "format": output_format,
            "model": str(model_path), "model_sha256": model_sha256,
            "reading": {**reading, "classifier_overrides": {
                key: list(value) if isinstance(value, tuple) else value for key, value in classifier_overrides}},
            "columns": [*outputs.CSV_COLUMNS, *RESUME_COLUMNS]}


def input_key(path: str) -> tuple[str, int | None, int | None]:
    """(path as written in rows, size, mtime_ns); size and time are None for what is not a local file."""
    from edge_runtime import inputs

    if inputs.is_url(path):
        return outputs.display(path), None, None
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return outputs.display(path), None, None
    return outputs.display(path), status.st_size, status.st_mtime_ns


class ResumableResults:
    """An output continued across runs: knows what is done, appends the rest one flushed record at a time.

    Use: make it (checks and repairs the output), `skip_done` the inputs, then `with results:` write rows.

    Example:
        >>> results = ResumableResults("out.csv", "csv", identity)
        >>> files, problems, skipped = results.skip_done(files, problems)
        >>> with results:
        ...     for result in read(files): results.write(result)
    """

    def __init__(self, output: str | os.PathLike, output_format: str, identity: dict):
        """Checks that `output` (if any) was written by a resumable run of the same model and options,
        drops a record cut in half by a kill, and loads which inputs are done.

        Raises:
            ResumeRefused: Another model, other options or another format wrote it, or no resumable run did.
            ValueError: The format cannot be resumed (the table).
        """
        if output_format not in RESUMABLE_FORMATS:
            raise ValueError(f"--resume needs --format {', '.join(RESUMABLE_FORMATS[:-1])} or "
                             f"{RESUMABLE_FORMATS[-1]}, not {output_format!r}: a table cannot be appended to")
        self.output, self.format, self.identity = pathlib.Path(output), output_format, identity
        self.sidecar = self.output.with_name(self.output.name + SIDECAR_SUFFIX)
        self.journal = self.output.with_name(self.output.name + JOURNAL_SUFFIX)
        self.appended_to = self.journal if output_format == "parquet" else self.output
        self.done: set[tuple] = set()
        self.dropped_bytes = 0
        self.keys: dict[str, tuple] = {}
        self.problem_ids: set[int] = set()
        self.stream = self.csv = None
        self.rows_written = 0
        self.started = any(path.exists() and path.stat().st_size > 0 for path in (self.output, self.journal))
        if self.started:
            self._check_identity()
            self.dropped_bytes = truncate_partial_record(self.appended_to) if self.appended_to.exists() else 0
            self.done = self._load_done()

    # --- What is done ------------------------------------------------------------------------------------------

    def _check_identity(self) -> None:
        if not self.sidecar.is_file():
            raise ResumeRefused(f"--resume: {outputs.display(self.output)} was not written by a resumable run "
                                f"(no {self.sidecar.name} beside it), so which model wrote it is unknown; "
                                f"remove it or choose another --output")
        try:
            stored = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ResumeRefused(f"--resume: {outputs.display(self.sidecar)} cannot be read ({error}); "
                                f"remove the output and its sidecar, or choose another --output") from None
        for field, label in _IDENTITY_FIELDS:
            if stored.get(field) != self.identity[field]:
                raise ResumeRefused(f"--resume refused: {outputs.display(self.output)} was written with "
                                    f"{label}: {_describe(field, stored, self.identity)}; this run has "
                                    f"{_describe(field, self.identity, stored)}. Resuming would mix two runs' readings "
                                    f"in one output: use the same --model and options, or another --output")

    def _load_done(self) -> set[tuple]:
        done = set()
        if self.format == "csv" and self.output.exists():
            done.update(_csv_keys(self.output))
        if self.format == "jsonl" and self.output.exists():
            done.update(_jsonl_keys(self.output))
        if self.format == "parquet":
            if self.output.exists():
                done.update(_parquet_keys(self.output))
            if self.journal.exists():
                done.update(_jsonl_keys(self.journal))
        return done

    def skip_done(self, paths: list[str], problems: list) -> tuple[list[str], list, int]:
        """The inputs not yet in the output, and how many were skipped.

        Args:
            paths: The files (and URLs) to read.
            problems: Rows for inputs that cannot be read at all (missing paths, repeated list lines);
                they are recorded without size and time, and written once.
        """
        pending, skipped = [], 0
        for path in paths:
            key = input_key(path)
            if key in self.done:
                skipped += 1
            else:
                self.keys[path] = key
                pending.append(path)
        kept_problems = []
        for result in problems:
            if (outputs.display(result.source), None, None) in self.done:
                skipped += 1
            else:
                self.problem_ids.add(id(result))
                kept_problems.append(result)
        return pending, kept_problems, skipped

    # --- Writing -----------------------------------------------------------------------------------------------

    def __enter__(self):
        if not self.started:
            files.write_json(self.sidecar, self.identity)
        self.appended_to.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.stream = open(self.appended_to, "a", newline="", encoding="utf-8", errors="backslashreplace")
        except OSError as error:
            raise outputs.OutputRefused(f"--output {outputs.display(self.appended_to)}: cannot write there "
                                        f"({error.strerror or error})") from None
        if self.format == "csv":
            self.csv = csv.writer(self.stream)
            if self.stream.tell() == 0:
                self._append(lambda: self.csv.writerow([*outputs.CSV_COLUMNS, *RESUME_COLUMNS]))
        return self.stream

    def write(self, result) -> None:
        """Appends one result and flushes it, so a kill right after loses nothing."""
        if id(result) in self.problem_ids:
            size = mtime_ns = None
        else:
            _, size, mtime_ns = self.keys.get(result.source) or input_key(result.source)
        record = outputs.safe_record(result)
        if self.format == "csv":
            fields = [*outputs.csv_fields(record), "" if size is None else size, "" if mtime_ns is None else mtime_ns]
            self._append(lambda: self.csv.writerow(fields))
        else:
            line = json.dumps({**record, "size": size, "mtime_ns": mtime_ns}, allow_nan=False) + "\n"
            self._append(lambda: self.stream.write(line))
        self.rows_written += 1

    def _append(self, write) -> None:
        try:
            write()
            self.stream.flush()
        except OSError as error:
            raise outputs.OutputFailed(f"--output {outputs.display(self.appended_to)}: cannot append "
                                       f"({error.strerror or error}); every complete record so far is kept, "
                                       f"run again with --resume") from None

    def close(self) -> None:
        """Flushes (the rows are already with the operating system); the stream closes on leaving the block."""
        if self.stream is not None and not self.stream.closed:
            self._append(lambda: None)

    def __exit__(self, kind, error, traceback) -> None:
        if self.stream is not None:
            self.stream.close()
        # Merged after an interruption or a lost cluster too: only a failing disk leaves the journal for later.
        if self.format == "parquet" and (kind is None or not issubclass(kind, OSError)):
            merge_journal(self.output, self.journal, self.identity)


def merge_journal(output: pathlib.Path, journal: pathlib.Path, identity: dict) -> None:
    """Writes `output` (atomically) as its previous rows followed by the journal's, then removes the journal."""
    from edge_runtime import parquet_results

    if not journal.exists():
        return
    _, parquet = parquet_results.require_pyarrow()
    table_schema = parquet_results.schema(resumable=True, metadata=identity)
    with files.atomic_path(output) as temporary:
        with parquet.ParquetWriter(temporary, table_schema) as writer:
            if output.exists():
                for batch in parquet.ParquetFile(output).iter_batches(batch_size=parquet_results.ROW_GROUP_ROWS):
                    writer.write_batch(batch.cast(table_schema.remove_metadata()) if batch.schema != table_schema
                                       else batch)
            pending = []
            for record in _jsonl_records(journal):
                pending.append(record)
                if len(pending) >= parquet_results.ROW_GROUP_ROWS:
                    writer.write_table(parquet_results.to_table(pending, table_schema))
                    pending = []
            if pending or not output.exists():
                writer.write_table(parquet_results.to_table(pending, table_schema))
    journal.unlink()


def truncate_partial_record(path: pathlib.Path) -> int:
    """Cuts a last line that has no newline (a record a kill cut in half); returns the bytes dropped."""
    with open(path, "r+b") as stream:
        end = stream.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - 65536)
            stream.seek(start)
            block = stream.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep < end:
            stream.truncate(keep)
        return end - keep


def _key(path, size, mtime_ns) -> tuple:
    return path, None if size in (None, "") else int(size), None if mtime_ns in (None, "") else int(mtime_ns)


def _csv_keys(path: pathlib.Path):
    expected = [*outputs.CSV_COLUMNS, *RESUME_COLUMNS]
    with open(path, newline="", encoding="utf-8") as stream:
        rows = csv.reader(stream)
        header = next(rows, None)
        if header is None:
            return
        if header != expected:
            raise ResumeRefused(f"--resume: {outputs.display(path)} has columns {','.join(header)}, not those of a "
                                f"resumable CSV ({','.join(expected)})")
        for number, row in enumerate(rows, start=2):
            if len(row) != len(expected):
                raise ResumeRefused(f"--resume: {outputs.display(path)} line {number}: {len(row)} fields, "
                                    f"expected {len(expected)}; the file was changed by something else")
            yield _key(row[0], row[-2], row[-1])


def _jsonl_records(path: pathlib.Path):
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            try:
                yield json.loads(line)
            except ValueError:
                raise ResumeRefused(f"--resume: {outputs.display(path)} line {number} is not a JSON record; "
                                    f"the file was changed by something else") from None


def _jsonl_keys(path: pathlib.Path):
    for record in _jsonl_records(path):
        yield _key(record.get("path"), record.get("size"), record.get("mtime_ns"))


def _parquet_keys(path: pathlib.Path):
    from edge_runtime import parquet_results

    _, parquet = parquet_results.require_pyarrow()
    table = parquet.read_table(path, columns=["path", *RESUME_COLUMNS])
    yield from zip(*(table.column(name).to_pylist() for name in ("path", *RESUME_COLUMNS)))


def _describe(field: str, identity: dict, other: dict) -> str:
    if field == "model_sha256":
        return f"{identity.get('model')} (SHA-256 {str(identity.get('model_sha256'))[:12]}…)"
    if field == "reading":
        mine, theirs = identity.get("reading") or {}, other.get("reading") or {}
        return ", ".join(f"{key}={mine.get(key)!r}" for key in sorted({*mine, *theirs})
                         if mine.get(key) != theirs.get(key))
    return repr(identity.get(field))
