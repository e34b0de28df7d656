"""`digit-infer`: reads digits from files, folders, videos and cameras; a thin layer over DigitReader."""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import json
import os
import sys
import time

import click

from edge_runtime import constants

FORMATS = ("table", "csv", "jsonl")
CSV_COLUMNS = ("path", "digits", "confidence", "status", "error", "confidences", "boxes")
EXIT_CODES = """\b
Exit codes:
  0  every input was read (ok, rejected or no digit found)
  1  some inputs could not be read (status error); the others were still read
  2  bad usage: unknown option, missing or invalid model
  130 interrupted (Ctrl-C); results so far are kept
With --camera: 0 when the video ends, a limit or `q` stops the run; 1 when the
source cannot be opened or gives no frame; 130 on Ctrl-C; 143 on SIGTERM."""


def _parse_range(ctx, param, value):
    if value is None:
        return None
    try:
        black, white = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give two numbers, BLACK,WHITE, e.g. 0,1 or -1,1") from None
    return black, white


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--model", type=click.Path(dir_okay=False), help="A .tflite model (default: the int8 model "
              "shipped with digitkit).")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write results here instead of stdout (atomically; "
              "with --camera, JSON lines streamed as frames are read).")
@click.option("--save-overlays", type=click.Path(file_okay=False), help="Write annotated copies into this folder.")
@click.option("--show", is_flag=True, help="Open a Matplotlib window per image: boxes, crops and probabilities.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes that decode, preprocess and classify; 0 = one per CPU for folders.")
@click.option("--single", is_flag=True, help="Read one digit per image: the most prominent.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Report less certain digits as rejected instead of trusting them.")
@click.option("--polarity", type=click.Choice(constants.INK_POLARITIES), default=constants.INK_AUTO,
              show_default=True, help="Ink in the pictures: pen on paper, or chalk on a board.")
@click.option("--model-input-range", callback=_parse_range, metavar="BLACK,WHITE",
              help="For models without digitkit metadata: input values of black and white (default 0,1).")
@click.option("--model-polarity", type=click.Choice(constants.POLARITIES),
              help="For models without metadata: the digit colour the model expects (default white-on-black).")
@click.option("--model-output", type=click.Choice(("auto", "softmax", "logits")),
              help="For models without metadata: what the output holds (default auto).")
@click.option("--camera", "camera_source", is_flag=False, flag_value="0", default=None, metavar="[SOURCE]",
              help="Read live frames: a camera index (default 0), a video file, a URL, or 'picamera' (needs "
              "`sudo apt install python3-picamera2` and a venv made with --system-site-packages).")
@click.option("--headless", is_flag=True, help="Camera without a window: JSON lines to stdout or --output.")
@click.option("--roi", type=click.FloatRange(0.05, 1.0), help="Camera: read only a centred box this fraction "
              "of the frame (e.g. 0.5).")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Camera: process every Nth frame.")
@click.option("--smooth", type=click.IntRange(min=1), default=5, show_default=True,
              help="Camera: vote over the last K processed frames to stop flicker (1 = off).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Camera: stop after N frames.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Camera: stop after SECONDS.")
@click.option("--record", type=click.Path(dir_okay=False), help="Camera: write the annotated video here (.mp4/.avi).")
@click.option("-v", "--verbose", is_flag=True, help="Say which interpreter and model are used.")
def main(paths, model, output_format, output, save_overlays, show, workers, single, min_confidence, polarity,
         model_input_range, model_polarity, model_output, camera_source, headless, roi, every, smooth,
         max_frames, duration, record, verbose):
    """Read handwritten digits from PATHS (image files and folders), or from a camera.

    \b
    Examples:
      digit-infer photo.jpg
      digit-infer scans/ --format csv --output readings.csv --workers 2
      digit-infer samples/ --save-overlays overlays/ --min-confidence 0.8
      digit-infer photo.jpg --show
      digit-infer --camera                     # webcam 0, live window
      digit-infer --camera picamera --headless --max-frames 300
    """
    from edge_runtime import batch, reader as reader_module

    if not paths and camera_source is None:
        raise click.UsageError("give image files or folders to read, or --camera")
    try:
        options = reader_module.ReaderOptions(single=single, min_confidence=min_confidence, polarity=polarity)
        overrides = tuple((key, value) for key, value in (("input_range", model_input_range),
                          ("polarity", model_polarity), ("output", model_output)) if value is not None)
        job = batch.BatchJob(model, options, overrides, save_overlays, max(1, workers))
        reader = job.make_reader()  # Fails fast, before any file is read, on a bad model.
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="--model") from error
    except ImportError as error:
        raise click.ClickException(str(error)) from error
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--model") from error
    if verbose:
        _describe_model(reader)
    if camera_source is not None:
        from edge_runtime import camera

        settings = camera.CameraOptions(source=camera_source, headless=headless, roi=roi, every=every,
                                        smooth=smooth, max_frames=max_frames, duration=duration,
                                        record=record, overlay_dir=save_overlays, output=output)
        raise SystemExit(camera.run(reader, settings))
    raise SystemExit(_read_paths(job, reader, paths, output_format, output, show, workers))


def _describe_model(reader) -> None:
    classifier = reader.classifier
    description = classifier.description
    click.echo(f"interpreter: {classifier.backend}; model: {classifier.path} "
               f"({'embedded metadata' if description.embedded else 'no metadata: MNIST defaults'}); "
               f"input {list(classifier.input.shape)} {classifier.input.dtype.__name__} "
               f"scale {classifier.input.scale:g} zero point {classifier.input.zero_point}; "
               f"expects {description.polarity} in {list(description.input_range)}", err=True)


def _read_paths(job, reader, paths, output_format, output, show, workers) -> int:
    from edge_runtime import batch

    files, problems = batch.discover(paths)
    if workers == 0:
        # Worker start-up (~0.1 s) only pays off for a real batch.
        job = dataclasses.replace(job, workers=(os.cpu_count() or 1) if len(files) >= 64 else 1)
    counts = collections.Counter(result.status for result in problems)
    started = time.perf_counter()
    with _open_output(output) as stream:
        writer = _RowWriter(stream, output_format, [*files, *(p.source for p in problems)])
        for result in problems:
            writer.write(result)
        try:
            for result in _with_progress(batch.read_files(job, files, reader), len(files), stream):
                writer.write(result)
                counts[result.status] += 1
                if show and result.status != constants.STATUS_ERROR:
                    _show(reader, result.source)
        except KeyboardInterrupt:
            writer.close()
            _summary(counts, time.perf_counter() - started, interrupted=True)
            return 130
        writer.close()
    _summary(counts, time.perf_counter() - started)
    return 1 if counts[constants.STATUS_ERROR] else 0


@contextlib.contextmanager
def _open_output(output):
    """stdout, or a temporary file renamed onto `output` only once every row is written."""
    if output is None:
        yield sys.stdout
        return
    from edge_runtime import files

    with files.atomic_path(output) as temporary, open(temporary, "w", newline="", encoding="utf-8") as stream:
        yield stream


def _with_progress(results, total: int, stream):
    """A progress bar on stderr for many files, unless the rows themselves stream to the same terminal."""
    if total < 2 or not sys.stderr.isatty() or (stream is sys.stdout and sys.stdout.isatty()):
        yield from results
        return
    with click.progressbar(results, length=total, label="reading", file=sys.stderr) as bar:
        yield from bar


class _RowWriter:
    """Streams results as an aligned table, CSV or JSON lines."""

    def __init__(self, stream, output_format: str, all_paths: list[str]):
        self.stream, self.format = stream, output_format
        self.path_width = min(60, max([4, *(len(path) for path in all_paths)]))
        if output_format == "csv":
            self.csv = csv.writer(stream)
            self.csv.writerow(CSV_COLUMNS)
        elif output_format == "table":
            self._line(f"{'path'.ljust(self.path_width)}  {'digits':<12} {'confidence':>10}  status")

    def write(self, result) -> None:
        record = result.to_record()
        if self.format == "csv":
            self.csv.writerow([record["path"], record["digits"], f"{record['confidence']:.4f}", record["status"],
                               record["error"], " ".join(f"{v:.4f}" for v in record["confidences"]),
                               " ".join("x".join(str(v) for v in box) for box in record["boxes"])])
        elif self.format == "jsonl":
            self._line(json.dumps(record))
        else:
            path = record["path"] if len(record["path"]) <= self.path_width else "…" + record["path"][-self.path_width + 1:]
            status = record["status"] + (f": {record['error']}" if record["error"] else "")
            self._line(f"{path.ljust(self.path_width)}  {record['digits'] or '-':<12} "
                       f"{record['confidence']:>10.1%}  {status}")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")

    def close(self) -> None:
        self.stream.flush()


def _summary(counts, seconds: float, interrupted: bool = False) -> None:
    total = sum(counts.values())
    parts = ", ".join(f"{counts[status]} {status}" for status in constants.STATUSES if counts[status])
    rate = total / seconds if seconds > 0 else 0.0
    click.echo(f"{'interrupted after ' if interrupted else ''}{total} input{'s' if total != 1 else ''}: "
               f"{parts or 'nothing read'} in {seconds:.2f} s ({rate:,.0f} images/s)", err=True)


def _show(reader, path: str) -> None:
    """Opens the reading figure for one image and waits until the window is closed."""
    import matplotlib.pyplot as pyplot

    from edge_runtime import imageio, overlay

    image = imageio.load_image(path)
    overlay.reading_figure(image, reader.read(image, source=path), figure=pyplot.figure(figsize=(10, 7)))
    pyplot.show()


if __name__ == "__main__":
    main()
