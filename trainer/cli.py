"""`digit-train`: the command line of the trainer; it parses options and orchestrates the stages."""

from __future__ import annotations

import dataclasses
import os

import click

from edge_runtime import files
from trainer import config as config_module


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (default 12; quick: 3).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step (default 128; quick: 256).")
@click.option("--out", type=click.Path(file_okay=False), default="runs/train", show_default=True,
              help="Parent folder; each run gets a new subfolder.")
@click.option("--name", help="Run folder name (default: start time). Never overwrites: a suffix is added.")
@click.option("--seed", type=int, default=0, show_default=True, help="Makes a run reproducible.")
@click.option("--no-augment", is_flag=True, default=None, help="Train on undistorted images.")
@click.option("--quick", is_flag=True, help="Fast profile: a smaller network, 3 epochs, 99%+ in about a minute.")
@click.option("--limit", type=click.IntRange(min=20), help="Use only N training samples (smoke runs).")
@click.option("--data", "data_path", type=click.Path(), help="Folder of MNIST IDX files (gzip or raw) or an "
              "mnist.npz. Default: $MNIST_DIR, then the Keras cache, then a download.")
@click.option("--validation-fraction", type=click.FloatRange(0, 0.5, min_open=True), help="Held-out share (default 0.1).")
def main(epochs, batch_size, out, name, seed, no_augment, quick, limit, data_path, validation_fraction):
    """Train the digit CNN on MNIST and write a new run folder with model, metrics and plots.

    \b
    Examples:
      digit-train                      # default: ~99.6% in about 4 minutes on 2 cores
      digit-train --quick              # ~99.3% in about a minute
      digit-train --limit 3000 --epochs 2 --out /tmp/runs
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TensorFlow's start-up chatter off the terminal.
    try:
        config = config_module.from_profile(
            "quick" if quick else "default", epochs=epochs, batch_size=batch_size, out=out, name=name, seed=seed,
            augment=False if no_augment else None, limit=limit, data=data_path,
            validation_fraction=validation_fraction)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    try:  # Imported after parsing, so --help never loads TensorFlow.
        from trainer import data, report, train
    except ImportError as error:
        raise click.ClickException(f"digit-train needs TensorFlow and Keras ({error}): "
                                   f"pip install 'digitkit[train]' (in a checkout: pip install '.[train]')") from error

    try:
        mnist = data.load_mnist(config.data)
    except (FileNotFoundError, data.DataError) as error:
        raise click.ClickException(str(error)) from error
    run_dir = train.make_run_dir(config)
    files.write_json(run_dir / "config.json", {**dataclasses.asdict(config), "data_source": mnist.source})
    click.echo(f"Run folder: {run_dir}  (data: {mnist.source})")
    result = train.train(config, mnist, run_dir)
    metrics = report.write_run_report(result, mnist.test_images, mnist.test_labels)
    click.echo(report.summary_table(_summary_rows(config, result, metrics)))
    if result.interrupted:
        raise SystemExit(130)


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


if __name__ == "__main__":
    main()
