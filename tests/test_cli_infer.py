"""`digit-infer` through click's CliRunner: formats, outputs, overlays, bad input, exit codes, golden readings."""

import csv
import io
import json
import os
import pathlib
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from edge_runtime import batch, cli, reader

GOLDEN = json.loads((SAMPLES.parent / "tests" / "golden" / "samples.json").read_text())


def _invoke(*arguments):
    return CliRunner().invoke(cli.main, [str(argument) for argument in arguments])


@pytest.fixture()
def mixed_folder(tmp_path):
    """A folder with spaces in its path: two good photos, an empty file, a text file, a truncated JPEG."""
    folder = tmp_path / "my scans"
    (folder / "nested").mkdir(parents=True)
    good = sorted(name for name, reading in GOLDEN.items() if reading["status"] == "ok")[:2]
    shutil.copy(SAMPLES / good[0], folder / good[0])
    shutil.copy(SAMPLES / good[1], folder / "nested" / good[1])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("shopping list: milk, eggs")
    (folder / "cut.jpg").write_bytes((SAMPLES / good[0]).read_bytes()[:300])
    (folder / "readme.txt").write_text("not an image suffix: ignored")
    return folder, good


def test_samples_match_the_golden_readings():
    result = _invoke(SAMPLES, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = {os.path.basename(row["path"]): row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == set(GOLDEN)
    for name, expected in GOLDEN.items():
        assert (rows[name]["digits"], rows[name]["status"]) == (expected["digits"], expected["status"]), name
        assert rows[name]["confidence"] == pytest.approx(expected["confidence"], abs=0.02), name


def test_a_batch_goes_on_past_bad_files_and_exits_1(mixed_folder):
    folder, good = mixed_folder
    result = _invoke(folder, "--format", "csv")
    assert result.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[:4] == ["path", "digits", "confidence", "status"]
    by_name = {os.path.basename(row["path"]): row for row in rows}
    assert set(by_name) == {*good, "empty.png", "notes.jpg", "cut.jpg"}
    for name in good:
        assert by_name[name]["status"] == "ok" and by_name[name]["digits"] == GOLDEN[name]["digits"]
    for name in ("empty.png", "notes.jpg", "cut.jpg"):
        assert by_name[name]["status"] == "error" and name in by_name[name]["error"]
    assert "empty" in by_name["empty.png"]["error"]
    assert "3 error" in result.stderr and "2 ok" in result.stderr


def test_output_file_and_overlays_in_paths_with_spaces(mixed_folder, tmp_path):
    folder, good = mixed_folder
    output, overlays = tmp_path / "out put" / "readings.jsonl", tmp_path / "over lays"
    result = _invoke(folder / good[0], "--format", "jsonl", "--output", output, "--save-overlays", overlays)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    row = json.loads(output.read_text())
    assert row["digits"] == GOLDEN[good[0]]["digits"] and len(row["boxes"]) == len(row["digits"])
    written = list(overlays.rglob("*.overlay.*"))
    assert len(written) == 1 and cv2.imread(str(written[0])) is not None
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_min_confidence_rejects_instead_of_guessing():
    name = next(name for name, reading in GOLDEN.items() if reading["status"] == "ok")
    result = _invoke(SAMPLES / name, "--min-confidence", "1.0", "--format", "jsonl")
    assert result.exit_code == 0
    row = json.loads(result.stdout)
    assert row["status"] == "rejected" and set(row["digits"]) <= {"?"} | set("0123456789")


def test_blank_page_is_no_digit_found(tmp_path):
    page = np.full((480, 640, 3), 235, np.uint8)
    cv2.imwrite(str(tmp_path / "blank.png"), page)
    result = _invoke(tmp_path / "blank.png", "--format", "jsonl")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "no digit found"


def test_table_format_and_summary(tmp_path):
    result = _invoke(SAMPLES)
    assert result.exit_code == 0
    header = result.stdout.splitlines()[0]
    assert header.split()[:4] == ["path", "digits", "confidence", "status"]
    assert "images/s" in result.stderr


def test_workers_give_the_same_readings():
    one = _invoke(SAMPLES, "--format", "jsonl", "--workers", "1")
    two = _invoke(SAMPLES, "--format", "jsonl", "--workers", "2")
    assert one.exit_code == two.exit_code == 0
    assert one.stdout == two.stdout


@pytest.mark.parametrize("arguments, message", [
    ([], "give image files or folders to read, or --camera"),
    (["x.png", "--format", "xml"], "'xml' is not one of 'table', 'csv', 'jsonl'"),
    (["x.png", "--min-confidence", "2"], "2.0 is not in the range 0<=x<=1"),
])
def test_bad_usage_exits_2(arguments, message):
    result = _invoke(*arguments)
    assert result.exit_code == 2 and message in result.output


def test_missing_and_invalid_models_exit_2(tmp_path):
    missing = _invoke(SAMPLES, "--model", tmp_path / "gone.tflite")
    assert missing.exit_code == 2 and "gone.tflite: model file not found" in missing.output
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\x00" * 64)
    invalid = _invoke(SAMPLES, "--model", bogus)
    assert invalid.exit_code == 2 and "bogus.tflite: not a TensorFlow Lite model" in invalid.output


def test_missing_path_and_broken_symlink_are_reported(tmp_path):
    link = tmp_path / "dangling.png"
    link.symlink_to(tmp_path / "moved away.png")
    result = _invoke(tmp_path / "nowhere.jpg", link, "--format", "jsonl")
    assert result.exit_code == 1
    errors = [json.loads(line)["error"] for line in result.stdout.splitlines()]
    assert any("nowhere.jpg: no such file or folder" in error for error in errors)
    assert any("dangling.png: broken symbolic link" in error for error in errors)


def test_unreadable_folder_is_reported_and_the_batch_goes_on(tmp_path, monkeypatch):
    # Root reads any folder, so the refusal is simulated where the walk asks the OS.
    locked = tmp_path / "scans" / "locked"
    locked.mkdir(parents=True)
    shutil.copy(SAMPLES / "year_2024.jpg", tmp_path / "scans" / "year_2024.jpg")
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(batch.os, "scandir", scandir)
    files, problems = batch.discover([tmp_path / "scans"])
    assert [os.path.basename(path) for path in files] == ["year_2024.jpg"]
    assert problems[0].status == "error" and "locked: cannot read folder (Permission denied)" in problems[0].error


def test_show_draws_the_reading_figure(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    shown = []
    monkeypatch.setattr(pyplot, "show", lambda: shown.append(pyplot.gcf()))
    name = next(name for name, reading in GOLDEN.items() if reading["status"] == "ok")
    result = _invoke(SAMPLES / name, "--show")
    assert result.exit_code == 0, result.output
    figure = shown[0]
    assert len(figure.axes) == 1 + 2 * len(GOLDEN[name]["digits"])  # photo, then a crop and bars per digit
    pyplot.close("all")


def test_python_api_returns_digits_confidences_boxes_and_probabilities():
    name = max((name for name, reading in GOLDEN.items() if reading["status"] == "ok"),
               key=lambda name: len(GOLDEN[name]["digits"]))
    result = reader.DigitReader().read(SAMPLES / name)
    assert result.digits == GOLDEN[name]["digits"]
    assert len(result.confidences) == len(result.boxes) == len(result.digits)
    # Ten digits and "not a digit": the packaged model's eleventh class.
    assert result.probabilities.shape == (len(result.digits), reader.DigitReader().classifier.num_classes)
    assert np.allclose(result.probabilities.sum(1), 1, atol=0.03)
    assert all(item.crop.shape == (28, 28) for item in result.items)


def test_sixteen_bit_transparent_and_palette_images_are_read(tmp_path):
    from PIL import Image

    gray = np.full((200, 200), 230, np.uint8)
    cv2.putText(gray, "3", (50, 160), cv2.FONT_HERSHEY_SIMPLEX, 5, 20, 14)
    cv2.imwrite(str(tmp_path / "sixteen.png"), gray.astype(np.uint16) * 257)
    ink = np.zeros((200, 200, 4), np.uint8)  # black ink on a fully transparent layer
    cv2.putText(ink, "7", (50, 160), cv2.FONT_HERSHEY_SIMPLEX, 5, (0, 0, 0, 255), 14)
    cv2.imwrite(str(tmp_path / "transparent.png"), ink)
    Image.fromarray(gray).convert("P").save(tmp_path / "palette.png")
    result = _invoke(tmp_path, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = {os.path.basename(row["path"]): row for row in map(json.loads, result.stdout.splitlines())}
    assert {name: row["digits"] for name, row in rows.items()} == {
        "sixteen.png": "3", "transparent.png": "7", "palette.png": "3"}


def test_single_reads_only_the_most_prominent_digit():
    result = _invoke(SAMPLES / "year_2024.jpg", "--single", "--format", "jsonl")
    assert result.exit_code == 0
    row = json.loads(result.stdout)
    assert row["status"] == "ok" and len(row["digits"]) == 1 and row["digits"] in "2024"
    assert len(row["boxes"]) == 1


# --- Usage a first-time user trips over (UX audit, thirteenth session) --------------------------------------------


def test_model_options_that_would_contradict_the_models_own_metadata_are_refused():
    photo = SAMPLES / sorted(GOLDEN)[0]
    for option, value in (("--model-polarity", "black-on-white"), ("--model-input-range", "1,0")):
        result = _invoke(photo, option, value)
        assert result.exit_code == 2, result.output
        assert option in result.output and "--polarity dark-on-light" in result.output


def test_the_output_suffix_chooses_the_format_and_a_contradicting_format_is_refused(tmp_path):
    photo = SAMPLES / sorted(GOLDEN)[0]
    rows = tmp_path / "out dir" / "readings.csv"
    assert _invoke(photo, "--output", rows).exit_code == 0
    assert rows.read_text().startswith("path,digits")
    lines = tmp_path / "readings.jsonl"
    assert _invoke(photo, "--output", lines).exit_code == 0
    assert json.loads(lines.read_text().splitlines()[0])["path"] == str(photo)
    refused = _invoke(photo, "--format", "csv", "--output", lines)
    assert refused.exit_code == 2 and "--format csv does not match" in refused.output
    assert json.loads(lines.read_text().splitlines()[0])["path"] == str(photo)  # untouched
    stdout = _invoke(photo, "--format", "csv", "--output", "-")
    assert stdout.exit_code == 0 and stdout.stdout.startswith("path,digits")


def test_a_folder_with_no_image_is_an_error_naming_it(tmp_path):
    empty = tmp_path / "my empty scans"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    result = _invoke(empty)
    assert result.exit_code == 2 and "no image found in" in result.output and str(empty) in result.output


def test_hidden_files_apple_double_twins_and_old_overlays_are_not_read(tmp_path):
    folder = tmp_path / "from a mac"
    (folder / ".thumbnails").mkdir(parents=True)
    photo = sorted(GOLDEN)[0]
    shutil.copy(SAMPLES / photo, folder / photo)
    shutil.copy(SAMPLES / photo, folder / ".thumbnails" / photo)
    shutil.copy(SAMPLES / photo, folder / f"{photo}.overlay.jpg")
    (folder / f"._{photo}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    result = _invoke(folder, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [str(folder / photo)]


def test_a_recursive_pattern_does_not_follow_a_link_back_up(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = sorted(GOLDEN)[0]
    shutil.copy(SAMPLES / photo, photos / photo)
    (photos / "up").symlink_to("..")
    result = _invoke(str(photos / "**" / "*.jpg"), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [str(photos / photo)]
    # A link to a folder elsewhere is followed, as the shell's patterns follow it.
    (tmp_path / "store" / "cam1").mkdir(parents=True)
    shutil.copy(SAMPLES / photo, tmp_path / "store" / "cam1" / "latest.jpg")
    (tmp_path / "cams").mkdir()
    (tmp_path / "cams" / "cam1").symlink_to(tmp_path / "store" / "cam1")
    for pattern in ("cams/*/latest.jpg", "cams/**/latest.jpg"):
        linked = _invoke(str(tmp_path / pattern), "--format", "jsonl")
        assert [json.loads(line)["path"] for line in linked.stdout.splitlines()] == [
            str(tmp_path / "cams" / "cam1" / "latest.jpg")], pattern


@pytest.mark.parametrize("arguments, named", [
    (["--camera", "0"], "not both"),
    (["--record", "clip.mp4"], "--record: only used with --camera"),
    (["--max-frames", "3", "--headless"], "--headless, --max-frames: only used with --camera"),
    (["--reader", "cuts", "--line-model", "line.tflite"], "--line-model: --reader cuts uses no line model"),
])
def test_options_that_would_do_nothing_are_refused(arguments, named):
    result = _invoke(SAMPLES / sorted(GOLDEN)[0], *arguments)
    assert result.exit_code == 2 and named in result.output, result.output


def test_the_camera_refuses_a_results_format_it_does_not_write(tmp_path):
    result = _invoke("--camera", tmp_path / "clip.avi", "--headless", "--output", tmp_path / "frames.csv")
    assert result.exit_code == 2 and "--camera writes JSON lines" in result.output
    assert "frames.csv" in result.output
    result = _invoke("--camera", tmp_path / "clip.avi", "--headless", "--format", "csv")
    assert result.exit_code == 2 and "not --format csv" in result.output


def test_unreadable_inputs_are_named_at_the_end_when_rows_go_to_a_file(mixed_folder, tmp_path):
    folder, _ = mixed_folder
    result = _invoke(folder, "--output", tmp_path / "rows.csv")
    assert result.exit_code == 1
    assert "3 inputs could not be read:" in result.stderr
    for name in ("empty.png", "notes.jpg", "cut.jpg"):
        assert str(folder / name) in result.stderr


def test_a_bad_min_confidence_names_its_option():
    result = _invoke(SAMPLES / sorted(GOLDEN)[0], "--min-confidence", "nan")
    assert result.exit_code == 2 and "--min-confidence" in result.output and "--model" not in result.output


def test_a_line_model_given_as_the_digit_model_and_back_says_which_option_it_needs():
    from edge_runtime import line_reader

    photo = SAMPLES / sorted(GOLDEN)[0]
    swapped = _invoke(photo, "--model", line_reader.DEFAULT_MODEL)
    assert swapped.exit_code == 2 and "line model, not a digit model; give it with --line-model" in swapped.output
    back = _invoke(photo, "--line-model", reader.DEFAULT_MODEL)
    assert back.exit_code == 2 and "a digit model" in back.output and "goes with --model" in back.output


def test_a_file_name_with_a_newline_stays_on_its_table_row(tmp_path):
    photo = tmp_path / "two\nlines.jpg"
    shutil.copy(SAMPLES / sorted(GOLDEN)[0], photo)
    result = _invoke(photo)
    assert result.exit_code == 0 and "two\\nlines.jpg" in result.stdout
    assert len(result.stdout.splitlines()) == 2


def test_overlays_mirror_inputs_from_the_current_folder_and_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scans = tmp_path / "my scans"
    (scans / "week 1").mkdir(parents=True)
    (scans / "week 2").mkdir()
    photo = sorted(name for name, reading in GOLDEN.items() if reading["status"] == "ok")[0]
    shutil.copy(SAMPLES / photo, scans / "week 1" / photo)
    shutil.copy(SAMPLES / sorted(GOLDEN)[1], scans / "week 2" / photo)  # another picture, the same name
    overlays = tmp_path / "over lays"
    for week in ("week 1", "week 2"):  # two runs into one folder, one given absolute, one relative
        given = scans / week if week == "week 1" else pathlib.Path("my scans") / week
        assert _invoke(given, "--save-overlays", overlays).exit_code == 0
    written = sorted(path.relative_to(overlays).as_posix() for path in overlays.rglob("*.overlay.*"))
    assert written == [f"my scans/week 1/{photo}.overlay.jpg", f"my scans/week 2/{photo}.overlay.jpg"]
    # Overlays written into the input folder itself land below a mirror of it, never on an input.
    inputs = [scans / "week 1" / photo, scans / "week 1" / f"{photo}.overlay.jpg"]
    shutil.copy(SAMPLES / photo, inputs[1])
    before = inputs[1].read_bytes()
    assert _invoke(*inputs, "--save-overlays", scans / "week 1").exit_code == 0
    assert inputs[1].read_bytes() == before
