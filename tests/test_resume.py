"""`digit-infer --resume`, `--from-list`, patterns and `--format parquet`: every input exactly once, whatever killed the run."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import cv2
import pytest
from click.testing import CliRunner

from conftest import REPO, SAMPLES
from edge_runtime import batch, cli, constants, reader as reader_module, resume

MODEL = REPO / "edge_runtime" / "models" / "digitkit_int8.tflite"


def make_folder(root: pathlib.Path, mnist, count: int, name: str = "my scans") -> pathlib.Path:
    folder = root / name
    folder.mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(folder / f"{index:05d}.png"), mnist.test_images[index])
    return folder


def rows(path: pathlib.Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def infer(*arguments):
    return CliRunner().invoke(cli.main, [str(argument) for argument in arguments])


def test_resume_skips_what_is_done_and_appends_the_rest(tmp_path, mnist):
    folder = make_folder(tmp_path, mnist, 40)
    output = tmp_path / "out dir" / "read ings.csv"
    first = infer(*sorted(folder.glob("000[0-1]*.png")), "--format", "csv", "--output", output, "--resume")
    assert first.exit_code == 0, first.output
    assert len(rows(output)) == 20
    second = infer(folder, "--format", "csv", "--output", output, "--resume")
    assert second.exit_code == 0, second.output
    assert "20 inputs already in" in second.output and "20 to read" in second.output
    written = rows(output)
    assert sorted(row["path"] for row in written) == sorted(str(path) for path in folder.glob("*.png"))
    assert list(written[0]) == [*cli.CSV_COLUMNS, "size", "mtime_ns"]
    stat = os.stat(written[0]["path"])
    assert (int(written[0]["size"]), int(written[0]["mtime_ns"])) == (stat.st_size, stat.st_mtime_ns)
    # Identical to a plain run, apart from the two columns.
    plain = infer(folder, "--format", "csv", "--output", tmp_path / "plain.csv")
    assert plain.exit_code == 0
    strip = [{key: value for key, value in row.items() if key not in resume.RESUME_COLUMNS} for row in written]
    assert sorted(strip, key=lambda row: row["path"]) == rows(tmp_path / "plain.csv")
    # A file changed since is read again; its newest row comes last.
    changed = folder / "00003.png"
    os.utime(changed, ns=(1, 1))
    third = infer(folder, "--format", "csv", "--output", output, "--resume")
    assert third.exit_code == 0 and "1 to read" in third.output
    assert [row["path"] for row in rows(output)].count(str(changed)) == 2


def test_a_record_cut_in_half_is_dropped_and_read_again(tmp_path, mnist):
    folder = make_folder(tmp_path, mnist, 12)
    output = tmp_path / "out.jsonl"
    assert infer(folder, "--format", "jsonl", "--output", output, "--resume").exit_code == 0
    lines = output.read_bytes().splitlines(keepends=True)
    output.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # What a kill in the middle of a write leaves.
    again = infer(folder, "--format", "jsonl", "--output", output, "--resume")
    assert again.exit_code == 0, again.output
    assert "dropped a record cut short" in again.output and "1 to read" in again.output
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(record["path"] for record in records) == sorted(str(path) for path in folder.glob("*.png"))


def test_resume_refuses_another_model_or_options_and_says_why(tmp_path):
    output = tmp_path / "out.csv"
    assert infer(SAMPLES, "--format", "csv", "--output", output, "--resume", "--model", MODEL).exit_code == 0
    other = tmp_path / "other model.tflite"
    other.write_bytes(MODEL.read_bytes() + bytes(8))  # Same network, another file: another SHA-256.
    refused = infer(SAMPLES, "--format", "csv", "--output", output, "--resume", "--model", other)
    assert refused.exit_code == 2
    assert "written with another model" in refused.output and "SHA-256" in refused.output
    options = infer(SAMPLES, "--format", "csv", "--output", output, "--resume", "--model", MODEL, "--single")
    assert options.exit_code == 2 and "single=False" in options.output
    table = infer(SAMPLES, "--output", tmp_path / "t.txt", "--resume")
    assert table.exit_code == 2 and "table cannot be appended" in table.output
    plain = tmp_path / "plain.csv"
    assert infer(SAMPLES, "--format", "csv", "--output", plain, "--model", MODEL).exit_code == 0
    unknown = infer(SAMPLES, "--format", "csv", "--output", plain, "--resume", "--model", MODEL)
    assert unknown.exit_code == 2 and "not written by a resumable run" in unknown.output


def test_sigkill_then_resume_reads_every_input_exactly_once(tmp_path, mnist):
    folder = make_folder(tmp_path, mnist, 1200)
    output = tmp_path / "killed run.csv"
    command = [sys.executable, "-m", "edge_runtime.cli", str(folder), "--format", "csv", "--output", str(output),
               "--resume", "--workers", "2", "--model", str(MODEL)]
    driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline, killed_at = time.monotonic() + 120, None
    while driver.poll() is None and time.monotonic() < deadline:
        if output.exists() and output.read_bytes().count(b"\n") > 200:
            os.killpg(driver.pid, signal.SIGKILL)  # The driver and its worker pool, at once.
            killed_at = output.read_bytes().count(b"\n") - 1
            break
        time.sleep(0.01)
    driver.wait(timeout=30)
    assert killed_at is not None and killed_at < 1200, "the run ended before it could be killed"
    resumed = infer(folder, "--format", "csv", "--output", output, "--resume", "--workers", "2", "--model", MODEL)
    assert resumed.exit_code == 0, resumed.output
    paths = [row["path"] for row in rows(output)]
    assert sorted(paths) == sorted(str(path) for path in folder.glob("*.png"))  # Exactly once each.
    expected = {result.source: result.to_record()["digits"]
                for result in batch.read_files(batch.BatchJob(MODEL.as_posix(), reader_module.ReaderOptions(
                    min_confidence=constants.CLI_MIN_CONFIDENCE)), sorted(paths))}  # as digit-infer reads
    assert {row["path"]: row["digits"] for row in rows(output)} == expected


def test_from_list_reports_missing_and_repeated_lines_as_rows_and_patterns_expand(tmp_path, mnist):
    folder = make_folder(tmp_path, mnist, 6)
    listing = tmp_path / "list of scans.txt"
    listing.write_text(f"# scans\n{folder / '00000.png'}\n{folder / '00001.png'}\n\n{folder / 'gone.png'}\n"
                       f"{folder / '00000.png'}\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    result = infer("--from-list", listing, str(folder / "0000[2-3].png"), str(folder / "nothing*.png"),
                   "--format", "csv", "--output", output, "--resume")
    assert result.exit_code == 1, result.output
    by_path = {}
    for row in rows(output):
        by_path.setdefault(row["path"], []).append(row)
    duplicate = [row for row in by_path[str(folder / "00000.png")] if row["status"] == "error"]
    assert len(duplicate) == 1 and "line 6 repeats line 2" in duplicate[0]["error"]
    assert "no such file" in by_path[str(folder / "gone.png")][0]["error"]
    assert "no file matches" in by_path[str(folder / "nothing*.png")][0]["error"]
    assert {str(folder / f"0000{index}.png") for index in range(4)} <= set(by_path)
    again = infer("--from-list", listing, str(folder / "0000[2-3].png"), str(folder / "nothing*.png"),
                  "--format", "csv", "--output", output, "--resume")
    assert "0 to read" in again.output  # Error rows count as done: each input once, even a repeated line.


def test_parquet_has_the_csv_columns_typed_and_resumes(tmp_path, mnist):
    parquet = pytest.importorskip("pyarrow.parquet")
    folder = make_folder(tmp_path, mnist, 30)
    plain = tmp_path / "plain.parquet"
    assert infer(folder, SAMPLES, "--format", "parquet", "--output", plain).exit_code == 0
    table = parquet.read_table(plain)
    assert table.column_names == list(cli.CSV_COLUMNS)
    assert str(table.schema.field("confidence").type) == "double"
    assert str(table.schema.field("boxes").type) == "list<element: list<element: int32>>"
    read = next(row for row in table.to_pylist() if row["boxes"])
    assert len(read["boxes"]) == len(read["confidences"]) and all(len(box) == 4 for box in read["boxes"])
    output = tmp_path / "resumed.parquet"
    assert infer(*sorted(folder.glob("*.png"))[:10], "--format", "parquet", "--output", output, "--resume").exit_code == 0
    assert not output.with_name(output.name + resume.JOURNAL_SUFFIX).exists()  # Merged at the end of the run.
    assert infer(folder, SAMPLES, "--format", "parquet", "--output", output, "--resume").exit_code == 0
    resumed = parquet.read_table(output)
    assert resumed.column_names == [*cli.CSV_COLUMNS, *resume.RESUME_COLUMNS]
    assert sorted(resumed.column("path").to_pylist()) == sorted(table.column("path").to_pylist())
    assert sorted(resumed.drop_columns(list(resume.RESUME_COLUMNS)).to_pylist(), key=lambda row: row["path"]) == \
        sorted(table.to_pylist(), key=lambda row: row["path"])


def test_list_entries_may_be_urls_read_through_fsspec(tmp_path, mnist):
    fsspec = pytest.importorskip("fsspec")
    folder = make_folder(tmp_path, mnist, 3)
    fsspec.filesystem("memory").pipe("/bucket/scan.png", (folder / "00001.png").read_bytes())
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{(folder / '00000.png').as_uri()}\nmemory://bucket/scan.png\nfile:///nowhere/missing.png\n"
                       f"memory://bucket/gone.png\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    result = infer("--from-list", listing, "--format", "csv", "--output", output, "--resume")
    assert result.exit_code == 1, result.output
    from_file, from_memory, missing, gone = rows(output)
    local = infer(folder / "00000.png", folder / "00001.png", "--format", "csv", "--output", tmp_path / "local.csv")
    assert local.exit_code == 0
    assert [from_file["digits"], from_memory["digits"]] == [row["digits"] for row in rows(tmp_path / "local.csv")]
    assert from_memory["size"] == from_memory["mtime_ns"] == ""  # URLs are matched by address alone.
    assert missing["status"] == "error" and "missing.png" in missing["error"]
    assert gone["status"] == "error" and "cannot fetch" in gone["error"]
    assert "0 to read" in infer("--from-list", listing, "--format", "csv", "--output", output, "--resume").output
