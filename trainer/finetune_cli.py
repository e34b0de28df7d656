"""`digit-train --finetune`: turns the command line's options into a fine-tuning run and prints its summary."""

from __future__ import annotations

import datetime
import shlex

import click

from trainer import config as config_module
from trainer.cli import bad_option, check_data_path, check_path

MODEL_EXPECTED = "give a model.keras, a run folder holding one, or a .tflite exported into a run folder"
LABELLED_EXPECTED = "give a labelled folder (<folder>/<label>/*.png and/or labels.csv) or a CSV with columns path,label"


def run(finetune_data, finetune_from, finetune_val, *, epochs, batch_size, out, name, seed, no_augment, data_path,
        validation_fraction, other) -> None:
    """Runs `trainer.finetune` from `digit-train` options; exits 0, 130 when interrupted, or with a click error."""
    if not finetune_data or not finetune_from:
        raise click.UsageError("fine-tuning needs both --finetune FOLDER (your labelled digits) and --from MODEL_OR_RUN")
    if any(value not in (None, False) for value in other):
        raise click.UsageError("--quick, --limit and --stem choose a network to train from scratch; with --finetune "
                               "the network is --from's")
    check_paths(finetune_data, finetune_from, finetune_val, data_path)
    try:  # Imported here so that --help never loads TensorFlow.
        from trainer import data, finetune, report, train
    except ImportError as error:
        raise click.ClickException(f"digit-train --finetune needs TensorFlow and Keras ({error}): "
                                   f"pip install 'digitkit[train]' (in a checkout: pip install '.[train]')") from error
    values = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "data": data_path,
              "validation_fraction": validation_fraction, "augment": False if no_augment else None}
    try:
        settings = finetune.FinetuneConfig(
            user_data=finetune_data, source=finetune_from, validation=finetune_val, out=out,
            name=name or datetime.datetime.now().strftime("finetune-%Y%m%d-%H%M%S"),
            **{key: value for key, value in values.items() if value is not None})
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    try:
        finetune.resolve_source(settings.source)
    except (FileNotFoundError, ValueError) as error:
        raise bad_option(str(error), "--from") from error
    try:
        mnist = data.load_mnist(settings.data)
    except (FileNotFoundError, data.DataError) as error:  # As without --finetune: the data, not the options.
        raise click.ClickException(str(error)) from error
    run_dir = train.make_run_dir(config_module.TrainConfig(out=settings.out, name=settings.name))
    click.echo(f"Run folder: {run_dir}  (fine-tuning {settings.source} on {settings.user_data})")
    try:
        result = finetune.finetune(settings, mnist, run_dir)
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(f"{error} (run folder {run_dir} left without a model)") from error
    for warning in result["skipped"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary_table(finetune.summary_rows(result, run_dir)))
    click.echo(f"Next: digit-export {shlex.quote(str(run_dir))} --quantize int8")
    raise SystemExit(130 if result["interrupted"] else 0)


def check_paths(finetune_data, finetune_from, finetune_val, data_path) -> None:
    """Refuses paths that name nothing before TensorFlow loads (seconds), so that a typo fails at once (exit code 2).

    What --from and --finetune hold (a Keras model, labelled digits) is judged when they are read.

    Raises:
        click.BadParameter: Naming the option, the path and what is wrong.
    """
    check_path(finetune_from, "--from", MODEL_EXPECTED, missing="model not found")
    check_path(finetune_data, "--finetune", LABELLED_EXPECTED)
    if finetune_val:
        check_path(finetune_val, "--val", LABELLED_EXPECTED)
    check_data_path(data_path)
