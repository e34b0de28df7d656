"""`digit-eval` usage: stale figures, --out folders it cannot write, an image as DATA, spreadsheet-edited CSVs."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime import eval_cli, evaluate, labelled


def _eval(*arguments):
    return CliRunner().invoke(eval_cli.main, [str(argument) for argument in arguments])


def _digit_png(path: pathlib.Path, digit: int) -> pathlib.Path:
    """A 28x28 white-on-black digit, the model's own input."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((28, 28), np.uint8)
    cv2.putText(image, str(digit), (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    path.write_bytes(cv2.imencode(".png", image)[1].tobytes())  # cv2.imwrite crashes on names that are not UTF-8.
    return path


@pytest.fixture
def crops(tmp_path) -> pathlib.Path:
    """A labelled folder as `--save-crops` writes it, in a path with spaces: crops/x1..x3.png and labels.csv."""
    root = tmp_path / "crops dir"
    for digit in (1, 2, 3):
        _digit_png(root / "crops" / f"x{digit}.png", digit)
    (root / "labels.csv").write_text("path,label\n" + "".join(f"crops/x{d}.png,{d}\n" for d in (1, 2, 3)),
                                     encoding="utf-8")
    return root


def _one_line_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and all(part in errors[0] for part in parts), result.output


# --- 1. A report folder never holds a figure its report does not refer to -------------------------------------


def test_a_figure_from_an_earlier_run_is_removed(crops, tmp_path):
    out = tmp_path / "ev 2"
    wrong = tmp_path / "wrong labels"
    (wrong / "labels.csv").parent.mkdir()
    (wrong / "labels.csv").write_text("path,label\n" + "".join(f"{crops}/crops/x{d}.png,{(d + 5) % 10}\n"
                                                               for d in (1, 2, 3)), encoding="utf-8")
    first = _eval("default", wrong, "--out", out)
    assert first.exit_code == 0, first.output
    mistakes = json.loads((out / "report.json").read_text())["worst_errors"]
    assert mistakes and (out / "worst_errors.png").is_file()
    # Label each crop as the model reads it: the second run has no mistake, so no figure.
    (crops / "labels.csv").write_text("path,label\n" + "".join(f"{row['path']},{row['predicted']}\n"
                                                               for row in mistakes), encoding="utf-8")
    second = _eval("default", crops, "--out", out)
    assert second.exit_code == 0, second.output
    report = json.loads((out / "report.json").read_text())
    assert report["models"][0]["accuracy"] == 1.0 and report["worst_errors"] == []
    assert report["files"]["worst_errors"] is None
    assert not (out / "worst_errors.png").exists()
    assert "worst_errors.png" not in (out / "report.md").read_text() and "worst_errors" not in second.output


def test_worst_zero_writes_no_figure_and_removes_an_old_one(crops, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "worst_errors.png").write_bytes(b"an old figure")
    (crops / "labels.csv").write_text("path,label\ncrops/x1.png,7\n", encoding="utf-8")
    result = _eval("default", crops, "--out", out, "--worst", "0")
    assert result.exit_code == 0, result.output
    assert not (out / "worst_errors.png").exists()


# --- 2. An --out folder the reports cannot go into: one line, exit 2, before evaluating ------------------------


@pytest.mark.parametrize("name", ["report.json", "report.md", "worst_errors.png"])
def test_a_folder_where_a_report_goes_is_refused_up_front(crops, tmp_path, name):
    out = tmp_path / "o dirclash"
    (out / name).mkdir(parents=True)
    result = _eval("default", crops, "--out", out)
    _one_line_error(result, "--out", str(out / name), "is a folder")
    assert sorted(path.name for path in out.iterdir()) == [name]  # Nothing evaluated, nothing written.


def test_an_out_folder_under_a_file_is_refused(crops, tmp_path):
    (tmp_path / "a file").write_text("x")
    result = _eval("default", crops, "--out", tmp_path / "a file" / "reports")
    _one_line_error(result, "--out", "a file is a file, not a folder")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere; POSIX modes")
def test_a_read_only_out_folder_is_refused(crops, tmp_path):
    out = tmp_path / "read only"
    out.mkdir()
    out.chmod(0o555)
    try:
        _one_line_error(_eval("default", crops, "--out", out), "cannot write there")
        _one_line_error(_eval("default", crops, "--out", out / "sub"), "not writable")
    finally:
        out.chmod(0o755)


def test_a_folder_that_refuses_the_probe_file_is_refused(crops, tmp_path, monkeypatch):
    def refused(**kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(evaluate.tempfile, "TemporaryFile", refused)  # What a read-only folder does, even as root.
    _one_line_error(_eval("default", crops, "--out", tmp_path / "out"), "cannot write there", "Permission denied")


def test_a_failed_write_is_exit_3_and_one_line(crops, tmp_path, monkeypatch):
    def full_disk(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(evaluate.files, "write_bytes", full_disk)
    result = _eval("default", crops, "--out", tmp_path / "out")
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert "cannot write the reports" in result.output and "No space left" in result.output


def test_help_lists_every_exit_code():
    text = _eval("--help").output
    assert "2  bad usage" in text and "--out folder the reports cannot go into" in text
    assert "3  evaluated, but the reports could not be written" in text


# --- 3. Not a labels CSV: an image, a model, binary data --------------------------------------------------------


def test_an_image_as_data_names_the_folder_to_give(crops):
    result = _eval("default", crops / "crops" / "x1.png")
    _one_line_error(result, "x1.png is an image, not a labelled folder or labels CSV",
                    "give the folder holding labels.csv (digit-infer --save-crops writes one)", str(crops))
    assert "utf-8" not in result.output and "codec" not in result.output


def test_an_image_named_csv_and_a_model_are_recognised_by_their_bytes(crops, tmp_path):
    disguised = tmp_path / "labels.csv"
    disguised.write_bytes((crops / "crops" / "x1.png").read_bytes())
    _one_line_error(_eval("default", disguised), "labels.csv is an image")
    from edge_runtime.reader import DEFAULT_MODEL

    _one_line_error(_eval("default", DEFAULT_MODEL), "is a TFLite model", "give the model as MODEL")


def test_binary_data_says_where_and_what(tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(b"path,label\nab\x00cd\n")
    _one_line_error(_eval("default", data), "not a text CSV but binary data", "byte 0x00 on line 2, column 3")


def test_a_binary_labels_csv_in_a_folder_is_a_warning(crops, tmp_path):
    (crops / "labels.csv").write_bytes(b"\x00\x01\x02")
    _digit_png(crops / "4" / "a.png", 4)
    result = _eval("default", crops, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "labels.csv: not a text CSV but binary data" in result.output


def test_other_text_that_is_not_utf8_says_which_line_and_byte(tmp_path):
    data = tmp_path / "notes.txt"
    data.write_bytes(b"Gr\xfc\xdfe\n")
    _one_line_error(_eval("default", data), "the header is ['Gr\u00fc\u00dfe']", "byte 0xfc on line 1, column 3")


# --- 4. Spreadsheet-edited CSVs ---------------------------------------------------------------------------------


ROWS = [("crops/x1.png", "1"), ("crops/x2.png", "2"), ("crops/x3.png", "3")]


def _csv(header: str, delimiter: str = ",", extra: str = "") -> str:
    return header + "\n" + "".join(f"{path}{delimiter}{label}{extra}\n" for path, label in ROWS)


@pytest.mark.parametrize("content", [
    _csv("Path,Label").encode(),
    _csv(" PATH , label ,Notes", extra=",ok").encode(),
    _csv("path;label", ";").encode(),
    b"\xef\xbb\xbf" + _csv("Path;Label;Note", ";", ";x").encode(),  # Excel "CSV UTF-8" in a comma-decimal locale
    _csv("path\tlabel", "\t").encode(),
    _csv("Path\tLabel", "\t").encode("utf-16"),  # Excel "Unicode text"
    _csv('"path";"label"', ";").replace("\n", "\r\n").encode(),
], ids=["capitalised", "spaces", "semicolons", "bom-semicolons", "tabs", "utf16-tabs", "quoted-crlf"])
def test_spreadsheet_csvs_are_read(crops, tmp_path, content):
    (crops / "labels.csv").write_bytes(content)
    result = _eval("default", crops, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == 3 and report["skipped"] == []


def test_windows_1252_is_read_with_a_warning_naming_the_line(crops, tmp_path):
    text = "Path;Label;Note\ncrops/x1.png;1;ok\ncrops/x2.png;2;caf\xe9 \u201cquoted\u201d\n\ncrops/gone.png;3;\n"
    (crops / "labels.csv").write_bytes(text.encode("cp1252"))
    result = _eval("default", crops, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == 2
    warning = next(text for text in report["skipped"] if "not UTF-8" in text)
    assert "labels.csv" in warning and "byte 0xe9 on line 3" in warning and "Windows-1252" in warning
    assert "caf\u00e9 \u201cquoted\u201d" in warning
    assert any("row 5" in text and "gone.png" in text for text in report["skipped"])  # lines, blank ones counted


def test_a_path_that_is_not_utf8_is_found_as_written_or_reported(tmp_path):
    folder = tmp_path / "spread sheet"
    _digit_png(folder / "caf\u00e9.png", 1)  # The name a Windows user sees; its CSV cell is cp1252.
    rows = [b"path,label", b"caf\xe9.png,1", b"missing-\xe9.png,2"]
    if sys.platform == "linux":  # A name that is not UTF-8 on disk: found by its bytes, not renamed.
        _digit_png(pathlib.Path(os.fsdecode(os.fsencode(folder) + b"/na\xefve.png")), 2)
        rows.append(b"na\xefve.png,2")
    (folder / "labels.csv").write_bytes(b"\n".join(rows) + b"\n")
    loaded = labelled.load(folder)
    assert {item.path.name for item in loaded.items} >= {"caf\u00e9.png"}
    assert len(loaded.items) == len(rows) - 2
    assert any("row 3" in text and "not UTF-8" in text and "missing-\u00e9.png" in text for text in loaded.warnings)
    result = _eval("default", folder, "--out", tmp_path / "out")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "missing-\\xe9.png" in result.output  # Printed, not a UnicodeEncodeError.


@pytest.mark.parametrize("header, message", [
    ("path|label", "separated by commas, semicolons or tabs"),
    ("path,Path,label", "names the column 'path' more than once"),
])
def test_headers_that_are_still_refused(tmp_path, header, message):
    data = tmp_path / "list.csv"
    data.write_text(f"{header}\nx.png,1\n", encoding="utf-8")
    _one_line_error(_eval("default", data), message)


def test_collecting_into_a_spreadsheet_saved_labels_csv_keeps_its_rows(tmp_path):
    from edge_runtime import collect

    folder = tmp_path / "to label"
    folder.mkdir()
    (folder / "labels.csv").write_bytes("Path;Label;Note\ncrops/a.png;7;caf\xe9\n".encode("cp1252"))
    collector = collect.Collector(collect.CollectOptions(str(folder), every_read=True))
    collector.close()
    columns, rows = labelled.read_csv_rows(folder / "labels.csv")
    assert columns[:2] == ["path", "label"] and rows[0]["path"] == "crops/a.png" and rows[0]["label"] == "7"
    assert rows[0]["note"] == "café"


def test_collecting_into_an_empty_labels_csv_and_from_a_non_utf8_file_name(tmp_path):
    from edge_runtime import cli

    folder = tmp_path / "to label"
    folder.mkdir()
    (folder / "labels.csv").write_bytes(b"")  # an empty file to start from
    photos = tmp_path / "photos"
    photos.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # not UTF-8: Python keeps the byte as a surrogate escape
    image = np.full((120, 120), 255, np.uint8)
    cv2.putText(image, "7", (30, 95), cv2.FONT_HERSHEY_SIMPLEX, 3, 0, 8)
    (photos / name).write_bytes(cv2.imencode(".png", image)[1].tobytes())  # cv2.imwrite crashes on such names
    result = CliRunner().invoke(cli.main, [str(photos / name), "--save-crops", str(folder)])
    assert result.exit_code == 0, result.output
    loaded = labelled.load(folder)
    assert len(loaded.items) == 1 and loaded.items[0].label == "7"
    assert (folder / "labels.csv").read_bytes().count(b"caf\xe9") >= 1  # the file's own bytes
