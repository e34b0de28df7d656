"""`digit-train`: the command line of the trainer; it parses options and orchestrates the stages."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys

import click

from edge_runtime import files
from trainer import config as config_module, input_files


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (default 12; quick: 3).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step (default 128; quick: 256).")
@click.option("--out", type=click.Path(file_okay=False), default="runs/train", show_default=True,
              help="Parent folder; each run gets a new subfolder.")
@click.option("--name", help="Run folder name (default: start time). Never overwrites: a suffix is added.")
@click.option("--seed", type=int, default=0, show_default=True, help="Makes a run reproducible.")
@click.option("--no-augment", is_flag=True, default=None, help="Train on undistorted images.")
@click.option("--quick", is_flag=True, help="Fast profile: a smaller network, 3 epochs (README: 99.04% in 33.7 s).")
@click.option("--limit", type=click.IntRange(min=20), help="Use only N training samples (smoke runs).")
@click.option("--data", "data_path", type=click.Path(), help="Folder of MNIST IDX files (gzip or raw) or an "
              "mnist.npz. Default: $MNIST_DIR, then the Keras cache, then a download.")
@click.option("--validation-fraction", type=click.FloatRange(0, 0.5, min_open=True), help="Held-out share (default 0.1).")
@click.option("--strategy", type=click.Choice(config_module.STRATEGIES), default="default", show_default=True,
              help="default: one device. mirrored: every local GPU (or one CPU replica). multiworker: the machines "
              "in TF_CONFIG. With a strategy, --batch-size is per replica and the learning rate scales with them.")
@click.option("--stem", type=click.Choice(config_module.STEMS), help="First block: conv5 (5x5 conv + pool), s2d "
              "(space-to-depth 2x2 + 3x3 conv) or stride2 (5x5 conv, stride 2). Default conv5.")
@click.option("--finetune", "finetune_data", type=click.Path(), help="Fine-tune instead of training from scratch, on "
              "your own labelled folder (<folder>/<label>/*.png and/or labels.csv, e.g. from digit-infer "
              "--save-uncertain); needs --from. Default 6 epochs, MNIST replay on.")
@click.option("--from", "finetune_from", type=click.Path(), help="With --finetune: the model to start from: a run "
              "folder, a model.keras, or a .tflite exported into a run folder.")
@click.option("--val", "finetune_val", type=click.Path(), help="With --finetune: a labelled folder to validate on "
              "(default: a 20% share of --finetune's data, or --validation-fraction).")
@click.option("--task", type=click.Choice(config_module.TASKS), default="digit", show_default=True,
              help="digit: the single-digit CNN; line: the CTC line model that reads a strip of digits "
              "(synthetic lines of MNIST digits drawn on the fly; --quick about a minute; --no-augment and "
              "--stem apply to the digit task only).")
@click.option("--lead-in-share", type=click.FloatRange(0, 1),
              help="Line task: share of the training 1s given a long lead-in stroke, as many writers start a 1 "
              "(default 0.3, the packaged line model's; 0 for none; see README, \"The line reader\").")
def main(epochs, batch_size, out, name, seed, no_augment, quick, limit, data_path, validation_fraction, stem,
         finetune_data=None, finetune_from=None, finetune_val=None, task="digit", strategy="default",
         lead_in_share=None):
    """Train the digit CNN on MNIST and write a new run folder with model, metrics and plots.

    \b
    Examples (MNIST test accuracy and wall time as measured in the README):
      digit-train                  # 99.49% in 205.1 s
      digit-train --quick          # 99.04% in 33.7 s
      digit-train --limit 3000 --epochs 2 --out /tmp/runs
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter off the terminal.
    for stream in (sys.stdout, sys.stderr):  # A path that is not UTF-8 (b"\xff") prints as \xff, not a traceback.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if finetune_data or finetune_from or finetune_val:
        from trainer import finetune_cli

        finetune_cli.run(finetune_data, finetune_from, finetune_val, epochs=epochs, batch_size=batch_size, out=out,
                         name=name, seed=seed, no_augment=no_augment, data_path=data_path,
                         validation_fraction=validation_fraction, other=(quick, limit, stem))
    try:
        config = config_module.from_profile(
            "quick" if quick else "default", epochs=epochs, batch_size=batch_size, out=out, name=name, seed=seed,
            augment=False if no_augment else None, limit=limit, data=data_path,
            validation_fraction=validation_fraction, stem=stem, task=task, strategy=strategy,
            lead_in_share=lead_in_share)
    except ValueError as error:
        raise click.UsageError(_as_option(str(error))) from error
    check_data_path(config.data)  # Before TensorFlow loads (seconds): a wrong path fails at once, with exit code 2.
    try:  # Imported after parsing, so --help never loads TensorFlow.
        from trainer import data, report, train
    except ImportError as error:
        raise click.ClickException(f"digit-train needs the [train] extra (TensorFlow, Keras, Matplotlib; here "
                                   f"{error}): pip install 'digitkit[train]' (in a checkout: pip install "
                                   f"'.[train]')") from error

    try:
        mnist = data.load_mnist(config.data)
    except (FileNotFoundError, data.DataError) as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        _exit_interrupted(None)
    try:
        run_dir = _run_dir_for(config, train)
        files.write_json(run_dir / "config.json", {**dataclasses.asdict(config), "data_source": mnist.source})
    except OSError as error:
        raise bad_option(f"cannot create a run folder in {config.out} ({error.strerror or error})", "--out") from error
    click.echo(f"Run folder: {run_dir}  (data: {mnist.source})")
    try:
        if config.task == "line":
            from trainer import lines_report, lines_train

            result = lines_train.train_lines(config, mnist, run_dir)
            metrics = lines_report.write_line_report(result, mnist, planned_epochs=config.epochs)
        else:
            result = train.train(config, mnist, run_dir)
            metrics = report.write_run_report(result, mnist.test_images, mnist.test_labels, planned_epochs=config.epochs)
    except KeyboardInterrupt:  # A (second) Ctrl-C outside fit: what is written stays, every write is atomic.
        _exit_interrupted(run_dir)
    except OSError as error:
        raise click.ClickException(f"{run_dir}: cannot write the run ({error.strerror or error})") from error
    rows = lines_report.summary_rows(config, result, metrics) if config.task == "line" else \
        _summary_rows(config, result, metrics)
    click.echo(report.summary_table(rows))
    if config.task != "line" and metrics["test_accuracy"] < _UNTRAINED_BELOW:
        samples = f"--limit {config.limit}" if config.limit else "all samples"
        click.echo(f"warning: test accuracy {metrics['test_accuracy']:.2%} is no better than guessing: too few "
                   f"samples or epochs ({samples}, {result.epochs_run} epoch"
                   f"{'s' if result.epochs_run != 1 else ''}) to learn from; this model is not worth exporting",
                   err=True)
    if result.interrupted:
        click.echo(f"The run is incomplete ({metrics.get('incomplete_reason', 'interrupted')}); "
                   f"digit-export refuses it without --force.", err=True)
        raise SystemExit(130)


def check_path(value: str, option: str, expected: str, missing: str = "no such file or folder") -> int:
    """Refuses a path option that names nothing, or neither a folder nor a regular file, before TensorFlow loads.

    Args:
        value: The path as given.
        option: The option, for the message ("--data").
        expected: What the option takes, for the message.
        missing: What to say when nothing is there.

    Returns:
        The path's `os.stat` mode (symbolic links followed).

    Raises:
        click.BadParameter: Naming the option, the path and what is wrong (exit code 2).
    """
    try:
        mode = os.stat(value).st_mode
    except FileNotFoundError:
        raise bad_option(f"{value}: {missing}; {expected}", option) from None
    except OSError as error:
        raise bad_option(f"{value}: cannot be read ({error.strerror or error})", option) from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise bad_option(f"{value} is {input_files.file_kind(mode)}; {expected}", option)
    return mode


def check_data_path(value: str | None) -> None:
    """Refuses a --data that cannot hold MNIST, looked at the way `trainer.data.load_mnist` looks for the files.

    Only names are looked at (and a file's first bytes); the content is checked when MNIST is loaded.
    Without --data (None) nothing is checked: $MNIST_DIR, the Keras cache or a download come later.

    Raises:
        click.BadParameter: Naming --data, the path and what is wrong (exit code 2).
    """
    if value is None:
        return
    from trainer import data  # NumPy, not TensorFlow.

    expected = (f"--data takes a folder holding the four MNIST IDX files ({', '.join(data.IDX_NAMES.values())}, "
                f"raw or .gz) or an {data.NPZ_NAME}")
    mode = check_path(value, "--data", expected)
    problem = _mnist_folder_problem(value) if stat.S_ISDIR(mode) else _mnist_file_problem(value)
    if problem:
        raise bad_option(f"{problem}; {expected}", "--data")


def bad_option(message: str, option: str) -> click.BadParameter:
    """A usage error (exit code 2) that names `option` as click's own errors do: "Invalid value for '--data': ..."."""
    context = click.get_current_context(silent=True)
    param = next((param for param in context.command.params if option in param.opts), None) if context else None
    return click.BadParameter(message, ctx=context, param=param, param_hint=None if param else [option])


def _mnist_folder_problem(folder: str) -> str | None:
    """What keeps `folder` from holding MNIST (None: nothing); as `trainer.data._load_from` chooses IDX or npz."""
    from trainer import data

    try:
        names = set(os.listdir(folder))
    except OSError as error:
        return f"{folder}: cannot be read ({error.strerror or error})"
    missing = [stem for stem in data.IDX_NAMES.values() if not {stem, f"{stem}.gz"} & names]
    npz_only = data.IDX_NAMES["train_images"] in missing and os.path.isfile(os.path.join(folder, data.NPZ_NAME))
    if not missing or npz_only:
        return None
    if len(missing) < len(data.IDX_NAMES):
        return f"{folder}: {', '.join(missing)} (raw or .gz) missing"
    return f"{folder}: {'an empty folder' if not names else 'no MNIST file in this folder'}"


def _mnist_file_problem(path: str) -> str | None:
    """What keeps the file `path` from being an MNIST npz (None: it may be one; loading checks the rest)."""
    from trainer import data

    if os.path.basename(path).removesuffix(".gz") in data.IDX_NAMES.values():
        return f"{path} is one MNIST IDX file; give the folder that holds all four ({os.path.dirname(path) or '.'})"
    if path.lower().endswith(".npz"):
        return None  # Meant as the npz: what is wrong with it is said when it is loaded.
    try:
        head = input_files.read_head(path)
    except input_files.InputFileError as error:
        return str(error)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # A zip archive, as an npz is, by another name.
        return None
    return f"{path} is a file, not a folder, and {input_files.describe_start(head, 'an .npz archive')}"


def _run_dir_for(config, train):
    """The run folder; a multiworker run's non-chief workers write theirs to a temporary folder removed at exit,
    since saving and evaluating are collective steps every worker must take (TensorFlow's convention)."""
    from trainer import distribute

    try:
        place = distribute.role(config.strategy)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if place.chief:
        return train.make_run_dir(config)
    import atexit
    import pathlib
    import shutil
    import tempfile

    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f"digit-train-worker{place.index}-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch


def _exit_interrupted(run_dir) -> None:
    """Says what an interrupted run left behind, and exits 130 without a traceback."""
    if run_dir is None:
        click.echo("\nInterrupted before training began; nothing was written.", err=True)
    else:
        kept = sorted(path.name for path in run_dir.iterdir() if not path.name.startswith("."))
        try:
            complete = json.loads((run_dir / "metrics.json").read_text()).get("complete") is True
        except (OSError, ValueError, AttributeError):
            complete = False
        state = ("training had finished; the report was cut short" if complete else
                 "the run is incomplete and digit-export refuses it without --force")
        click.echo(f"\nInterrupted: {run_dir} keeps {', '.join(kept) or 'nothing'}; {state}.", err=True)
    raise SystemExit(130)


_UNTRAINED_BELOW = 0.2
"""A digit model under this test accuracy learned nothing (chance is 10%): the summary says so."""


def _summary_rows(config, result, metrics) -> list[tuple[str, str]]:
    return [
        ("run folder", str(result.run_dir)),
        ("profile", f"{config.profile} (augment {'on' if config.augment else 'off'}, seed {config.seed})"),
        ("epochs", f"{result.epochs_run} run, best {result.best_epoch}" + (" (interrupted)" if result.interrupted else "")),
        ("training time", f"{result.train_seconds:.1f} s"),
        ("parameters", f"{metrics['parameters']:,}"),
        ("best validation accuracy", f"{metrics['best_validation_accuracy']:.2%}"),
        ("test accuracy", f"{metrics['test_accuracy']:.2%}"),
        ("test loss", f"{metrics['test_loss']:.4f}"),
    ]


def _as_option(message: str) -> str:
    """Names the option in a config error: "max_drop=nan: ..." becomes "--max-drop nan: ..."."""
    field, separator, rest = message.partition("=")
    return f"--{field.replace('_', '-')} {rest}" if separator and field.isidentifier() else message


if __name__ == "__main__":
    main()
