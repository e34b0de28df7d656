"""Live camera reading, with a generated video of known digits as the source: headless, live view, outputs, errors."""

from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np
import pytest

from edge_runtime import camera, constants, live_view
from edge_runtime import reader as reader_module

SIZE = (640, 480)
BLANK_FRAME = 5
# Frame by frame: "3" (frame 5 a blank sheet, a one-frame flicker), then "7", then "42".
EXPECTED = ["3"] * 10 + ["7"] * 10 + ["42"] * 10
EXPECTED[BLANK_FRAME] = ""


def paper(text: str = "", origin: tuple[int, int] | None = None) -> np.ndarray:
    """A light 640x480 sheet with `text` in thick dark strokes, centred unless `origin` is given."""
    frame = np.full((SIZE[1], SIZE[0], 3), 235, np.uint8)
    if text:
        (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 6, 14)
        origin = origin or ((SIZE[0] - width) // 2, (SIZE[1] + height) // 2)
        cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 6, (30, 30, 30), 14, cv2.LINE_AA)
    return frame


def write_video(path: pathlib.Path, frames) -> pathlib.Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
    assert writer.isOpened(), "this OpenCV cannot write MJPG video"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_lines(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def count_frames(path: pathlib.Path) -> int:
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


@pytest.fixture(scope="module")
def model_path() -> pathlib.Path:
    if not reader_module.DEFAULT_MODEL.is_file():
        pytest.fail(f"the packaged model {reader_module.DEFAULT_MODEL} is missing: scripts/make_default_model.sh makes it")
    return reader_module.DEFAULT_MODEL


@pytest.fixture(scope="module")
def reader(model_path):
    return reader_module.DigitReader(model_path)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("camera") / "my videos"
    folder.mkdir()
    return write_video(folder / "digits.avi", [paper(text) for text in EXPECTED])


@pytest.fixture
def out(tmp_path) -> pathlib.Path:
    folder = tmp_path / "live out"
    folder.mkdir()
    return folder


def headless(video, out, **settings) -> camera.CameraOptions:
    settings.setdefault("smooth", 1)
    return camera.CameraOptions(source=str(video), headless=True, output=str(out / "readings.jsonl"), **settings)


# --- Headless: JSON lines frame by frame ----------------------------------------------------------------------


def test_headless_reads_every_frame_of_the_video(reader, video, out, capsys):
    assert camera.run(reader, headless(video, out)) == 0
    lines = read_lines(out / "readings.jsonl")
    assert [line["frame"] for line in lines] == list(range(len(EXPECTED)))
    assert [line["digits"] for line in lines] == EXPECTED
    first = lines[0]
    assert {"frame", "time", "timestamp", "digits", "confidence", "status", "fps"} <= set(first)
    assert first["status"] == constants.STATUS_OK and first["confidence"] > 0.5
    assert lines[BLANK_FRAME]["status"] == constants.STATUS_NO_DIGIT
    assert all(later["time"] >= earlier["time"] for earlier, later in zip(lines, lines[1:]))
    assert [line["video_time"] for line in lines[:4]] == [0.0, 0.033, 0.067, 0.1]  # its place in the 30 fps video
    summary = capsys.readouterr().err
    assert "the video ended" in summary and "30 frames read, 30 processed" in summary and "42 (10)" in summary


def test_headless_writes_json_lines_to_stdout_without_output(reader, video, capsys):
    options = camera.CameraOptions(source=str(video), headless=True, smooth=1, max_frames=3)
    assert camera.run(reader, options) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["digits"] for line in lines] == ["3", "3", "3"]


def test_smoothing_removes_a_one_frame_flicker_in_the_video(reader, video, out):
    assert camera.run(reader, headless(video, out, smooth=5)) == 0
    lines = read_lines(out / "readings.jsonl")
    assert lines[BLANK_FRAME]["digits"] == "3" and lines[BLANK_FRAME]["raw_digits"] == ""
    assert lines[-1]["digits"] == "42"  # A real change still comes through, within the window.


def test_every_processes_only_every_nth_frame(reader, video, out, capsys):
    assert camera.run(reader, headless(video, out, every=3)) == 0
    lines = read_lines(out / "readings.jsonl")
    assert [line["frame"] for line in lines] == list(range(0, 30, 3))
    assert [line["digits"] for line in lines] == EXPECTED[::3]
    assert "30 frames read, 10 processed" in capsys.readouterr().err


def test_max_frames_and_duration_end_the_run_early(reader, video, out, capsys):
    assert camera.run(reader, headless(video, out, max_frames=7)) == 0
    assert len(read_lines(out / "readings.jsonl")) == 7
    assert "--max-frames 7 reached" in capsys.readouterr().err
    assert camera.run(reader, headless(video, out, duration=1e-6)) == 0
    assert "--duration" in capsys.readouterr().err


def test_roi_reads_only_the_centre_and_boxes_stay_in_frame_coordinates(reader, tmp_path, out):
    frame = paper("7")
    cv2.putText(frame, "3", (10, 470), cv2.FONT_HERSHEY_SIMPLEX, 4, (30, 30, 30), 12, cv2.LINE_AA)
    source = write_video(tmp_path / "corner.avi", [frame] * 3)
    assert camera.run(reader, headless(source, out, roi=0.5)) == 0
    line = read_lines(out / "readings.jsonl")[0]
    assert line["digits"] == "7"
    x, y, width, height = line["boxes"][0]
    assert 160 <= x and x + width <= 480 and 120 <= y and y + height <= 360  # Inside the centred box, in frame pixels.
    full = reader.read(paper("7")).boxes[0]
    assert max(abs(a - b) for a, b in zip(full, line["boxes"][0])) <= 4


def test_overlays_and_recording(reader, video, out):
    options = headless(video, out, every=5, overlay_dir=str(out / "over lays"), record=str(out / "annotated run.mp4"))
    assert camera.run(reader, options) == 0
    overlays = sorted(path.name for path in (out / "over lays").iterdir())
    assert overlays == [f"frame_{index:06d}.png" for index in range(0, 30, 5)]
    assert cv2.imread(str(out / "over lays" / overlays[0])).shape == (480, 640, 3)
    assert count_frames(out / "annotated run.mp4") == 30  # Every frame is recorded, processed or not.
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # No temporary files left.


def test_record_as_avi_and_a_bad_suffix(reader, video, out, capsys):
    assert camera.run(reader, headless(video, out, max_frames=4, record=str(out / "run.avi"))) == 0
    assert count_frames(out / "run.avi") == 4
    assert camera.run(reader, headless(video, out, record=str(out / "run.mkv"))) == 2
    assert "run.mkv" in capsys.readouterr().err and not (out / "run.mkv").exists()


def test_recording_a_camera_keeps_time_with_the_clock(out, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(camera.time, "perf_counter", lambda: clock[0])
    recorder = camera.VideoRecorder(out / "live.avi", fps=10, realtime=True)
    frame = paper("7")
    for step in (0.0, 0.05, 0.3, 0.1):  # Processing slower than the camera at times: frames are repeated.
        clock[0] += step
        recorder.write(frame)
    recorder.close()
    assert recorder.frames == 5 == count_frames(out / "live.avi")  # 0.45 s at 10 FPS: 5 frames, as seen.
    camera.VideoRecorder(out / "never.avi", fps=10).close()
    assert not (out / "never.avi").exists()  # No frame, no file.


def test_ctrl_c_exits_130_with_every_output_flushed_and_closed(reader, video, out, monkeypatch, capsys):
    original, calls = camera.FrameProcessor.process, []

    def interrupted(self, frame, caption=None):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(self, frame, caption)

    monkeypatch.setattr(camera.FrameProcessor, "process", interrupted)
    options = headless(video, out, record=str(out / "partial.mp4"))
    assert camera.run(reader, options) == 130
    assert [line["frame"] for line in read_lines(out / "readings.jsonl")] == [0, 1, 2, 3]
    assert count_frames(out / "partial.mp4") == 4
    assert "interrupted (Ctrl-C)" in capsys.readouterr().err


def test_sigterm_stops_as_cleanly_as_ctrl_c(reader, video, out, monkeypatch, capsys):
    import os
    import signal

    original, calls = camera.FrameProcessor.process, []

    def terminated(self, frame, caption=None):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # Arrives as `_Stopped` inside the loop.
        return original(self, frame, caption)

    monkeypatch.setattr(camera.FrameProcessor, "process", terminated)
    before = signal.getsignal(signal.SIGTERM)
    assert camera.run(reader, headless(video, out)) == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    assert 2 <= len(read_lines(out / "readings.jsonl")) <= 3
    assert "stopped by SIGTERM" in capsys.readouterr().err


def test_invalid_options_exit_2(reader, video, capsys):
    assert camera.run(reader, camera.CameraOptions(source=str(video), headless=True, every=0)) == 2
    assert "every=0" in capsys.readouterr().err


# --- Sources and their errors -----------------------------------------------------------------------------------


def test_a_missing_file_says_what_was_tried(reader, tmp_path, capsys):
    missing = tmp_path / "no such video.mp4"
    with pytest.raises(FileNotFoundError, match="camera index.*picamera.*URL.*video file"):
        camera.open_source(str(missing))
    assert camera.run(reader, camera.CameraOptions(source=str(missing), headless=True)) == 1
    assert "no such video.mp4" in capsys.readouterr().err


def test_a_missing_camera_says_what_was_tried(reader, capsys):
    with pytest.raises(camera.SourceError, match="camera 97.*V4L2.*any backend"):
        camera.open_source("97")
    assert camera.run(reader, camera.CameraOptions(source="97", headless=True)) == 1
    assert "camera 97 is missing or busy" in capsys.readouterr().err


def test_a_file_that_is_not_a_video_is_refused(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(camera.SourceError, match="cannot be read as video; tried"):
        camera.open_source(str(bogus))


def test_picamera_without_picamera2_says_how_to_install_it():
    import importlib.util

    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here (a Pi)")
    with pytest.raises(ImportError, match="sudo apt install python3-picamera2.*--system-site-packages"):
        camera.open_source("picamera")


def test_video_source_reads_then_stops(video):
    with camera.open_source(str(video)) as source:
        assert not source.live and source.fps == pytest.approx(30)
        frames = 0
        while source.read() is not None:
            frames += 1
    assert frames == len(EXPECTED)


# --- Smoother and small pieces ------------------------------------------------------------------------------------


def fake_result(digits: str, confidence: float = 0.9) -> reader_module.ReadResult:
    items = tuple(reader_module.Digit(label, confidence, (10 * index, 0, 8, 8), np.zeros(10), np.zeros((28, 28)),
                                      line=0, accepted=True)
                  for index, label in enumerate(digits))
    status = constants.STATUS_OK if digits else constants.STATUS_NO_DIGIT
    return reader_module.ReadResult(digits, status, items)


def test_smoother_removes_a_single_frame_flicker():
    smoother = camera.Smoother(5)
    voted = [smoother.update(fake_result(digits)).digits for digits in ["42", "42", "47", "42", "", "42"]]
    assert voted == ["42"] * 6


def test_smoother_follows_a_real_change_and_a_removed_sheet():
    smoother = camera.Smoother(3)
    voted = [smoother.update(fake_result(digits)).digits for digits in ["3", "3", "7", "7", "7", "", "", ""]]
    assert voted == ["3", "3", "3", "7", "7", "7", "", ""]


def test_smoother_weighs_by_confidence_and_reports_the_agreeing_confidence():
    smoother = camera.Smoother(3)
    smoother.update(fake_result("1", 0.3))
    smoother.update(fake_result("1", 0.3))
    reading = smoother.update(fake_result("7", 0.95))
    assert reading.digits == "7" and reading.confidence == pytest.approx(0.95)
    assert reading.result.digits == "7" and reading.raw.digits == "7"
    assert camera.Smoother(1).update(fake_result("5")).digits == "5"
    with pytest.raises(ValueError, match="window=0"):
        camera.Smoother(0)


def test_each_box_shows_this_frames_digit_and_only_the_banner_the_vote(reader, monkeypatch):
    drawn = []
    monkeypatch.setattr(camera.overlay, "draw_reading", lambda frame, result, **options: drawn.append(
        (result.digits, options.get("headline"))) or frame)
    processor = camera.FrameProcessor(reader, smooth=5)
    smoother = processor.smoother
    for digits in ("5", "5", "5"):
        smoother.update(fake_result(digits, 0.99))
    reading = smoother.update(fake_result("3", 0.99))  # the sheet changed; the vote lags behind
    assert reading.digits == "5"
    processor.draw(np.zeros((48, 64, 3), np.uint8), reading)
    assert drawn == [("3", ("5", pytest.approx(0.99), constants.STATUS_OK))]


def test_rate_meter_and_tally_stay_bounded():
    meter = camera.RateMeter(window=10)
    for tick in range(1000):
        meter.tick(tick / 20)
    assert meter.rate == pytest.approx(20) and len(meter._times) == 10
    tally = camera.ReadingTally(limit=3)
    for number in range(100):
        tally.add(str(number))
    assert len(tally.counts) == 4 and tally.counts["other"] == 97


# --- The live Matplotlib view, under the non-interactive Agg backend ----------------------------------------------


@pytest.fixture
def agg():
    matplotlib = pytest.importorskip("matplotlib")
    previous = matplotlib.get_backend()
    matplotlib.use("Agg")
    assert not live_view.is_interactive_backend()
    yield
    from matplotlib import pyplot

    pyplot.close("all")
    matplotlib.use(previous)


def test_the_window_holds_the_last_reading_at_the_end_of_a_video_until_q(reader, agg, monkeypatch):
    processor = camera.FrameProcessor(reader, smooth=1)
    view = live_view.LiveView()
    try:
        reading, image = processor.process(paper("42"), caption="30 FPS")
        view.update(image, reading, 30.0)
        waited = []
        monkeypatch.setattr(view, "_window_open", lambda: True)  # as a real window would be
        monkeypatch.setattr(view, "wait", lambda seconds: waited.append(seconds) or (
            len(waited) == 3 and view.press("q")))
        view.hold("end of the video: q or close the window")
        assert len(waited) == 3 and view.texts["status"].startswith("end of the video")
        assert view.texts["number"] == "42"
    finally:
        view.close()


def test_a_video_holds_the_window_at_its_end_and_a_camera_does_not():
    import types

    held = []
    view = types.SimpleNamespace(hold=held.append)
    for live, reason in ((False, "the video ended"), (True, "the camera stopped giving frames")):
        session = types.SimpleNamespace(source=types.SimpleNamespace(live=live), view=view)
        assert camera._Session._end_reason(session) == reason
    assert held == ["end of the video: q or close the window"]


def test_live_view_shows_frames_and_the_number(reader, agg):
    processor = camera.FrameProcessor(reader, smooth=1)
    view = live_view.LiveView()
    try:
        for text in ("3", "42"):
            reading, image = processor.process(paper(text), caption="30 FPS")
            view.update(image, reading, 30.0)
        assert view.frames_shown == 2
        assert view.texts["number"] == "42" and "FPS" in view.texts["status"]
        shown = np.asarray(view.figure.canvas.buffer_rgba())
        assert shown.shape[:2] == (480 + view._BANNER_PIXELS, 640)  # One screen pixel per frame pixel.
        view.press(" ")
        assert view.paused and view.texts["status"].startswith("paused")
        view.press("s")
        assert view.take_snapshot_request() and not view.take_snapshot_request()
        view.press("q")
        assert view.quit_requested and view.quit_reason == "q pressed"
    finally:
        view.close()
    import matplotlib

    assert "q" in matplotlib.rcParams["keymap.quit"] and "s" in matplotlib.rcParams["keymap.save"]


def test_live_run_under_agg_with_snapshot_and_quit_keys(reader, video, out, agg, monkeypatch, capsys):
    class ScriptedView(live_view.LiveView):
        def update(self, image, reading, fps):
            super().update(image, reading, fps)
            self.press({12: "s", 15: "q"}.get(self.frames_shown, ""))

    monkeypatch.setattr(live_view, "LiveView", ScriptedView)
    options = camera.CameraOptions(source=str(video), overlay_dir=str(out), smooth=1)
    assert camera.run(reader, options) == 0
    err = capsys.readouterr().err
    assert "q pressed" in err and "15 frames read" in err
    snapshot = json.loads(next(out.glob("snapshot_*.json")).read_text())
    assert snapshot["digits"] == "7" and snapshot["frame"] == 11  # The 12th frame shown.
    assert len(list(out.glob("snapshot_*_overlay.png"))) == 1


def test_live_run_under_agg_runs_to_the_end(reader, video, agg, capsys):
    assert camera.run(reader, camera.CameraOptions(source=str(video), max_frames=12)) == 0
    assert "12 frames read, 12 processed" in capsys.readouterr().err


# --- The command line -------------------------------------------------------------------------------------------


def test_cli_camera_headless_writes_valid_json_lines(model_path, video, out):
    from click.testing import CliRunner

    from edge_runtime import cli

    output = out / "cli readings.jsonl"
    result = CliRunner().invoke(cli.main, ["--model", str(model_path), "--camera", str(video), "--headless",
                                           "--output", str(output), "--every", "2", "--smooth", "1"])
    assert result.exit_code == 0, result.output
    lines = read_lines(output)
    assert [line["frame"] for line in lines] == list(range(0, 30, 2))
    assert [line["digits"] for line in lines] == EXPECTED[::2]
