"""Measures the live camera path on one core: per-frame reading + overlay, display FPS, and memory over a long run.

Frames are synthetic 640x480 "paper" with a three-digit number, moved a little and noised frame to frame.
Everything runs pinned to one CPU core with OpenCV on one thread, as on a busy Raspberry Pi.

    python scripts/bench_camera.py                    # the packaged model
    python scripts/bench_camera.py --model run.tflite --frames 10000 --json bench.json

Targets: process() median <= 5 ms; blitted display >= 30 FPS; RSS growth <= 10 MB over 10,000 frames.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

SIZE = (640, 480)
FALLBACK_MODEL = pathlib.Path("/tmp/exp1/model_int8.tflite")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .tflite model (default: the packaged one)")
    parser.add_argument("--timing-frames", type=int, default=300, help="frames timed for process()")
    parser.add_argument("--display-frames", type=int, default=200, help="frames timed for each display mode")
    parser.add_argument("--frames", type=int, default=10_000, help="frames of the long run measuring memory")
    parser.add_argument("--view-frames", type=int, default=2_000, help="frames shown while measuring the view's memory")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    pin_to_one_core()
    import matplotlib

    matplotlib.use("Agg")  # No window: the display cost measured is Matplotlib's drawing, not a GUI's.
    from edge_runtime import camera, overlay, reader as reader_module

    reader = reader_module.DigitReader(pick_model(args.model, reader_module.DEFAULT_MODEL))
    frames = synthetic_frames()
    figures = {"cpu": "one core (sched_setaffinity {0}), cv2.setNumThreads(1)", "frame": list(SIZE)}
    figures["process_ms"] = time_process(camera, overlay, reader, frames, args.timing_frames)
    figures["display_fps"] = time_display(camera, reader, frames, args.display_frames)
    figures["memory"] = measure_memory(camera, reader, frames, args.frames)
    figures["view_memory"] = measure_view_memory(camera, reader, frames, args.view_frames)
    print_table(figures)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)


def pick_model(given, packaged) -> pathlib.Path:
    for path in ([pathlib.Path(given)] if given else [pathlib.Path(packaged), FALLBACK_MODEL]):
        if path.is_file():
            return path
    sys.exit(f"no model found: give --model (looked for {packaged} and {FALLBACK_MODEL})")


def synthetic_frames(count: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Paper-like frames with a three-digit number that moves a little, with sensor noise."""
    random = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        frame = np.full((SIZE[1], SIZE[0], 3), 228, np.uint8)
        frame[:] = np.linspace(210, 240, SIZE[0], dtype=np.uint8)[None, :, None]  # Uneven light.
        origin = (150 + int(random.integers(-20, 20)), 320 + int(random.integers(-20, 20)))
        cv2.putText(frame, "905", origin, cv2.FONT_HERSHEY_SIMPLEX, 6, (35, 35, 40), 14, cv2.LINE_AA)
        noise = random.normal(0, 4, frame.shape)
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames


def summarise(milliseconds: list[float]) -> dict:
    ordered = sorted(milliseconds)
    return {"median": round(statistics.median(ordered), 3), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
            "min": round(ordered[0], 3), "runs": len(ordered)}


def timed(function, frames, runs: int) -> list[float]:
    function(frames[0])  # Warm-up: the interpreter and the first-use allocations.
    times = []
    for index in range(runs):
        frame = frames[index % len(frames)]
        started = time.perf_counter()
        function(frame)
        times.append((time.perf_counter() - started) * 1000)
    return times


def time_process(camera, overlay, reader, frames, runs: int) -> dict:
    """process() on whole frames and with an ROI, and its parts: finding, classifying, drawing."""
    processor = camera.FrameProcessor(reader, smooth=5)
    processor_roi = camera.FrameProcessor(reader, roi=0.8, smooth=5)
    result, crops = reader.read(frames[0]), reader.find(frames[0])
    parts = {
        "process (read + smooth + overlay)": lambda frame: processor.process(frame, "30.0 FPS"),
        "  find (preprocess)": reader.find,
        "  classify": lambda frame: reader.classify([crops], [""], [frame.shape[:2]]),
        "  overlay": lambda frame: overlay.draw_reading(frame, result, caption="30.0 FPS"),
        "process, --roi 0.8": lambda frame: processor_roi.process(frame, "30.0 FPS"),
    }
    print(f"read: {result.digits!r} from the synthetic frame", file=sys.stderr)
    return {name: summarise(timed(function, frames, runs)) for name, function in parts.items()}


def time_display(camera, reader, frames, runs: int) -> dict:
    from edge_runtime import live_view

    processor = camera.FrameProcessor(reader, smooth=5)
    shown = [processor.process(frame, "30.0 FPS") for frame in frames]
    figures = {}
    for name, blit in (("blit", True), ("full redraw", False)):
        view = live_view.LiveView(blit=blit)
        try:
            def show(index):
                reading, image = shown[index % len(shown)]
                view.update(image, reading, 30.0)

            show(0)
            started = time.perf_counter()
            for index in range(runs):
                show(index)
            figures[name] = round(runs / (time.perf_counter() - started), 1)
        finally:
            view.close()
    original = live_view._frame_image_class
    from matplotlib.image import AxesImage

    live_view._frame_image_class = lambda: AxesImage  # Matplotlib's own float resampling, for comparison.
    try:
        view = live_view.LiveView(blit=True)
        view.update(shown[0][1], shown[0][0], 30.0)
        started = time.perf_counter()
        for index in range(runs // 4):
            reading, image = shown[index % len(shown)]
            view.update(image, reading, 30.0)
        figures["blit, stock AxesImage"] = round(runs // 4 / (time.perf_counter() - started), 1)
        view.close()
    finally:
        live_view._frame_image_class = original
    view = live_view.LiveView(blit=True)
    try:  # The whole live step: read, overlay and show.
        started = time.perf_counter()
        for index in range(runs):
            reading, image = processor.process(frames[index % len(frames)], "30.0 FPS")
            view.update(image, reading, 30.0)
        figures["process + blit"] = round(runs / (time.perf_counter() - started), 1)
    finally:
        view.close()
    return figures


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_memory(camera, reader, frames, count: int) -> dict:
    """Runs the real headless loop (JSON lines to a scratch file) over `count` synthetic frames, sampling RSS."""
    warm_up = min(500, count // 4)
    samples: dict[int, float] = {}

    class Synthetic(camera.FrameSource):
        description, live, fps = "synthetic frames", False, 30.0

        def __init__(self):
            self.index = 0

        def read(self):
            if self.index >= count:
                return None
            if self.index == warm_up or self.index % 1000 == 0:
                samples[self.index] = rss_mb()
            self.index += 1
            return frames[self.index % len(frames)].copy()  # A fresh array per frame, as a camera gives.

    original = camera.open_source
    camera.open_source = lambda source, resolution=None, timeout=None: Synthetic()
    # A real file: digit-infer refuses to write results to a device such as /dev/null.
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as scratch:
        try:
            started = time.perf_counter()
            code = camera.run(reader, camera.CameraOptions(source="synthetic", headless=True,
                                                           output=os.path.join(scratch, "frames.jsonl")))
            seconds = time.perf_counter() - started
        finally:
            camera.open_source = original
    if warm_up not in samples:
        raise RuntimeError(f"the camera loop stopped before frame {warm_up} (exit {code})")
    end = rss_mb()
    return {"frames": count, "exit_code": code, "seconds": round(seconds, 1), "warm_up_frames": warm_up,
            "rss_after_warm_up_mb": round(samples[warm_up], 1), "rss_end_mb": round(end, 1),
            "growth_mb": round(end - samples[warm_up], 2),
            "samples_mb": {str(index): round(value, 1) for index, value in sorted(samples.items())}}


def measure_view_memory(camera, reader, frames, count: int) -> dict:
    """RSS growth of the live view itself (blitting under Agg) over `count` frames, after a warm-up."""
    from edge_runtime import live_view

    processor = camera.FrameProcessor(reader, smooth=5)
    shown = [processor.process(frame, "30.0 FPS") for frame in frames]
    view = live_view.LiveView(blit=True)
    try:
        for index in range(count + 200):
            if index == 200:
                before = rss_mb()
            reading, image = shown[index % len(shown)]
            view.update(image, reading, 30.0 + index % 7)  # Changing text, as the FPS does.
        after = rss_mb()
    finally:
        view.close()
    return {"frames": count, "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
            "growth_mb": round(after - before, 2)}


def print_table(figures: dict) -> None:
    print(f"\nlive camera path, {figures['frame'][0]}x{figures['frame'][1]} frames, {figures['cpu']}")
    print(f"{'per frame':36} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
    for name, values in figures["process_ms"].items():
        print(f"{name:36} {values['median']:>10.2f} {values['p90']:>8.2f} {values['min']:>8.2f}")
    print(f"\n{'display (Agg)':36} {'FPS':>10}")
    for name, value in figures["display_fps"].items():
        print(f"{name:36} {value:>10.1f}")
    memory = figures["memory"]
    print(f"\nmemory over {memory['frames']:,} frames of the headless loop ({memory['seconds']} s): "
          f"RSS {memory['rss_after_warm_up_mb']} MB after {memory['warm_up_frames']} frames -> "
          f"{memory['rss_end_mb']} MB, growth {memory['growth_mb']:+.2f} MB")
    print("samples (frame: MB): " + ", ".join(f"{k}: {v}" for k, v in memory["samples_mb"].items()))
    view = figures["view_memory"]
    print(f"live view over {view['frames']:,} frames: RSS {view['rss_before_mb']} -> {view['rss_after_mb']} MB, "
          f"growth {view['growth_mb']:+.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
