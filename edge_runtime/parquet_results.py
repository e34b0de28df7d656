"""`--format parquet`: the typed schema of the result rows (the CSV columns) and a writer that streams row groups."""

from __future__ import annotations

import json
import sys

from edge_runtime import outputs

# Row groups of this many results: a few MB each, so memory stays flat and readers can skip groups.
ROW_GROUP_ROWS = 16_384
METADATA_KEY = b"digitkit"
RESUME_COLUMNS = ("size", "mtime_ns")


def require_pyarrow():
    """Imports pyarrow and pyarrow.parquet, or raises MissingExtra naming the [cluster] extra."""
    from edge_runtime import optional

    return optional.require("pyarrow", "--format parquet"), optional.require("pyarrow.parquet", "--format parquet")


def schema(resumable: bool = False, metadata: dict | None = None):
    """The CSV columns, typed: confidences a list of doubles, boxes a list of [x, y, width, height] int32.

    Args:
        resumable: Add `size` and `mtime_ns` (int64, null for inputs that are not files), as resumable
            CSV and JSON lines do.
        metadata: Stored as JSON under the `digitkit` key of the file's metadata (the run's identity).
    """
    pyarrow, _ = require_pyarrow()
    fields = [("path", pyarrow.string()), ("digits", pyarrow.string()), ("confidence", pyarrow.float64()),
              ("status", pyarrow.string()), ("error", pyarrow.string()),
              ("confidences", pyarrow.list_(pyarrow.float64())),
              ("boxes", pyarrow.list_(pyarrow.list_(pyarrow.int32())))]
    if resumable:
        fields += [(name, pyarrow.int64()) for name in RESUME_COLUMNS]
    return pyarrow.schema(fields, metadata={METADATA_KEY: json.dumps(metadata or {"writer": "digit-infer"})})


def to_table(records: list[dict], table_schema):
    """Result records (`outputs.safe_record`, plus size and mtime_ns when resumable) as a pyarrow Table."""
    pyarrow, _ = require_pyarrow()
    columns = {name: [record.get(name) for record in records] for name in table_schema.names}
    columns["boxes"] = [[list(box) for box in boxes] for boxes in columns["boxes"]]
    return pyarrow.Table.from_pydict(columns, schema=table_schema)


class ParquetResultWriter(outputs.ResultWriter):
    """Writes results into a Parquet file on `stream`'s binary buffer, a row group at a time.

    The file is valid only once closed (Parquet keeps its index in a footer): `open_results` renames it into
    place at the end. Resumable runs write rows to a journal instead (edge_runtime/resume.py).
    """

    def __init__(self, stream, output_format: str = "parquet", all_paths=(), metadata: dict | None = None):
        if stream is sys.stdout and sys.stdout.isatty():
            raise outputs.OutputRefused("--format parquet writes a binary file: give --output FILE.parquet "
                                        "(or redirect stdout to a file)")
        _, parquet = require_pyarrow()
        self.stream, self.format = stream, output_format
        self.schema = schema(metadata=metadata)
        self.pending: list[dict] = []
        self.writer = parquet.ParquetWriter(getattr(stream, "buffer", stream), self.schema)

    def write(self, result) -> None:
        self.pending.append(outputs.safe_record(result))
        if len(self.pending) >= ROW_GROUP_ROWS:
            self._flush_rows()

    def _flush_rows(self) -> None:
        if self.pending:
            self._guard(self.writer.write_table, to_table(self.pending, self.schema))
            self.pending = []

    def close(self) -> None:
        """Writes the last row group and the footer; the file is complete after this."""
        self._flush_rows()
        self._guard(lambda _: self.writer.close(), None)
        self._guard(lambda _: getattr(self.stream, "buffer", self.stream).flush(), None)
