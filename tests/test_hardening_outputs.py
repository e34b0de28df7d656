"""Issue 12, outputs: no output ever destroys an input, the model or the camera source; failures are one line."""

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import REPO, SAMPLES
from edge_runtime import batch, camera, cli, outputs, reader

PHOTOS = sorted(SAMPLES.glob("*.jpg"))[:3]


def _invoke(*arguments):
    return CliRunner().invoke(cli.main, [str(argument) for argument in arguments])


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture()
def scans(tmp_path):
    folder = tmp_path / "my scans"
    folder.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, folder / photo.name)
    return folder


def _refused(result, *names):
    assert result.exit_code == 2, result.output
    for name in names:
        assert str(name) in result.output, result.output


def test_output_onto_an_input_is_refused_whatever_its_spelling(scans, tmp_path):
    first = scans / PHOTOS[0].name
    before = _digest(first)
    os.link(first, tmp_path / "hard link.txt")
    for target in (first, str(first).replace("my scans", "my scans/."), tmp_path / "hard link.txt"):
        _refused(_invoke(*sorted(scans.glob("*.jpg")), "--output", target), "is an input", PHOTOS[0].name)
    _refused(_invoke(scans, "--output", scans / "results.png"), ".png")  # would be read as input next time
    assert _digest(first) == before


def test_a_shell_glob_after_output_cannot_turn_the_first_photo_into_a_table(scans):
    photos = sorted(scans.glob("*.jpg"))  # `digit-infer --output scans/*.jpg`
    before = _digest(photos[0])
    _refused(_invoke("--output", *photos), "cannot end in .jpg")
    assert _digest(photos[0]) == before


def test_show_without_a_display_says_so(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    monkeypatch.setattr(pyplot, "show", lambda: None)
    result = _invoke(PHOTOS[0], "--show")
    assert result.exit_code == 0 and "cannot open a window here" in result.stderr
    pyplot.close("all")


def test_output_onto_the_model_or_a_file_that_is_not_ours_is_refused(scans, tmp_path):
    model = tmp_path / "model.bin"
    shutil.copy(reader.DEFAULT_MODEL, model)
    _refused(_invoke(scans, "--model", model, "--output", model), "is the model in use")
    _refused(_invoke(scans, "--output", reader.DEFAULT_MODEL), ".tflite")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\na.jpg,3\n")
    _refused(_invoke(scans, "--output", labels), "not a previous digit-infer results file")
    assert labels.read_text() == "path,label\na.jpg,3\n"
    assert _digest(model) == _digest(reader.DEFAULT_MODEL)


def test_symbolic_links_and_read_only_files_are_not_replaced(scans, tmp_path):
    results = tmp_path / "old results.csv"
    results.write_text("path,digits,confidence,status\n")
    link = tmp_path / "link.csv"
    link.symlink_to(results)
    _refused(_invoke(scans, "--output", link), "symbolic link")
    assert link.is_symlink()
    results.chmod(0o444)
    _refused(_invoke(scans, "--output", results), "read-only")
    assert oct(results.stat().st_mode & 0o777) == "0o444"
    assert results.read_text() == "path,digits,confidence,status\n"


def test_a_previous_results_file_is_replaced_keeping_its_mode(scans, tmp_path):
    results = tmp_path / "out put" / "readings.txt"
    for output_format in ("csv", "jsonl", "table"):
        result = _invoke(scans, "--format", output_format, "--output", results)
        assert result.exit_code == 0, result.output
        results.chmod(0o640)
    assert results.read_text().startswith("path ") and oct(results.stat().st_mode & 0o777) == "0o640"
    assert not [path for path in results.parent.iterdir() if path.name.startswith(".")]


def _interrupted_after_one(monkeypatch):
    """Makes the batch stop (as on Ctrl-C) after its first result."""
    real = batch.read_files

    def one_then_ctrl_c(job, files, *rest):
        results = real(job, files, *rest)
        yield next(results)
        results.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "read_files", one_then_ctrl_c)


def test_an_interrupted_run_keeps_a_previous_results_file_and_puts_its_rows_beside_it(scans, tmp_path,
                                                                                      monkeypatch):
    results = tmp_path / "out put" / "readings.csv"
    assert _invoke(scans, "--format", "csv", "--output", results).exit_code == 0
    complete = results.read_text()
    assert len(complete.splitlines()) == 1 + len(PHOTOS)
    _interrupted_after_one(monkeypatch)
    stopped = _invoke(scans, "--format", "csv", "--output", results)
    assert stopped.exit_code == 130, stopped.output
    assert results.read_text() == complete  # the complete results are not replaced by a part of them
    partial = tmp_path / "out put" / "readings.interrupted.csv"
    assert len(partial.read_text().splitlines()) == 2 and str(partial) in stopped.output
    assert not [path for path in results.parent.iterdir() if path.name.startswith(".")]
    # A file of the user's under that name is not ours to replace: the rows go to the next free name.
    partial.write_text("my own notes, keep me\n")
    again = _invoke(scans, "--format", "csv", "--output", results)
    assert again.exit_code == 130 and partial.read_text() == "my own notes, keep me\n"
    assert len((tmp_path / "out put" / "readings.interrupted-2.csv").read_text().splitlines()) == 2


def test_an_interrupted_first_run_keeps_its_rows_in_the_output(scans, tmp_path, monkeypatch):
    results = tmp_path / "readings.jsonl"
    _interrupted_after_one(monkeypatch)
    stopped = _invoke(scans, "--format", "jsonl", "--output", results)
    assert stopped.exit_code == 130, stopped.output
    assert len(results.read_text().splitlines()) == 1 and not outputs.partial_path(results).exists()


def test_an_output_below_a_file_or_in_an_unwritable_folder_fails_before_reading(scans, tmp_path, monkeypatch):
    _refused(_invoke(scans, "--output", scans / PHOTOS[0].name / "out.csv"), "is a file, not a folder")

    def read_only(*arguments, **keywords):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(outputs.files.tempfile, "mkstemp", read_only)
    read = []
    monkeypatch.setattr(batch, "read_files", lambda *arguments: read.append(1) or iter(()))
    result = _invoke(scans, "--output", tmp_path / "out.csv")
    _refused(result, "Read-only file system")
    assert not read  # Nothing was read before the output was known to be writable.


def test_a_disk_full_at_the_end_is_one_line_and_exit_3(scans, tmp_path, monkeypatch):
    results = tmp_path / "readings.csv"
    results.write_text("path,digits,confidence,status\nold,1,1.0,ok\n")
    real_open = open

    class Full:
        def __init__(self, stream):
            self.stream = stream

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.stream, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.stream.close()

    monkeypatch.setattr(outputs, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    result = _invoke(scans, "--format", "csv", "--output", results)
    assert result.exit_code == outputs.EXIT_OUTPUT_FAILED, result.output
    assert "No space left on device" in result.stderr and "previous file is unchanged" in result.stderr
    assert "Traceback" not in result.output
    assert results.read_text() == "path,digits,confidence,status\nold,1,1.0,ok\n"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_camera_outputs_never_touch_the_source(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not really a video, but it must survive")
    photo = tmp_path / "photo.jpg"
    shutil.copy(PHOTOS[0], photo)
    digit_reader = reader.DigitReader()
    for options in (dict(output=str(video)), dict(record=str(video)), dict(output=str(photo)),
                    dict(overlay_dir=str(video))):
        code = camera.run(digit_reader, camera.CameraOptions(source=str(video), headless=True, **options))
        assert code == 2, options
    assert video.read_bytes() == b"not really a video, but it must survive"
    assert _digest(photo) == _digest(PHOTOS[0])


def test_non_utf8_file_names_are_written_escaped(tmp_path):
    folder = os.fsencode(tmp_path / "names")
    os.mkdir(folder)
    shutil.copy(PHOTOS[0], os.path.join(folder, b"\xff\xfe.jpg"))
    shutil.copy(PHOTOS[1], os.path.join(folder, b"plain.jpg"))
    for output_format in ("csv", "table", "jsonl"):
        output = tmp_path / f"out.{output_format}"
        result = _invoke(os.fsdecode(folder), "--format", output_format, "--output", output)
        assert result.exit_code == 0, result.output
        text = output.read_text(encoding="utf-8")
        if output_format == "jsonl":
            text = "\n".join(json.loads(line)["path"] for line in text.splitlines())
        assert "\\xff\\xfe.jpg" in text and "plain.jpg" in text


def test_overlays_in_the_input_folder_are_not_read_back_and_do_not_collide(scans):
    shutil.copy(PHOTOS[0], scans / (PHOTOS[0].stem + ".jpeg"))
    counts = []
    for _ in range(2):
        result = _invoke(scans, "--save-overlays", scans, "--format", "jsonl")
        assert result.exit_code == 0, result.output
        counts.append(len(result.stdout.splitlines()))
    assert counts == [4, 4]
    overlays = sorted(path.name for path in scans.rglob("*.overlay.*"))
    assert len(overlays) == 4 and f"{PHOTOS[0].stem}.jpeg.overlay.jpg" in overlays


def test_a_failed_overlay_keeps_the_reading_and_warns(scans, tmp_path, monkeypatch):
    def fail(path, image, result):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(batch, "write_overlay", fail)
    result = _invoke(scans, "--save-overlays", tmp_path / "overlays", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and all(row["status"] != "error" for row in rows)
    assert result.stderr.count("overlay could not be written") == 3
    _refused(_invoke(scans, "--save-overlays", scans / PHOTOS[0].name), "--save-overlays")


def test_small_cases_empty_path_unsupported_photos_and_multi_page_tiff(tmp_path):
    import cv2
    import numpy as np

    _refused(_invoke(""), "empty path")
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "anim.gif").write_bytes(b"GIF89a" + bytes(20))
    (folder / "phone.heic").write_bytes(bytes(4) + b"ftypheic" + bytes(20))
    result = _invoke(folder, "--format", "jsonl")
    rows = {os.path.basename(json.loads(line)["path"]): json.loads(line) for line in result.stdout.splitlines()}
    assert result.exit_code == 1 and set(rows) == {"anim.gif", "phone.heic"}
    assert "GIF" in rows["anim.gif"]["error"] and "HEIC" in rows["phone.heic"]["error"]
    page = cv2.imread(str(PHOTOS[0]), cv2.IMREAD_GRAYSCALE)
    ok, encoded = cv2.imencodemulti(".tiff", [page, np.full_like(page, 255)])
    assert ok
    (folder / "two pages.tif").write_bytes(encoded.tobytes())
    result = _invoke(folder / "two pages.tif")
    assert result.exit_code == 0 and "read page 1 of 2" in result.stderr


def test_workers_are_capped_at_files_and_cpus(scans, monkeypatch):
    seen = []
    real = batch.read_files
    monkeypatch.setattr(batch, "read_files", lambda job, *rest: seen.append(job.workers) or real(job, *rest))
    assert _invoke(scans, "--workers", "100").exit_code == 0
    assert seen == [min(3, os.cpu_count() or 1)]


def _start(arguments, cwd):
    return subprocess.Popen([sys.executable, "-c", "from edge_runtime.cli import main; main()", *arguments],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_closed_pipe_ends_quietly(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(40):
        shutil.copy(PHOTOS[index % 3], folder / f"{index:03d}.jpg")
    process = _start([str(folder), "--format", "csv"], tmp_path)
    try:
        process.stdout.readline()
        process.stdout.close()  # as `| head -1` does
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=120) == outputs.EXIT_PIPE_CLOSED
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Traceback" not in stderr and "Broken pipe" not in stderr


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_a_signal_in_batch_mode_keeps_the_rows_so_far(tmp_path, signal_name):
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(300):
        shutil.copy(PHOTOS[index % 3], folder / f"{index:03d}.jpg")
    process = _start([str(folder), "--workers", "2", "--format", "csv", "--output", "rows.csv"], tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(path.name.startswith(".rows.") for path in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(process.pid, getattr(signal, signal_name))
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # A hang is a failure; never leave the process behind.
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    stderr = stderr.decode()
    assert process.returncode in (128 + getattr(signal, signal_name), 0), stderr  # 0: it finished first
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary file left
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert rows[0].startswith("path,digits") and "inputs" in stderr


def test_a_failed_camera_overlay_keeps_the_readings(tmp_path, monkeypatch, capsys):
    import cv2
    import numpy as np

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(3):
        writer.write(np.full((120, 160, 3), 255, np.uint8))
    writer.release()

    def full(path, image):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(camera, "write_png", full)
    options = camera.CameraOptions(source=str(video), headless=True, overlay_dir=str(tmp_path / "overlays"),
                                   output=str(tmp_path / "frames.jsonl"), smooth=1)
    assert camera.run(reader.DigitReader(), options) == 0
    assert len((tmp_path / "frames.jsonl").read_text().splitlines()) == 3
    assert capsys.readouterr().err.count("the overlay could not be written") == 1
