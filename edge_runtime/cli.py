"""`digit-infer`: reads digits from files, folders, videos and cameras; a thin layer over DigitReader."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import sys
import time

import click

from edge_runtime import constants

from edge_runtime.outputs import CSV_COLUMNS, FORMATS  # noqa: F401  (re-exported: where rows are written)
EXIT_CODES = """\b
Exit codes:
  0  every input was read (ok, rejected or no digit found)
  1  some inputs could not be read (status error); the others were still read
  2  bad usage: an unknown option or one that would do nothing, no image in
     the folders given, a missing or invalid model, or an output that would
     overwrite an input, the model or a file that is not a results file
  3  every input was read, but the results could not be written (disk full...)
  130 interrupted (Ctrl-C); results so far are kept, beside a previous results
      file as NAME.interrupted.csv (129 SIGHUP, 143 SIGTERM)
  141 stdout was closed by its reader (| head): stopped quietly
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
@click.option("--model", type=click.Path(dir_okay=False), default="auto", show_default=True, help="A .tflite "
              "model, or auto: the fastest of the variants shipped with digitkit, timed once per machine.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table",
              help="Results format (default: the --output file's suffix, else table).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write results here instead of stdout ('-'), "
              "atomically, as its suffix says (.csv, .jsonl, .parquet) unless --format is given; with --camera, "
              "JSON lines streamed as frames are read.")
@click.option("--save-overlays", type=click.Path(file_okay=False), help="Write annotated copies into this folder.")
@click.option("--save-uncertain", type=click.Path(file_okay=False), help="Collect digits under --min-confidence "
              "(0.9 when not given) and images with no digit found into this labelled folder: 28x28 crops and a "
              "labels.csv holding the guesses, to correct for digit-eval and digit-train --finetune.")
@click.option("--save-crops", type=click.Path(file_okay=False), help="Like --save-uncertain, for every digit read.")
@click.option("--show", is_flag=True, help="Open a Matplotlib window per image: boxes, crops and probabilities.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes that decode, preprocess and classify; 0 = one per CPU for 64 files or more, else one.")
@click.option("--single", is_flag=True, help="Read one digit per image: the most prominent.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=constants.CLI_MIN_CONFIDENCE, show_default=True,
              help="Report less certain digits as rejected (shown as ?) instead of trusting them. Confidences "
              "are calibrated on real photos: at 0.9 96% of the real single digits measured are accepted and all "
              "of those were right; 0.95 accepts 90% (see the README's risk-coverage table).")
@click.option("--reader", "reader_kind", type=click.Choice(("auto", "cuts", "line")), default="auto",
              show_default=True, help="cuts: cut numbers into digits; line: read each line whole with the CTC "
              "line model; auto: the line model where the cuts are doubtful and it is surer.")
@click.option("--line-model", type=click.Path(dir_okay=False), help="A CTC line model (.tflite; default: the "
              "packaged one).")
@click.option("--line-model-blank", type=click.IntRange(min=0), metavar="N", help="The CTC blank class of a "
              "--line-model made elsewhere (no digitkit metadata); its other classes must be the digits 0-9.")
@click.option("--polarity", type=click.Choice(constants.INK_POLARITIES), default=constants.INK_AUTO,
              show_default=True, help="Ink in the pictures: pen on paper, or chalk on a board.")
@click.option("--orientation", type=click.Choice(("auto", "0", "90", "180", "270")), default="auto",
              show_default=True, help="Degrees clockwise the pages lie; auto tries a doubtful page turned and "
              "keeps the most confident reading.")
@click.option("--explain", is_flag=True, help="Say why pieces were not read as digits (on stderr, and in "
              "--save-overlays and --show).")
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
@click.option("--camera-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              metavar="SECONDS", help="Camera: give up on a stream or camera that sends no frame for this long.")
@click.option("--from-list", type=click.Path(dir_okay=False), help="Also read the paths, folders, patterns or "
              "URLs listed in this file, one per line (repeated lines are reported as rows).")
@click.option("--cluster", "cluster_address", metavar="ADDRESS", help="Read on a Dask cluster: a scheduler "
              "address (tcp://host:8786), or local[:N] to start N local workers for this run. Needs "
              "pip install 'digitkit[cluster]'.")
@click.option("--resume", is_flag=True, help="With --output: skip the inputs already in it (same path, size and "
              "mtime, same model; error rows count as read) and append the rest, each record flushed as it is read.")
@click.option("-v", "--verbose", is_flag=True, help="Say which interpreter and model are used.")
def main(paths, model, output_format, output, save_overlays, show, workers, single, min_confidence, polarity,
         model_input_range, model_polarity, model_output, camera_source, headless, roi, every, smooth,
         max_frames, duration, record, verbose, save_uncertain=None, save_crops=None, camera_timeout=10.0,
         orientation="auto", explain=False, from_list=None, cluster_address=None, resume=False,
         reader_kind="auto", line_model=None, line_model_blank=None):
    """Read handwritten digits from PATHS (image files and folders), or from a camera.

    \b
    Examples:
      digit-infer photo.jpg
      digit-infer scans/ --format csv --output readings.csv --workers 2
      digit-infer samples/ --save-overlays overlays/ --min-confidence 0.8
      digit-infer photo.jpg --show
      digit-infer --camera                     # webcam 0, live window
      digit-infer --camera picamera --headless --max-frames 300
      digit-infer scans/ --cluster local:4 --format parquet --output out.parquet --resume
    """
    from edge_runtime import batch, reader as reader_module

    if not paths and camera_source is None and from_list is None:
        raise click.UsageError("give image files or folders to read, or --camera")
    _refuse_unused_options(click.get_current_context(), camera_source, paths or from_list, reader_kind)
    output_format = _format_for(click.get_current_context(), output_format, output, camera_source)
    output = None if output == "-" else output  # "-" is stdout, as for most Unix tools
    if resume and output is None:
        raise click.UsageError("--resume needs --output: the file to continue")
    if any(not os.fspath(path).strip() for path in paths):  # "" would read the current folder.
        raise click.BadParameter("an empty path ('') is not a file or folder; give '.' for the current folder",
                                 param_hint="PATHS")
    try:
        options = reader_module.ReaderOptions(single=single, min_confidence=min_confidence, polarity=polarity,
                                              orientation=orientation, explain=explain, reader=reader_kind,
                                              line_model=line_model, line_model_blank=line_model_blank)
    except ValueError as error:  # "min_confidence=nan: ..." names the field: name its option
        raise click.BadParameter(str(error), param_hint=f"--{str(error).split('=')[0].replace('_', '-')}") from None
    try:
        overrides = tuple((key, value) for key, value in (("input_range", model_input_range),
                          ("polarity", model_polarity), ("output", model_output)) if value is not None)
        job = batch.BatchJob(model, options, overrides, save_overlays, max(1, workers),
                             keep_details=bool(save_uncertain or save_crops or show))
        reader = job.make_reader()  # Fails fast, before any file is read, on a bad model.
        _refuse_overriding_metadata(reader, overrides)
        # Workers load the file this reader chose, so `auto` is resolved (and maybe timed) once.
        job = dataclasses.replace(job, model_path=str(reader.model_path))
    except (FileNotFoundError, ValueError) as error:
        hint = "--line-model" if line_model and line_model in str(error) else "--model"
        raise click.BadParameter(str(error), param_hint=hint) from error
    except ImportError as error:
        raise click.ClickException(str(error)) from error
    if show:
        from edge_runtime import optional

        try:  # Before any file is read, rather than at the first window.
            optional.pyplot("--show")
        except optional.MissingExtra as error:
            raise click.ClickException(str(error)) from error
        from edge_runtime import live_view

        if not live_view.is_interactive_backend():
            click.echo("warning: --show: Matplotlib cannot open a window here (no display?); nothing will be shown. "
                       "Use --save-overlays DIR to keep annotated copies", err=True)
    if verbose:
        _describe_model(reader)
    if camera_source is not None:
        from edge_runtime import camera

        settings = camera.CameraOptions(source=camera_source, headless=headless, roi=roi, every=every,
                                        smooth=smooth, max_frames=max_frames, duration=duration,
                                        record=record, overlay_dir=save_overlays, output=output,
                                        timeout=camera_timeout)
        raise SystemExit(camera.run(reader, settings))
    from edge_runtime import collect

    try:
        collectors = collect.Collectors.open(save_uncertain, save_crops, min_confidence,
                                             reader.classifier.description.labels, reader.classifier.classify)
    except (ValueError, OSError) as error:
        raise click.BadParameter(str(error), param_hint="--save-uncertain/--save-crops") from error
    with collectors:
        code = _read_paths(job, reader, paths, output_format, output, show, workers, collectors,
                           scale=(from_list, cluster_address, resume))
    if collectors:
        click.echo(collectors.summary(), err=True)
    raise SystemExit(code)


_CAMERA_ONLY = ("headless", "roi", "every", "smooth", "max_frames", "duration", "record", "camera_timeout")
_FILES_ONLY = ("save_uncertain", "save_crops", "show", "workers", "from_list", "cluster_address", "resume")
_LINE_ONLY = ("line_model", "line_model_blank")
_SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)


def _option_names(ctx: click.Context, names) -> str:
    options = {parameter.name: parameter.opts[-1] for parameter in ctx.command.params}
    return ", ".join(options[name] for name in names)


def _refuse_unused_options(ctx: click.Context, camera_source, inputs, reader_kind: str) -> None:
    """Options that would do nothing are refused, not ignored: a `--record` without `--camera` writes
    no video, and the user should hear so before the run, not find out after it."""
    if camera_source is not None and inputs:
        raise click.UsageError("give either PATHS (or --from-list) or --camera, not both")
    unused = [name for name in (_FILES_ONLY if camera_source is not None else _CAMERA_ONLY) if _given(ctx, name)]
    if unused:
        where = "reading files" if camera_source is not None else "--camera"
        raise click.UsageError(f"{_option_names(ctx, unused)}: only used with {where}")
    line_options = [name for name in _LINE_ONLY if _given(ctx, name)]
    if reader_kind == "cuts" and line_options:
        raise click.UsageError(f"{_option_names(ctx, line_options)}: --reader cuts uses no line model (choose "
                               f"--reader auto or line)")


def _format_for(ctx: click.Context, output_format: str, output, camera_source) -> str:
    """The results format: --format, else the --output file's suffix (`r.csv` is CSV), else a table.

    A --format that contradicts a known suffix is refused: CSV rows in `results.jsonl` would be read as
    broken JSON by the next tool. The camera writes JSON lines only.
    """
    suffix_format = _SUFFIX_FORMATS.get(os.path.splitext(os.fspath(output))[1].lower()) if output else None
    given = _given(ctx, "output_format")
    if camera_source is not None:
        if given and output_format != "jsonl":
            raise click.UsageError(f"--camera writes JSON lines: leave --format out (or give jsonl), not "
                                   f"--format {output_format}")
        if suffix_format not in (None, "jsonl"):
            raise click.UsageError(f"--camera writes JSON lines: give an --output ending in .jsonl, not {output!r}")
        return "jsonl"
    if not given:
        return suffix_format or output_format
    if suffix_format is not None and suffix_format != output_format:
        raise click.UsageError(f"--format {output_format} does not match --output {output!r} (a .{suffix_format} "
                               f"name); leave --format out to write {suffix_format}, or rename the file")
    return output_format


def _refuse_overriding_metadata(reader, overrides) -> None:
    """--model-polarity and friends describe models without metadata; on a model with digitkit metadata
    they would only contradict it and garble every reading (47 of the 209 real photos changed)."""
    if overrides and reader.classifier.description.embedded:
        names = ", ".join(f"--model-{key.replace('_', '-')}" for key, _ in overrides)
        raise click.BadParameter(
            f"{reader.classifier.path} carries digitkit metadata (it expects "
            f"{reader.classifier.description.polarity} in {list(reader.classifier.description.input_range)}); "
            f"these options are for models without it. For dark ink on light paper, use --polarity "
            f"dark-on-light (auto detects it)", param_hint=names)


def _explain(result) -> None:
    """Why pieces of one image were not read as digits, one line each, on stderr."""
    from edge_runtime import outputs

    name = outputs.display(result.source)
    if result.orientation:
        click.echo(f"{name}: read turned: the page lies {result.orientation} degrees clockwise", err=True)
    for note in result.notes:
        click.echo(f"{name}: {note}", err=True)
    for (x, y, width, height), reason in result.dropped:
        click.echo(f"{name}: dropped {width}x{height} at ({x}, {y}): {reason}", err=True)


def _describe_model(reader) -> None:
    classifier = reader.classifier
    description = classifier.description
    click.echo(f"model choice: {reader.model_choice.reason}", err=True)
    click.echo(f"interpreter: {classifier.backend}; model: {classifier.path} "
               f"({'embedded metadata' if description.embedded else 'no metadata: MNIST defaults'}); "
               f"input {list(classifier.input.shape)} {classifier.input.dtype.__name__} "
               f"scale {classifier.input.scale:g} zero point {classifier.input.zero_point}; "
               f"expects {description.polarity} in {list(description.input_range)}", err=True)
    if classifier.assumed:
        click.echo(f"assumed: {classifier.assumed}", err=True)


def _read_paths(job, reader, paths, output_format, output, show, workers, collectors=None,
                scale=(None, None, False)) -> int:
    from edge_runtime import batch, inputs, outputs, stopping

    from_list, cluster_address, resume = scale
    try:
        files, problems = inputs.gather(paths, from_list, skip=job.overlay_dir)
    except (OSError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--from-list") from error
    if not files and not problems:
        named = ", ".join(repr(os.fspath(path)) for path in [*paths, *([from_list] if from_list else [])])
        raise click.UsageError(f"no image found in {named} (image files: {', '.join(batch.FOUND_SUFFIXES)}; "
                               f"hidden files and digitkit's own overlays are skipped)")
    _check_outputs(job, reader, paths, files, output)
    # Worker start-up (~0.1 s) only pays off for a real batch; more workers than files or CPUs only cost memory.
    cpus = os.cpu_count() or 1
    wanted = workers or (cpus if len(files) >= 64 else 1)
    job = dataclasses.replace(job, workers=max(1, min(wanted, cpus, len(files))))
    if output_format == "parquet":
        from edge_runtime import optional, parquet_results

        try:  # Before any file is read.
            parquet_results.require_pyarrow()
        except optional.MissingExtra as error:
            raise click.ClickException(str(error)) from None
    resumable = _resumable(job, reader, output, output_format) if resume else None
    if resumable is not None:
        files, problems, skipped = resumable.skip_done(files, problems)
        click.echo(f"--resume: {skipped} input{'s' if skipped != 1 else ''} already in {outputs.display(output)}, "
                   f"{len(files) + len(problems)} to read" + (f" (dropped a record cut short by the last run, "
                   f"{resumable.dropped_bytes} bytes)" if resumable.dropped_bytes else ""), err=True)
    session = _cluster_session(cluster_address) if cluster_address and files else None
    counts = collections.Counter(result.status for result in problems)
    errors = [result for result in problems if result.status == constants.STATUS_ERROR]
    started = time.perf_counter()
    stopped = None
    interruption = outputs.Interruption()
    try:
        with stopping.stop_on_signals(), (resumable or outputs.open_results(output, interruption)) as stream:
            writer = resumable or outputs.WRITERS[output_format](stream, output_format,
                                                                 [*files, *(p.source for p in problems)])
            for result in problems:
                writer.write(result)
            if session is not None:  # Workers load the model the driver resolved ("auto" could differ there).
                results = session.read_files(dataclasses.replace(job, model_path=str(reader.model_path)), files)
            else:
                results = batch.read_files(job, files, reader)
            try:
                with contextlib.closing(results):  # Ends the worker pool at once on Ctrl-C or a signal.
                    for result in _with_progress(collectors.watch(results) if collectors else results, len(files),
                                                 stream):
                        writer.write(result)
                        counts[result.status] += 1
                        if result.status == constants.STATUS_ERROR:
                            errors.append(result)
                        if getattr(result, "warning", ""):
                            click.echo(f"warning: {outputs.display(result.warning)}", err=True)
                        if job.options.explain:
                            _explain(result)
                        if show and result.status != constants.STATUS_ERROR:
                            _show(result)
            except KeyboardInterrupt:
                stopped = "interrupted (Ctrl-C)", 130
            except stopping.Stopped as stop:
                stopped = f"stopped by {stop}", stop.exit_code
            except _cluster_errors() as error:  # The rows before the lost chunk are kept.
                click.echo(f"error: {error}", err=True)
                stopped = "cluster failed", 1
            interruption.stopped = stopped is not None
            writer.close()  # The rows so far are kept, as after Ctrl-C.
    except outputs.OutputRefused as error:
        raise click.UsageError(str(error)) from None
    except outputs.OutputFailed as error:
        if counts:  # with none written, a count would only say "nothing read" of a run that did read
            _summary(counts, time.perf_counter() - started)
        click.echo(f"error: {error}", err=True)
        return outputs.EXIT_OUTPUT_FAILED
    except outputs.PipeClosed:
        outputs.detach_stdout()  # As a Unix tool in a pipe: stop quietly once the reader has gone.
        return outputs.EXIT_PIPE_CLOSED
    except stopping.Stopped as stop:  # Arrived while opening or closing the output: nothing half-written is kept.
        _summary(counts, time.perf_counter() - started, interrupted=True)
        return stop.exit_code
    if stopped is not None:
        _summary(counts, time.perf_counter() - started, interrupted=True)
        if interruption.partial is not None:
            click.echo(f"{outputs.display(output)} holds earlier results and was kept as it was; the rows read "
                       f"before the run stopped are in {outputs.display(interruption.partial)}", err=True)
        return stopped[1]
    _summary(counts, time.perf_counter() - started)
    if output is not None:
        _name_errors(errors)
    return 1 if counts[constants.STATUS_ERROR] else 0


_ERRORS_NAMED = 20
"""How many unreadable inputs the end of a run names on stderr when the rows went to a file."""


def _name_errors(errors: list) -> None:
    """The inputs that could not be read, named at the end: with --output their rows are in the file only."""
    if not errors:
        return
    from edge_runtime import outputs

    click.echo(f"{len(errors)} input{'s' if len(errors) != 1 else ''} could not be read:", err=True)
    for result in errors[:_ERRORS_NAMED]:
        click.echo(f"  {outputs.display(result.error or result.source)}", err=True)
    if len(errors) > _ERRORS_NAMED:
        click.echo(f"  ... and {len(errors) - _ERRORS_NAMED} more (status 'error' in the results)", err=True)


def _resumable(job, reader, output, output_format):
    """The output of a `--resume` run: checked against the model and options (exit 2 when refused)."""
    from edge_runtime import cluster, resume

    identity = resume.run_identity(reader.model_path, cluster.model_sha256(reader.model_path), job.options,
                                   job.classifier_overrides, output_format)
    try:
        return resume.ResumableResults(output, output_format, identity)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _cluster_session(address):
    """Connects to the cluster (or starts the local one) before any output is opened."""
    from edge_runtime import cluster, optional

    try:
        return cluster.Session(cluster.ClusterOptions(address))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--cluster") from None
    except (optional.MissingExtra, cluster.ClusterError) as error:
        raise click.ClickException(str(error)) from None


def _cluster_errors() -> tuple[type, ...]:
    """ClusterError, without importing Dask."""
    from edge_runtime import cluster

    return (cluster.ClusterError,)


def _check_outputs(job, reader, paths, files, output) -> None:
    """Refuses (exit 2) an --output or --save-overlays that would destroy an input or the model; see outputs.py."""
    from edge_runtime import outputs

    protected = outputs.Protected(inputs=tuple(files), input_folders=tuple(p for p in paths if os.path.isdir(p)),
                                  model=str(reader.model_path))
    try:
        if output is not None:
            outputs.check_results_file(output, protected)
        if job.overlay_dir:
            outputs.check_overlay_folder(job.overlay_dir, protected)
    except outputs.OutputRefused as error:
        raise click.UsageError(str(error)) from None


def _with_progress(results, total: int, stream):
    """A progress bar on stderr for many files, unless the rows themselves stream to the same terminal."""
    if total < 2 or not sys.stderr.isatty() or (stream is sys.stdout and sys.stdout.isatty()):
        yield from results
        return
    with click.progressbar(results, length=total, label="reading", file=sys.stderr) as bar:
        yield from bar


def _summary(counts, seconds: float, interrupted: bool = False) -> None:
    total = sum(counts.values())
    parts = ", ".join(f"{counts[status]} {status}" for status in constants.STATUSES if counts[status])
    rate = total / seconds if seconds > 0 else 0.0
    click.echo(f"{'interrupted after ' if interrupted else ''}{total} input{'s' if total != 1 else ''}: "
               f"{parts or 'nothing read'} in {seconds:.2f} s ({rate:,.0f} images/s)", err=True)


def _show(result) -> None:
    """Opens the reading figure for one image and waits until the window is closed.

    The reading is the batch's own (kept with its crops and probabilities); the file is only decoded
    again for the picture, never read twice.
    """
    from edge_runtime import imageio, optional, overlay

    pyplot = optional.pyplot("--show")
    image = imageio.load_image(result.source)
    overlay.reading_figure(image, result, figure=pyplot.figure(figsize=(10, 7)))
    pyplot.show()


if __name__ == "__main__":
    main()
