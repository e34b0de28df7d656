"""`digit-export`: the command line of the exporter; it parses options and orchestrates the export."""

from __future__ import annotations

import os
import sys

import click

from exporter.config import QUANTIZE_MODES, ExportConfig


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("model", required=False, type=click.Path())
@click.option("--quantize", type=click.Choice(QUANTIZE_MODES), default="int8", show_default=True,
              help="int8: full integer with int8 input/output; none: float32.")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=500, show_default=True,
              help="Training images that calibrate int8 ranges.")
@click.option("--max-drop", type=click.FloatRange(min=0), default=0.2, show_default=True,
              help="Fail (exit 1) when TFLite accuracy is more than this many points below Keras.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: the model's folder).")
@click.option("--data", "data_path", type=click.Path(), help="MNIST folder or mnist.npz (default: $MNIST_DIR, "
              "Keras cache, download).")
@click.option("--seed", type=int, default=0, show_default=True, help="Picks the calibration images.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs/train", show_default=True,
              help="Where the newest run is looked for when MODEL is not given.")
@click.option("--latency-runs", type=click.IntRange(min=1), default=3000, show_default=True,
              help="Single-image invocations timed for the latency figures.")
@click.option("--force", is_flag=True, help="Export a model from a training run that did not finish "
              "(interrupted or killed), which is refused by default.")
def main(model, quantize, calibration_samples, max_drop, out, data_path, seed, runs_dir, latency_runs, force):
    """Convert MODEL (a model.keras or a run folder; default: the newest run) to TensorFlow Lite.

    Writes model_<mode>.tflite (model_float32.tflite for --quantize none) with its report
    (.report.json, .report.md) and configuration (.config.json), then checks the TFLite model
    against Keras on all 10,000 MNIST test images through digitkit's own edge runtime. A line model
    (digit-train --task line) is detected from its run and proved on the fixed 2,000-line test set
    (sequence accuracy, agreement, latency per 32x256 line) instead.

    \b
    Exit codes:
      0    exported, and within --max-drop
      1    exported, but the accuracy gate failed (the report is still written)
      2    bad options or input (including a model from an unfinished training
           run, unless --force)
      130  interrupted
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for stream in (sys.stdout, sys.stderr):  # A path that is not UTF-8 (b"\xff") prints as \xff, not a traceback.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        config = ExportConfig(model=model, quantize=quantize, calibration_samples=calibration_samples,
                              max_drop=max_drop, out=out, seed=seed, data=data_path, runs_dir=runs_dir,
                              latency_runs=latency_runs, force=force)
    except ValueError as error:
        raise click.UsageError(_as_option(str(error))) from error
    from exporter import model_checks  # No TensorFlow in there: bad input is refused before it loads.
    from trainer import cli as trainer_cli  # The same --data check as digit-train's, also before TensorFlow.

    try:
        model_checks.check_inputs(config)
        trainer_cli.check_data_path(config.data)  # After the model, the argument users give first.
        export, data = _training_modules()
        mnist = data.load_mnist(config.data)
        tflite_path, report = export.export(config, mnist)
    except model_checks.OutputFolderError as error:
        raise click.BadParameter(str(error), param_hint="--out") from error
    except (FileNotFoundError, ValueError) as error:
        about_model = isinstance(error, model_checks.ModelFileError) or _about_model(error)
        raise click.BadParameter(str(error), param_hint="MODEL") if about_model else \
            click.ClickException(str(error)) from error
    except OSError as error:  # A full disk or a folder made read-only while converting.
        raise click.ClickException(f"cannot write the export ({error.strerror or error}: "
                                   f"{error.filename or config.out})") from error
    except KeyboardInterrupt:
        click.echo("\nInterrupted: the export is not finished; any file already written is complete "
                   "(each is written atomically).", err=True)
        raise SystemExit(130) from None
    click.echo(_summary(tflite_path, report))
    if not report["gate_passed"]:
        click.echo(f"Error: accuracy dropped {report['accuracy_drop']:.3f} points, more than --max-drop "
                   f"{config.max_drop}; the report is in {tflite_path.with_suffix('.report.md')}", err=True)
        raise SystemExit(1)


def _training_modules():
    """The export pipeline and the MNIST loader, which need TensorFlow."""
    try:
        from exporter import export
        from trainer import data
    except ImportError as error:
        raise click.ClickException(f"digit-export needs TensorFlow ({error}): pip install 'digitkit[train]' "
                                   f"(in a checkout: pip install '.[train]')") from error
    return export, data


def _about_model(error: Exception) -> bool:
    text = str(error)
    return "model" in text.lower() and "MNIST" not in text


def _summary(tflite_path, report: dict) -> str:
    return "\n".join([
        f"Wrote {tflite_path} ({report['tflite_bytes']:,} bytes; float32 {report['float32_bytes']:,} bytes)",
        f"  Keras accuracy   {report['keras_accuracy']:.2%}",
        f"  TFLite accuracy  {report['tflite_accuracy']:.2%}  (drop {report['accuracy_drop']:+.3f} points, "
        f"gate {report['max_drop']})",
        f"  agreement        {report['agreement']:.3%}",
        f"  latency          {report['tflite_us_per_image']:.1f} µs/{report.get('kind', 'image')} (float32 "
        f"{report['float32_us_per_image']:.1f} µs), 1 thread",
        *([f"  user data        Keras {report['user_data']['keras_accuracy']:.2%}, TFLite "
           f"{report['user_data']['tflite_accuracy']:.2%} on {report['user_data']['images']} crops (agreement "
           f"{report['user_data']['agreement']:.2%})"] if report.get("user_data") else []),
        f"  report           {tflite_path.with_suffix('.report.md')}",
    ])


def _as_option(message: str) -> str:
    """Names the option in a config error: "max_drop=nan: ..." becomes "--max-drop nan: ..."."""
    field, separator, rest = message.partition("=")
    return f"--{field.replace('_', '-')} {rest}" if separator and field.isidentifier() else message


if __name__ == "__main__":
    main()
