"""`digit-eval`: the command line of the evaluator; it parses options, runs `evaluate` and prints the summary."""

from __future__ import annotations

import sys

import click

from edge_runtime import constants

EXIT_CODES = """\b
Exit codes:
  0  evaluated (and at or above --min-accuracy)
  1  evaluated, but the accuracy is below --min-accuracy (the reports are still written)
  2  bad usage: missing or invalid model, nothing to evaluate in the data, or an
     --out folder the reports cannot go into (checked first: nothing is written)
  3  evaluated, but the reports could not be written (disk full...)"""


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=EXIT_CODES)
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("--compare", type=click.Path(dir_okay=False), help="A second .tflite (or default: the packaged one), "
              "evaluated side by side on the same images; the report lists the reads that differ.")
@click.option("--out", type=click.Path(file_okay=False), default="digit-eval", show_default=True,
              help="Folder for report.json, report.md and worst_errors.png (only when there are mistakes to show; "
              "one from an earlier run is removed).")
@click.option("--min-accuracy", type=click.FloatRange(0, 1), help="Exit 1 when MODEL's accuracy is below this "
              "(e.g. 0.95).")
@click.option("--worst", type=click.IntRange(min=0), default=36, show_default=True,
              help="Most confident mistakes shown in worst_errors.png.")
@click.option("--polarity", type=click.Choice(constants.INK_POLARITIES), default=constants.INK_AUTO,
              show_default=True, help="Ink in whole images (28x28 crops are the model's input as they are).")
def main(model, data, compare, out, min_accuracy, worst, polarity):
    """Evaluate MODEL (a .tflite; "default" for the packaged one) on DATA, a labelled folder
    (<folder>/<label>/*.png and/or labels.csv) or a labels CSV with columns path,label.

    \b
    Examples:
      digit-eval default my-digits/
      digit-eval runs/train/mine/model_int8.tflite uncertain/labels.csv --compare default
      digit-eval model.tflite my-digits/ --min-accuracy 0.95 --out reports/
    """
    from edge_runtime import evaluate, outputs

    for stream in (sys.stdout, sys.stderr):  # A path that is not UTF-8 (b"\xff") prints as \xff, not a traceback.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        options = evaluate.EvalOptions(model=_model(model), data=data, compare=_model(compare), out=out,
                                       min_accuracy=min_accuracy, worst=worst, polarity=polarity)
        report = evaluate.evaluate(options)
    except outputs.OutputRefused as error:
        raise click.BadParameter(str(error), param_hint="'--out'") from error
    except outputs.OutputFailed as error:
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(outputs.EXIT_OUTPUT_FAILED) from error
    except FileNotFoundError as error:
        raise click.BadParameter(str(error)) from error
    except ImportError as error:
        raise click.ClickException(str(error)) from error
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    except OSError as error:  # An unreadable data folder (permissions): named, not a traceback.
        raise click.BadParameter(f"{outputs.display(error.filename or data)}: cannot read it "
                                 f"({error.strerror or error})") from error
    for text in report["skipped"] + report["notes"]:
        click.echo(f"warning: {text}", err=True)
    click.echo(summary(report))
    raise SystemExit(0 if report["passed"] else 1)


def _model(value: str | None) -> str | None:
    """"default" means the packaged model."""
    from edge_runtime.reader import DEFAULT_MODEL

    return str(DEFAULT_MODEL) if value == "default" else value


def summary(report: dict) -> str:
    """A few lines for the terminal; the reports hold everything."""
    lines = []
    for model in report["models"]:
        covered = ", ".join(f"{row['min_confidence']:g}: {_percent(row['coverage'])} kept, "
                            f"{_percent(row['accuracy_of_accepted'])} right" for row in model["risk_coverage"])
        lines += [f"{model['model']['path']}",
                  f"  accuracy {_percent(model['accuracy'])} ({model['correct']}/{model['images']}); single digits "
                  f"{_percent(model['single_digit_accuracy'])}, numbers {_percent(model['number_accuracy'])}; "
                  f"{model['images_per_second'] or 0:,.0f} images/s",
                  f"  min-confidence {covered}"]
    if "differences" in report:
        counts = {key: sum(row["right"] == key for row in report["differences"]) for key in ("first", "second", "neither")}
        lines.append(f"{len(report['differences'])} reads differ: MODEL right on {counts['first']}, --compare right on "
                     f"{counts['second']}, neither on {counts['neither']}")
    if report["min_accuracy"] is not None:
        lines.append(f"gate --min-accuracy {report['min_accuracy']:.2%}: {'passed' if report['passed'] else 'FAILED'}")
    lines.append(f"reports: {report['files']['markdown']}, {report['files']['json']}"
                 + (f", {report['files']['worst_errors']}" if report["files"]["worst_errors"] else ""))
    return "\n".join(lines)


def _percent(value) -> str:
    return "-" if value is None else f"{value:.2%}"


if __name__ == "__main__":
    main()
