"""Live reading from webcams, Pi cameras, video files and streams, with a Matplotlib view or JSON lines."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import sys
import time
import urllib.parse
from typing import NamedTuple, TextIO

import cv2
import numpy as np

from edge_runtime import constants, files, live_view, outputs, overlay, stopping
from edge_runtime import reader as reader_module

PICAMERA = "picamera"
RECORD_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}
"""Video suffixes `--record` writes, and the FourCC each is written with."""

PICAMERA_HELP = ("'--camera picamera' needs the picamera2 library, which cannot be pip-installed: on Raspberry Pi "
                 "OS run `sudo apt install python3-picamera2`, and make the virtual environment with "
                 "`python3 -m venv --system-site-packages .venv` so that it sees the system's picamera2")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

NO_DIGIT_WEIGHT = 1.0
"""Vote of a frame where nothing was found: as sure as a certain reading, so a removed sheet clears the number."""

FPS_WINDOW = 30
"""Frames the FPS is measured over; a moving window keeps the figure current and the memory flat."""

MAX_TALLIED_READINGS = 100
"""Distinct readings counted for the summary; more are counted as "other", so memory stays flat."""

_LIVE_READ_RETRIES = 5
"""A live camera that misses this many frames in a row has stopped (one dropped frame is not the end)."""

_DEFAULT_RECORD_FPS = 30.0
DEFAULT_TIMEOUT = 10.0
"""Seconds a stream may take to answer (`--camera-timeout`): a network camera answers in well under a second."""
_PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # Overlays are written per frame: speed over size.


@dataclasses.dataclass(frozen=True)
class CameraOptions:
    """How a live run behaves; `digit-infer --camera` fills it from its options.

    Attributes:
        source: "0".."9" (camera index), "picamera", a video file path, or a URL OpenCV opens.
        headless: No window; JSON lines go to `output` or stdout.
        roi: Read only a centred box this fraction of the frame's width and height.
        every: Process every Nth frame.
        smooth: Vote over the last K processed frames.
        max_frames: Stop after this many frames.
        duration: Stop after this many seconds.
        record: Write the annotated video here.
        overlay_dir: Save each processed frame's overlay here.
        output: JSON-lines file (headless); default stdout.
        resolution: Width and height asked of a camera (index or picamera); None keeps the camera's own.
        timeout: Seconds a stream (URL) may take to open and between frames before the run gives up, over
            every backend tried, so that a server that accepts but never answers cannot hang the run.
    """

    source: str = "0"
    headless: bool = False
    roi: float | None = None
    every: int = 1
    smooth: int = 5
    max_frames: int | None = None
    duration: float | None = None
    record: str | None = None
    overlay_dir: str | None = None
    output: str | None = None
    resolution: tuple[int, int] | None = (640, 480)
    timeout: float = DEFAULT_TIMEOUT

    def validate(self) -> None:
        """Checks every field, so that a bad value fails before the camera opens.

        Raises:
            ValueError: A value out of range or a `record` suffix other than .mp4 or .avi.
        """
        if self.roi is not None and not 0.0 < self.roi <= 1.0:
            raise ValueError(f"roi={self.roi}: must be a fraction of the frame in (0, 1], e.g. 0.5")
        for name in ("every", "smooth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be at least 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames={self.max_frames}: must be at least 1")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration={self.duration}: must be more than 0 seconds")
        if self.record is not None and pathlib.Path(self.record).suffix.lower() not in RECORD_CODECS:
            raise ValueError(f"record={self.record!r}: the video must end in one of {', '.join(RECORD_CODECS)}")
        if not self.timeout > 0:
            raise ValueError(f"timeout={self.timeout}: must be more than 0 seconds")
        if self.resolution is not None and (len(self.resolution) != 2 or min(self.resolution) < 1):
            raise ValueError(f"resolution={self.resolution!r}: give (width, height) in pixels, e.g. (640, 480)")


# --- Frame sources ------------------------------------------------------------------------------------------


class SourceError(OSError):
    """A camera, file or stream that cannot be opened or gives no frame; the message lists what was tried."""


class FrameSource:
    """Where frames come from: `read()` gives the next BGR uint8 frame, or None when frames stop.

    Attributes:
        description: What the source is, for messages ("camera 0 (V4L2)").
        live: A camera or stream (frames keep coming and may drop), rather than a file played back.
        fps: The nominal frame rate, or None when the source does not say.
    """

    description = "source"
    live = True
    fps: float | None = None

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def skip(self) -> bool:
        """Moves past one frame without decoding it where the source allows; False when frames stop."""
        return self.read() is not None

    def close(self) -> None:
        """Releases the device or file; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class OpenCVSource(FrameSource):
    """A camera index, video file or URL read through OpenCV's VideoCapture."""

    def __init__(self, capture: cv2.VideoCapture, description: str, live: bool, first_frame: np.ndarray):
        self.capture = capture
        self.description = description
        self.live = live
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 1.0 <= fps <= 240.0 else None
        self._pending = first_frame  # Read while opening, to prove the source really gives frames.

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        return self._next(decode=True)

    def skip(self) -> bool:
        if self._pending is not None:
            self._pending = None
            return True
        return self._next(decode=False) is not None

    def _next(self, decode: bool):
        for attempt in range(_LIVE_READ_RETRIES if self.live else 1):
            if decode:
                ok, frame = self.capture.read()
            else:
                ok, frame = self.capture.grab(), True  # grab() without retrieve() skips the decoding.
            if ok and frame is not None:
                return _as_bgr(frame) if decode else frame
            if self.live:
                time.sleep(0.02 * (attempt + 1))
        return None

    def close(self) -> None:
        self.capture.release()


class PiCameraSource(FrameSource):
    """The Raspberry Pi Camera Module through picamera2 (libcamera)."""

    description = "Pi camera (picamera2)"
    live = True

    def __init__(self, camera):
        self.camera = camera
        self._closed = False

    def read(self) -> np.ndarray | None:
        try:
            return _as_bgr(self.camera.capture_array("main"))
        except RuntimeError:  # libcamera reports a camera that went away as a RuntimeError.
            return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(RuntimeError):
                self.camera.stop()
            self.camera.close()


def open_source(source: str, resolution: tuple[int, int] | None = (640, 480),
                timeout: float = DEFAULT_TIMEOUT) -> FrameSource:
    """Opens a camera index ("0"), "picamera", a video file or a URL.

    Args:
        source: What `--camera` was given.
        resolution: Width and height asked of a camera; files and streams keep their own.
        timeout: Seconds a stream may take to open (over all backends) and to give each frame.

    Raises:
        FileNotFoundError: Not an index, "picamera" or URL, and no such file.
        ImportError: "picamera" without picamera2 installed; the message says how to install it.
        SourceError: It exists but cannot be opened, or gives no frame; the message lists what was tried.
    """
    text = str(source).strip()
    if text.isdigit():
        return _open_camera_index(int(text), resolution)
    if text.lower() == PICAMERA:
        return _open_picamera(resolution)
    if "://" in text:
        _warn(f"waiting up to {timeout:g} s for stream {_redact(text)} to answer (--camera-timeout)")
        return _open_capture(text, f"stream {_redact(text)}", live=True,
                             backends=(("FFMPEG", cv2.CAP_FFMPEG), ("GStreamer", cv2.CAP_GSTREAMER),
                                       ("any backend", cv2.CAP_ANY)), timeout=timeout)
    return _open_file(text)


def _open_camera_index(index: int, resolution) -> FrameSource:
    tried = []
    for name, backend in (("V4L2", cv2.CAP_V4L2), ("any backend", cv2.CAP_ANY)):
        capture = _quiet_capture(index, backend)
        if not capture.isOpened():
            tried.append(f"{name}: could not open it")
            continue
        if resolution is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, resolution[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, resolution[1])
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # Read the newest frame, not one queued while we were busy.
        frame = _first_frame(capture, attempts=_LIVE_READ_RETRIES)
        if frame is not None:
            return OpenCVSource(capture, f"camera {index} ({capture.getBackendName()})", True, frame)
        capture.release()
        tried.append(f"{name}: opened, but it gave no frame (is another program using it?)")
    devices = sorted(str(path) for path in pathlib.Path("/dev").glob("video*"))
    raise SourceError(f"camera {index} is missing or busy; tried {'; '.join(tried)}. "
                      f"Video devices here: {', '.join(devices) or 'none'}. Give another index, a video file, "
                      f"a URL, or '{PICAMERA}' for the Raspberry Pi camera module")


def _open_file(text: str) -> FrameSource:
    path = pathlib.Path(text)
    if not path.exists():
        raise FileNotFoundError(f"--camera {text!r}: tried it as a camera index (not a number), as "
                                f"'{PICAMERA}', as a URL (no '://') and as a video file (no such file)")
    if path.is_dir():
        raise SourceError(f"--camera {text!r} is a folder; give a video file (to read a folder of images, "
                          f"pass it without --camera)")
    return _open_capture(text, f"video file {text}", live=False,
                         backends=(("FFMPEG", cv2.CAP_FFMPEG), ("any backend", cv2.CAP_ANY)))


def _open_capture(target: str, description: str, live: bool, backends, timeout: float | None = None) -> FrameSource:
    tried = []
    deadline = time.monotonic() + timeout if timeout is not None else None
    for name, backend in backends:
        params = ()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                tried.append(f"{name}: not tried, no answer within --camera-timeout {timeout:g} s")
                continue
            milliseconds = max(1, int(left * 1000))
            params = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds)
        capture = _quiet_capture(target, backend, params)
        if not capture.isOpened():
            timed_out = deadline is not None and time.monotonic() >= deadline - 0.05
            tried.append(f"{name}: " + (f"no answer within --camera-timeout {timeout:g} s" if timed_out
                                        else "could not open it"))
            continue
        frame = _first_frame(capture, attempts=_LIVE_READ_RETRIES if live else 1)
        if frame is not None:
            return OpenCVSource(capture, description, live, frame)
        capture.release()
        tried.append(f"{name}: opened, but it gave no frame")
    raise SourceError(f"{description} cannot be read as video; tried {'; '.join(tried)}")


def _open_picamera(resolution) -> FrameSource:
    try:
        from picamera2 import Picamera2  # Only on a Pi, from apt; never a dependency.
    except ImportError as error:
        raise ImportError(PICAMERA_HELP) from error
    try:
        camera = Picamera2()
    except (IndexError, RuntimeError, OSError, ValueError) as error:
        raise SourceError(f"Pi camera: picamera2 found no usable camera ({error}). Check the ribbon cable, that "
                          "`rpicam-hello --list-cameras` lists it, and that no other program is using it") from error
    try:
        size = tuple(resolution) if resolution is not None else camera.sensor_resolution
        # "RGB888" is stored B, G, R in memory: exactly what OpenCV expects, so no conversion per frame.
        camera.configure(camera.create_video_configuration(main={"size": size, "format": "RGB888"}))
        camera.start()
    except (RuntimeError, OSError, ValueError) as error:
        camera.close()
        raise SourceError(f"Pi camera: could not start it ({error}); is another program using it?") from error
    return PiCameraSource(camera)


def _quiet_capture(target, backend, params=()) -> cv2.VideoCapture:
    """A VideoCapture opened without OpenCV's warnings: the error message says what was tried instead.

    `params` (open and read timeouts) are honoured by the FFMPEG backend; one that does not support them
    fails to open, which the caller reports.
    """
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        if params:
            return cv2.VideoCapture(target, backend, list(params))
        return cv2.VideoCapture(target, backend)
    except cv2.error:
        return cv2.VideoCapture()
    finally:
        cv2.utils.logging.setLogLevel(level)


def _first_frame(capture: cv2.VideoCapture, attempts: int) -> np.ndarray | None:
    for attempt in range(attempts):
        ok, frame = capture.read()
        if ok and frame is not None:
            return _as_bgr(frame)
        time.sleep(0.05 * attempt)  # Cameras often need a moment after opening.
    return None


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """Three-channel BGR from what cameras give: BGR, BGRA (picamera2's XBGR) or gray."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _redact(url: str) -> str:
    """The URL without its password, which must not end up in logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# --- Reading: per-frame processing and temporal smoothing -------------------------------------------------------


class Reading(NamedTuple):
    """What the smoother settled on after one processed frame.

    Attributes:
        digits: The voted number ("" when nothing is found).
        confidence: Mean confidence of the frames in the window that agree with the vote.
        status: The status of the newest frame that agrees.
        result: The newest `ReadResult` that agrees, in frame coordinates: the boxes drawn.
        raw: This frame's own `ReadResult`, in frame coordinates.
    """

    digits: str
    confidence: float
    status: str
    result: reader_module.ReadResult
    raw: reader_module.ReadResult


class Smoother:
    """A vote over the last `window` readings, weighted by confidence, so the number does not flicker."""

    def __init__(self, window: int = 5):
        """Starts with an empty window.

        Args:
            window: Readings voted over; 1 passes each reading through.
        """
        if window < 1:
            raise ValueError(f"window={window}: must be at least 1")
        self.window = window
        self._results: collections.deque = collections.deque(maxlen=window)

    def update(self, result: reader_module.ReadResult) -> Reading:
        """Adds a frame's reading and returns the vote."""
        self._results.append(result)
        weights: dict[str, float] = {}
        newest: dict[str, int] = {}
        for position, past in enumerate(self._results):
            weights[past.digits] = weights.get(past.digits, 0.0) + _weight(past)
            newest[past.digits] = position
        # Ties go to the newest reading, so that the view follows a sheet that has changed.
        winner = max(weights, key=lambda digits: (weights[digits], newest[digits]))
        agreeing = [past for past in self._results if past.digits == winner]
        confidence = sum(past.confidence for past in agreeing) / len(agreeing)
        shown = self._results[newest[winner]]
        return Reading(winner, confidence, shown.status, shown, result)

    def reset(self) -> None:
        self._results.clear()


def _weight(result: reader_module.ReadResult) -> float:
    if result.status == constants.STATUS_ERROR:
        return 0.0
    return result.confidence if result.items else NO_DIGIT_WEIGHT


class FrameProcessor:
    """The per-frame step: crop to the ROI, read, map boxes back to the frame, smooth, draw the overlay."""

    def __init__(self, reader, roi: float | None = None, smooth: int = 1, source: str = "camera"):
        """Prepares the step for one stream of frames.

        Args:
            reader: A `DigitReader`.
            roi: Read only a centred box this fraction of the frame's width and height; None reads it all.
            smooth: Readings voted over.
            source: The name results carry.
        """
        if roi is not None and not 0.0 < roi <= 1.0:
            raise ValueError(f"roi={roi}: must be a fraction of the frame in (0, 1], e.g. 0.5")
        self.reader = reader
        self.roi = roi
        self.source = source
        self.smoother = Smoother(smooth)
        self._roi_for_shape: tuple[tuple[int, int], tuple[int, int, int, int] | None] = ((0, 0), None)

    def roi_box(self, shape) -> tuple[int, int, int, int] | None:
        """The ROI's x, y, width, height in a frame of this shape, or None without an ROI."""
        if self.roi is None:
            return None
        height, width = shape[:2]
        if self._roi_for_shape[0] != (height, width):
            box_width, box_height = max(1, round(width * self.roi)), max(1, round(height * self.roi))
            box = ((width - box_width) // 2, (height - box_height) // 2, box_width, box_height)
            self._roi_for_shape = ((height, width), box)
        return self._roi_for_shape[1]

    def read(self, frame: np.ndarray) -> reader_module.ReadResult:
        """This frame's reading, boxes in frame coordinates; a frame that cannot be read gives status "error"."""
        started = time.perf_counter()
        box = self.roi_box(frame.shape)
        region = frame if box is None else frame[box[1]:box[1] + box[3], box[0]:box[0] + box[2]]  # A view, no copy.
        try:
            # The reader's own path (cuts, the line model where they are doubtful), without trying
            # turned frames: a camera is held upright, and turns would cost the frame budget.
            result = self.reader.read_images([region], [self.source], started, turns=False)[0]
            result = dataclasses.replace(result, image_shape=tuple(frame.shape[:2]))
        except (ValueError, cv2.error) as error:
            return reader_module.error_result(self.source, str(error))
        if box is None or not result.items or box[:2] == (0, 0):
            return result
        offset_x, offset_y = box[:2]
        items = tuple(dataclasses.replace(item, box=(item.box[0] + offset_x, item.box[1] + offset_y, *item.box[2:]))
                      for item in result.items)
        return dataclasses.replace(result, items=items)

    def process(self, frame: np.ndarray, caption: str | None = None) -> tuple[Reading, np.ndarray]:
        """Reads a frame, updates the vote and draws the overlay (a new BGR image; the frame is untouched)."""
        reading = self.smoother.update(self.read(frame))
        return reading, self.draw(frame, reading, caption)

    def draw(self, frame: np.ndarray, reading: Reading | None, caption: str | None = None,
             banner: bool = True) -> np.ndarray:
        """The overlay of `reading` on `frame`; frames between processed ones reuse the last reading.

        Each box carries the digit read in it on this frame (`reading.raw`); only the banner's number is
        the vote. Drawing the vote's own frame instead put an old frame's `5` on the `3` now in view for
        as many frames as the vote lagged.
        """
        if reading is None:
            return overlay.draw_reading(frame, _NOTHING_YET, roi=self.roi_box(frame.shape), caption=caption,
                                        banner=banner)
        return overlay.draw_reading(frame, reading.raw, roi=self.roi_box(frame.shape), caption=caption,
                                    headline=(reading.digits, reading.confidence, reading.status), banner=banner)


_NOTHING_YET = reader_module.ReadResult("", constants.STATUS_NO_DIGIT)


class RateMeter:
    """Frames per second over a moving window of the last frames."""

    def __init__(self, window: int = FPS_WINDOW):
        self._times: collections.deque = collections.deque(maxlen=max(2, window))

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.perf_counter() if now is None else now)

    @property
    def rate(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def reset(self) -> None:
        self._times.clear()


class ReadingTally:
    """How many processed frames gave each reading, for the summary; bounded so memory stays flat."""

    def __init__(self, limit: int = MAX_TALLIED_READINGS):
        self.limit = limit
        self.counts: collections.Counter = collections.Counter()

    def add(self, digits: str) -> None:
        key = digits or "none"
        if key in self.counts or len(self.counts) < self.limit:
            self.counts[key] += 1
        else:
            self.counts["other"] += 1

    def describe(self, shown: int = 5) -> str:
        common = self.counts.most_common(shown)
        text = ", ".join(f"{digits} ({count})" for digits, count in common)
        return text + (", ..." if len(self.counts) > shown else "") if text else "none"


# --- Outputs -----------------------------------------------------------------------------------------------------


class JsonLinesWriter:
    """One JSON object per processed frame, flushed at once so that a pipe or `tail -f` sees it live."""

    def __init__(self, path: str | os.PathLike | None):
        """Opens the stream.

        Args:
            path: The file to write (created with its folder, replaced if present); None is stdout.
        """
        self.path = path
        if path is None:
            self.stream: TextIO = sys.stdout
        else:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            # A stream cannot be written atomically: lines appear as frames are read, and close() flushes.
            self.stream = open(path, "w", encoding="utf-8", newline="\n")
        self.closed = False

    def write(self, record: dict) -> bool:
        """Writes one line; False when the reader has gone (a closed pipe), so the run can stop."""
        if self.closed:
            return False
        try:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            self._detach_stdout()
            self.closed = True
            return False
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._detach_stdout()
        if self.path is not None:
            self.stream.close()

    def _detach_stdout(self) -> None:
        """Points stdout at /dev/null so that Python's own flush at exit does not fail on the broken pipe."""
        if self.path is None:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class OverlayWriter:
    """Each processed frame's overlay as frame_000123.png in a folder, each file written atomically.

    A write that fails (disk full) is reported once and overlays stop; the readings go on (issue 12).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.failed = False

    def write(self, index: int, image: np.ndarray) -> pathlib.Path | None:
        if self.failed:
            return None
        path = self.folder / f"frame_{index:06d}.png"
        try:
            write_png(path, image)
        except OSError as error:
            self.failed = True
            _warn(f"warning: {path}: the overlay could not be written ({error}); no more overlays are saved, "
                  f"the readings go on")
            return None
        return path


class VideoRecorder:
    """The annotated frames as a video: MP4 (mp4v) or AVI (MJPG), renamed into place when closed."""

    def __init__(self, path: str | os.PathLike, fps: float | None, realtime: bool = False):
        """Checks the suffix; the file opens with the first frame, when its size is known.

        Args:
            path: The video to write.
            fps: Its frame rate (the source's); None means 30.
            realtime: Frames come from a camera as fast as they are processed: each is written as many
                times as keeps the video in step with the clock, so that it plays at the speed it was seen.

        Raises:
            ValueError: A suffix other than .mp4 or .avi.
        """
        suffix = pathlib.Path(path).suffix.lower()
        if suffix not in RECORD_CODECS:
            raise ValueError(f"record={os.fspath(path)!r}: the video must end in one of {', '.join(RECORD_CODECS)}")
        self.path = pathlib.Path(path)
        self.fps = fps or _DEFAULT_RECORD_FPS
        self.codec = RECORD_CODECS[suffix]
        self.realtime = realtime
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)
        self._clock_start = 0.0
        self._atomic = files.atomic_path(self.path)  # A crash leaves no half-written video under the real name.
        self._temporary = self._atomic.__enter__()

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self._writer = self._open(image.shape)
            self._size, self._clock_start = (image.shape[1], image.shape[0]), time.perf_counter()
        if (image.shape[1], image.shape[0]) != self._size:  # The writer silently drops frames of another size.
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        for _ in range(self._copies_due()):
            self._writer.write(image)
            self.frames += 1

    def resync(self) -> None:
        """Restarts the clock (after a pause), so that the pause is not written as a frozen picture."""
        self._clock_start = time.perf_counter() - self.frames / self.fps

    def _copies_due(self) -> int:
        if not self.realtime or not self.frames:
            return 1
        due = int((time.perf_counter() - self._clock_start) * self.fps) + 1
        return min(max(0, due - self.frames), int(self.fps))  # At most a second's worth after a stall.

    def _open(self, shape) -> cv2.VideoWriter:
        height, width = shape[:2]
        writer = cv2.VideoWriter(str(self._temporary), cv2.VideoWriter_fourcc(*self.codec), self.fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"--record {self.path}: OpenCV cannot write {self.codec} video here "
                          f"(backends: {', '.join(_writer_backends()) or 'none'}); try {_other_suffix(self.path)}")
        return writer

    def close(self) -> None:
        """Finishes the file; with no frame written, no file is made (and an older one is kept)."""
        if self._atomic is None:
            return
        if self._writer is not None:
            self._writer.release()
        atomic, self._atomic = self._atomic, None
        if self.frames:
            atomic.__exit__(None, None, None)
        else:
            # Leaving the context with an exception is how atomic_path is told to discard the temporary file.
            discard = RuntimeError("no frame was recorded")
            atomic.__exit__(type(discard), discard, None)


def _writer_backends() -> list[str]:
    return [cv2.videoio_registry.getBackendName(backend) for backend in cv2.videoio_registry.getWriterBackends()]


def _other_suffix(path: pathlib.Path) -> str:
    return ".avi" if path.suffix.lower() == ".mp4" else ".mp4"


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes a BGR or gray image as PNG, atomically."""
    ok, encoded = cv2.imencode(".png", image, _PNG_FAST)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image as PNG")
    files.write_bytes(path, encoded.tobytes())


def reading_record(index: int, elapsed: float, reading: Reading, fps: float,
                   video_fps: float | None = None) -> dict:
    """The JSON line for one processed frame; from a video file (`video_fps`), also its place in the video."""
    raw = reading.raw
    record = {"frame": index, "time": round(elapsed, 3),
              **({"video_time": round(index / video_fps, 3)} if video_fps else {}),
              "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
              "digits": reading.digits, "confidence": round(reading.confidence, 4), "status": reading.status,
              "raw_digits": raw.digits, "raw_confidence": round(raw.confidence, 4),
              "boxes": [list(box) for box in raw.boxes], "fps": round(fps, 2)}
    if raw.error:
        record["error"] = raw.error
    return record


# --- The run loop ---------------------------------------------------------------------------------------------


class _Pacer:
    """Plays a video file at its own frame rate in the window (a camera paces itself; headless runs flat out)."""

    def __init__(self, fps: float | None):
        self.interval = 1.0 / fps if fps else 0.0
        self.resync()

    def resync(self) -> None:
        self._origin, self._frames = time.perf_counter(), 0

    def delay(self) -> float:
        self._frames += 1
        return self._origin + self._frames * self.interval - time.perf_counter()


class _Session:
    """One live run: the source, processor, outputs and view, and the counts for the summary."""

    def __init__(self, reader, options: CameraOptions, source: FrameSource, stack: contextlib.ExitStack):
        self.options = options
        self.source = source
        self.processor = FrameProcessor(reader, options.roi, options.smooth, source=source.description)
        self.meter = RateMeter()
        self.tally = ReadingTally()
        self.frames_read = 0
        self.frames_processed = 0
        self.reading: Reading | None = None
        self.frame: np.ndarray | None = None
        self.overlay_image: np.ndarray | None = None
        self.started = time.perf_counter()
        self.json = None
        if options.headless or options.output is not None:
            self.json = JsonLinesWriter(options.output)
            stack.callback(self.json.close)
        self.overlays = OverlayWriter(options.overlay_dir) if options.overlay_dir else None
        self.recorder = None
        if options.record:
            self.recorder = VideoRecorder(options.record, source.fps, realtime=source.live)
            stack.callback(self.recorder.close)
        self.view = None
        if not options.headless:
            self.view = live_view.LiveView(f"digitkit: {source.description}")
            stack.callback(self.view.close)
            if not self.view.interactive:
                _warn("Matplotlib's backend cannot open a window here (no display?); running without one. "
                      "Use --headless for JSON lines")
        paced = self.view is not None and self.view.interactive and not source.live
        self.pacer = _Pacer(source.fps) if paced else None
        # Skipped frames need decoding only when something shows or records every frame.
        self.decode_every_frame = self.view is not None or self.recorder is not None

    def loop(self) -> str:
        """Reads frames until something ends the run; returns why it ended."""
        while True:
            stop = self._limit_reached() or self._view_events()
            if stop:
                return stop
            if self.view is not None and self.view.paused:
                self._pause()
                continue
            process = self.frames_read % self.options.every == 0
            if not process and not self.decode_every_frame:
                if not self.source.skip():
                    return self._end_reason()
                self._count_frame()
                continue
            frame = self.source.read()
            if frame is None:
                return self._end_reason()
            index = self._count_frame()
            if not self._handle(index, frame, process):
                return "the output was closed"

    def _count_frame(self) -> int:
        self.frames_read += 1
        self.meter.tick()
        return self.frames_read - 1

    def _handle(self, index: int, frame: np.ndarray, process: bool) -> bool:
        fps = self.meter.rate
        caption = f"{fps:.1f} FPS"
        if process:
            self.reading, overlay_image = self.processor.process(frame, caption)
            self.frames_processed += 1
            self.tally.add(self.reading.digits)
            if self.overlays is not None:
                self.overlays.write(index, overlay_image)
            if self.json is not None and not self.json.write(
                    reading_record(index, time.perf_counter() - self.started, self.reading, fps,
                                   None if self.source.live else self.source.fps)):
                return False
        else:
            overlay_image = self.processor.draw(frame, self.reading, caption)
        if self.recorder is not None:
            self.recorder.write(overlay_image)
        if self.view is not None:
            self.frame, self.overlay_image = frame, overlay_image  # Kept for a snapshot; replaced next frame.
            # The window's header shows the number and rate: the frame shown carries only the boxes.
            self.view.update(self.processor.draw(frame, self.reading, banner=False), self.reading, fps)
            if self.pacer is not None:
                self.view.wait(self.pacer.delay())
        return True

    def _limit_reached(self) -> str:
        if self.options.max_frames is not None and self.frames_read >= self.options.max_frames:
            return f"--max-frames {self.options.max_frames} reached"
        if self.options.duration is not None and time.perf_counter() - self.started >= self.options.duration:
            return f"--duration {self.options.duration:g} s reached"
        return ""

    def _view_events(self) -> str:
        if self.view is None:
            return ""
        self.view.poll()
        if self.view.take_snapshot_request() and self.frame is not None:
            self.snapshot()
        return self.view.quit_reason if self.view.quit_requested else ""

    def _pause(self) -> None:
        self.view.wait(0.05)
        # After a pause, measure and play on from here rather than averaging over it or rushing to catch up.
        self.meter.reset()
        for clock in (self.pacer, self.recorder):
            if clock is not None:
                clock.resync()

    def _end_reason(self) -> str:
        if self.source.live:
            return "the camera stopped giving frames"
        if self.view is not None:
            self.view.hold("end of the video: q or close the window")
        return "the video ended"

    def snapshot(self) -> pathlib.Path:
        """Saves the current frame, its overlay and its reading (JSON) in the overlay folder or here."""
        folder = pathlib.Path(self.options.overlay_dir or ".")
        stem = f"snapshot_{time.strftime('%Y%m%d-%H%M%S')}_{self.frames_read - 1:06d}"
        write_png(folder / f"{stem}.png", self.frame)
        write_png(folder / f"{stem}_overlay.png", self.overlay_image)
        record = {"source": self.source.description}
        if self.reading is not None:
            record.update(reading_record(self.frames_read - 1, time.perf_counter() - self.started, self.reading,
                                         self.meter.rate))
            record["reading"] = self.reading.raw.to_record()
        files.write_json(folder / f"{stem}.json", record)
        _warn(f"snapshot saved: {folder / stem}.png, _overlay.png, .json")
        return folder / f"{stem}.png"

    def summary(self, reason: str) -> str:
        seconds = time.perf_counter() - self.started
        rate = self.frames_read / seconds if seconds > 0 else 0.0
        text = (f"{self.source.description}: {reason}; {self.frames_read} frames read, {self.frames_processed} "
                f"processed in {seconds:.2f} s ({rate:.1f} FPS); readings: {self.tally.describe()}")
        if self.recorder is not None and self.recorder.frames:
            text += f"; recorded {self.recorder.frames} frames to {self.recorder.path}"
        if self.json is not None and self.options.output is not None:
            text += f"; JSON lines in {self.options.output}"
        return text


def run(reader, options: CameraOptions) -> int:
    """Runs the live loop until the source ends, a limit is reached, `q`, or Ctrl-C; returns the exit code.

    Every output is flushed and closed, and a summary goes to stderr, however the run ends. SIGTERM and
    SIGHUP (a service stopped, an SSH session dropped) end it as cleanly as Ctrl-C.

    Args:
        reader: A `DigitReader`.
        options: What to read from and where the readings go.

    Returns:
        0 when frames stop or a limit or `q` ends the run; 1 when the source cannot be opened or gives no
        frame, or an output cannot be written; 2 for invalid options; 130 on Ctrl-C (128 + N on signal N).
    """
    try:
        options.validate()
        check_outputs(options, getattr(reader, "model_path", None))
    except ValueError as error:  # outputs.OutputRefused is a ValueError.
        _warn(f"error: {error}")
        return EXIT_USAGE
    with _stop_on_signals():
        return _run_session(reader, options)


def check_outputs(options: CameraOptions, model_path=None) -> None:
    """Refuses, before the source opens, an --output, --record or overlay folder that is the source, the model
    or a file that is not ours (see outputs.py): `--camera v.mp4 --output v.mp4` would truncate the video.

    Raises:
        outputs.OutputRefused: With both paths named.
    """
    source = str(options.source).strip()
    is_file = not source.isdigit() and source.lower() != PICAMERA and "://" not in source
    protected = outputs.Protected(model=os.fspath(model_path) if model_path is not None else None,
                                  camera_source=source if is_file and os.path.exists(source) else None)
    if options.output is not None:
        outputs.check_results_file(options.output, protected)
    if options.record is not None:
        outputs.check_record_file(options.record, protected)
    if options.overlay_dir is not None:
        outputs.check_overlay_folder(options.overlay_dir, protected)


def _run_session(reader, options: CameraOptions) -> int:
    session = None
    try:
        with contextlib.ExitStack() as stack:  # Closes the source and every output, whatever is raised.
            source = stack.enter_context(open_source(options.source, options.resolution, options.timeout))
            session = _Session(reader, options, source, stack)
            reason, code = session.loop(), EXIT_OK
    except KeyboardInterrupt:
        reason, code = "interrupted (Ctrl-C)", EXIT_INTERRUPTED
    except _Stopped as stop:
        reason, code = f"stopped by {stop}", 128 + stop.signal_number
    except (OSError, ImportError, ValueError) as error:
        reason, code = f"stopped: {error}", EXIT_FAILED
        if session is None:  # The source (or an output) could not be opened: the message is the story.
            reason = f"error: {error}"
    if session is None:
        _warn(reason if code == EXIT_FAILED else f"{reason} while opening {options.source}")
        return code
    _warn(session.summary(reason))
    return code


_Stopped = stopping.Stopped
_stop_on_signals = stopping.stop_on_signals


def _warn(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr itself may be gone (a closed SSH session).
        print(message, file=sys.stderr, flush=True)
