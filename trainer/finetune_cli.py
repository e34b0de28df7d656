"""`digit-train --finetune`: checks the command line's inputs, then runs `trainer.finetune` and prints its summary.

Everything a user can get wrong is judged before TensorFlow loads (seconds) and before a run folder
is made, with the standard library, NumPy and OpenCV only: the paths, the model `--from` names (the
packaged TFLite model has no Keras weights to start from), and the labelled folder itself: its
usable crops are counted and every skipped entry is named (file, CSV row, reason), so a folder with
too few crops is a usage error (exit code 2) that says what to fix.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import shlex

import click

import edge_runtime
from edge_runtime import constants, labelled, usercrops
from trainer import config as config_module
from trainer.cli import bad_option, check_data_path, check_path

MODEL_EXPECTED = "give a model.keras, a run folder holding one, or a .tflite exported into a run folder"
LABELLED_EXPECTED = "give a labelled folder (<folder>/<label>/*.png and/or labels.csv) or a CSV with columns path,label"

MIN_USER_CROPS = 5
"""Without --val, the fewest usable crops fine-tuning accepts: some to train on, some to validate."""

SHOWN_WARNINGS = 10
"""Skipped entries listed in a refusal; the rest are counted."""

PACKAGED_MODELS = pathlib.Path(edge_runtime.__file__).resolve().parent / "models"
PACKAGED_NAMES = ("default", "auto")
"""What `digit-infer --model` and `digit-eval` accept for the packaged model."""
DEFAULT_MODEL_RUN = pathlib.Path("runs", "train", "default-model-seed0")
"""Where scripts/make_default_model.sh (seed 0) puts the packaged model's run folder, inside the checkout."""


@dataclasses.dataclass(frozen=True)
class UserInputs:
    """What `check_inputs` read: the model to start from and the user's crops, read with `labels`."""

    model: pathlib.Path
    labels: tuple[str, ...]
    crops: usercrops.LabelledCrops
    held: usercrops.LabelledCrops | None


def run(finetune_data, finetune_from, finetune_val, *, epochs, batch_size, out, name, seed, no_augment, data_path,
        validation_fraction, other) -> None:
    """Runs `trainer.finetune` from `digit-train` options; exits 0, 130 when interrupted, or with a click error."""
    if not finetune_data or not finetune_from:
        raise click.UsageError("fine-tuning needs both --finetune FOLDER (your labelled digits) and --from MODEL_OR_RUN")
    if any(value not in (None, False) for value in other):
        raise click.UsageError("--quick, --limit and --stem choose a network to train from scratch; with --finetune "
                               "the network is --from's")
    check_paths(finetune_data, finetune_from, finetune_val, data_path)
    inputs = check_inputs(finetune_data, finetune_from, finetune_val)
    try:  # Imported here so that --help and every usage error above come without loading TensorFlow.
        from trainer import data, finetune, report, train
    except ImportError as error:
        raise click.ClickException(f"digit-train --finetune needs the [train] extra (TensorFlow, Keras, Matplotlib; "
                                   f"here {error}): pip install 'digitkit[train]' (in a checkout: pip install "
                                   f"'.[train]')") from error
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
        source_path, model, labels = finetune.load_source(settings.source)
    except (FileNotFoundError, ValueError) as error:
        raise bad_option(str(error), "--from") from error
    if labels != inputs.labels:  # The model's own labels differ from those its run recorded: read again with them.
        inputs = check_user_data(finetune_data, finetune_val, source_path, labels)
    try:
        user = finetune.load_user_data(settings, labels, crops=inputs.crops, held=inputs.held)
    except (FileNotFoundError, ValueError) as error:
        raise bad_option(str(error), "--finetune") from error
    origin = finetune.mnist_origin(settings.data)  # Before loading: afterwards a download is in the Keras cache.
    try:
        mnist = data.load_mnist(settings.data)
    except (FileNotFoundError, data.DataError) as error:  # As without --finetune: the data, not the options.
        raise click.ClickException(str(error)) from error
    run_dir = train.make_run_dir(config_module.TrainConfig(out=settings.out, name=settings.name))
    click.echo(f"Run folder: {run_dir}  (fine-tuning {settings.source} on {settings.user_data})")
    start = finetune.Start(source_path, model, labels, user)
    try:
        result = finetune.finetune(settings, mnist, run_dir, start=start, data_origin=origin)
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(f"{error} (run folder {run_dir} left without a model)") from error
    for warning in result["skipped"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary_table(finetune.summary_rows(result, run_dir)))
    click.echo(f"Next: digit-export {shlex.quote(str(run_dir))} --quantize int8")
    raise SystemExit(130 if result["interrupted"] else 0)


def check_paths(finetune_data, finetune_from, finetune_val, data_path) -> None:
    """Refuses paths that name nothing before TensorFlow loads (seconds), so that a typo fails at once (exit code 2).

    What --from and --finetune hold (a Keras model, labelled digits) is judged by `check_inputs`.

    Raises:
        click.BadParameter: Naming the option, the path and what is wrong.
    """
    packaged = packaged_model(finetune_from)
    if packaged is not None:
        raise bad_option(packaged_model_message(finetune_from, packaged), "--from")
    check_path(finetune_from, "--from", MODEL_EXPECTED, missing="model not found")
    check_path(finetune_data, "--finetune", LABELLED_EXPECTED)
    if finetune_val:
        check_path(finetune_val, "--val", LABELLED_EXPECTED)
    check_data_path(data_path)


def check_inputs(finetune_data, finetune_from, finetune_val) -> UserInputs:
    """Reads what --from and --finetune (and --val) name, without TensorFlow, and refuses what cannot be fine-tuned.

    The model file is checked as a file (a bounded zip archive holding a Keras model), not loaded; the
    user's crops are read with the labels its run recorded (`recorded_labels`).

    Raises:
        click.BadParameter: Naming the option and what is wrong (exit code 2).
    """
    try:
        model_path = locate_source(finetune_from)
        from exporter import model_checks  # Standard library, h5py: no TensorFlow.

        model_checks.check_model_file(model_path)
    except (FileNotFoundError, ValueError) as error:
        raise bad_option(str(error), "--from") from error
    return check_user_data(finetune_data, finetune_val, model_path, recorded_labels(model_path))


def check_user_data(finetune_data, finetune_val, model_path: pathlib.Path, labels: tuple[str, ...]) -> UserInputs:
    """Reads the user's crops with `labels` and refuses too few to fine-tune on (see `MIN_USER_CROPS`).

    Raises:
        click.BadParameter: Naming --finetune or --val, the folder, the usable crops, the minimum, and
            the first skipped entries with the reason for each (exit code 2).
    """
    crops = read_user_crops(finetune_data, labels, "--finetune")
    held = read_user_crops(finetune_val, labels, "--val") if finetune_val else None
    needed = 1 if finetune_val else MIN_USER_CROPS
    if len(crops) < needed:
        why = "to train on" if finetune_val else "(some to train on, some to validate), or give --val FOLDER"
        raise bad_option(_too_few(finetune_data, crops, needed, why), "--finetune")
    if held is not None and not len(held):
        raise bad_option(_too_few(finetune_val, held, 1, "to validate on"), "--val")
    return UserInputs(model_path, labels, crops, held)


def read_user_crops(source, labels: tuple[str, ...], option: str) -> usercrops.LabelledCrops:
    """The usable crops of a labelled folder or CSV; its skipped entries are warnings naming the file and CSV row.

    Returns:
        The crops; none at all when every entry was skipped at the image stage (the caller says so).

    Raises:
        click.BadParameter: The folder holds no valid entry (empty, a CSV without path,label, every entry invalid).
    """
    try:
        dataset = labelled.load(source, labels)
    except (FileNotFoundError, ValueError) as error:
        raise bad_option(str(error), option) from error
    crops = usercrops.from_set(dataset)
    return dataclasses.replace(crops, warnings=_with_rows(dataset, crops.warnings))


def _with_rows(dataset: labelled.LabelledSet, warnings: tuple[str, ...]) -> tuple[str, ...]:
    """Names the CSV row in the warnings of images that could not be read or cut into the label's digits.

    `labelled.load`'s own warnings name it already; those `usercrops` adds start with the file alone.
    """
    rows = {os.fspath(item.path): item.origin for item in dataset.items if " row " in item.origin}
    named = list(warnings[:len(dataset.warnings)])
    for warning in warnings[len(dataset.warnings):]:
        cut = warning.find(": ")
        while cut != -1 and warning[:cut] not in rows:  # A path may itself hold ": ".
            cut = warning.find(": ", cut + 1)
        if cut != -1:
            path, reason = warning[:cut], warning[cut + 2:]
            warning = f"{rows[path]} ({path}): {reason.removeprefix(f'{path}: ')}"
        named.append(warning)
    return tuple(named)


def _too_few(source, crops: usercrops.LabelledCrops, needed: int, why: str) -> str:
    count = len(crops)
    message = (f"{source}: {count} usable crop{'' if count == 1 else 's'}; fine-tuning needs at least {needed} "
               f"{why}")
    if not crops.warnings:
        return f"{message}. No entry was skipped: add labelled crops"
    return f"{message}. {skipped_list(crops.warnings)}"


def skipped_list(warnings) -> str:
    """"N entries skipped:" and the first `SHOWN_WARNINGS` of them, one a line, then "... and M more"."""
    shown = "".join(f"\n  {warning}" for warning in warnings[:SHOWN_WARNINGS])
    more = f"\n  ... and {len(warnings) - SHOWN_WARNINGS} more" if len(warnings) > SHOWN_WARNINGS else ""
    return f"{len(warnings)} entr{'y' if len(warnings) == 1 else 'ies'} skipped:{shown}{more}"


def packaged_model(source: str) -> pathlib.Path | None:
    """The packaged digit model that `source` names ("default", "auto", its .tflite or its folder), else None.

    The packaged line model is left alone: it is not a single-digit model, and says so when it is loaded.
    """
    if source in PACKAGED_NAMES and not os.path.exists(source):
        return PACKAGED_MODELS / "digitkit_int8.tflite"
    path = pathlib.Path(source)
    try:
        if path.is_dir() and path.resolve() == PACKAGED_MODELS and not (path / "model.keras").exists():
            return PACKAGED_MODELS / "digitkit_int8.tflite"
        if path.suffix == ".tflite" and path.resolve().parent == PACKAGED_MODELS and \
                not path.name.startswith("digitkit_line") and not (path.parent / "model.keras").exists():
            return path
    except OSError:  # A path that cannot be resolved is not the packaged model; check_path says what it is.
        return None
    return None


def packaged_model_message(source: str, packaged: pathlib.Path) -> str:
    """Why the packaged model cannot be fine-tuned, and the two ways forward with what each costs."""
    checkout = PACKAGED_MODELS.parent.parent
    script = checkout / "scripts" / "make_default_model.sh"
    run = checkout / DEFAULT_MODEL_RUN
    lines = [f"{source}: the packaged model ({packaged}) ships as TFLite only, without its Keras weights (to keep "
             f"the Pi install small), and fine-tuning starts from the float Keras model."]
    if (run / "model.keras").is_file():
        lines[0] += f" Its run folder is already here: --from {shlex.quote(str(run))}. Otherwise, two ways forward:"
    else:
        lines[0] += " Two ways forward:"
    where = (f"(in {checkout})" if script.is_file() else
             "(in a digitkit checkout: this install has no scripts/)")
    lines += [f"  1. bash scripts/make_default_model.sh {where}: retrains the packaged model's run into "
              f"{DEFAULT_MODEL_RUN}/ there (digit-train --seed 0 --epochs 16: about 5 minutes on 2 cores, then "
              f"its int8 and dynamic-range exports, which it also copies over edge_runtime/models/), "
              f"then --from {shlex.quote(str(run))}",
              "  2. digit-train --name base: a new run with the default profile (about 4 minutes on 2 cores; "
              "--quick: under a minute, less accurate), then --from runs/train/base"]
    return "\n".join(lines)


def locate_source(source: str) -> pathlib.Path:
    """The `model.keras` to start from, found without loading anything.

    Raises:
        FileNotFoundError: Nothing there, the packaged model (TFLite only), or a `.tflite` without its
            Keras model beside it.
        ValueError: Not a model file.
    """
    packaged = packaged_model(source)
    if packaged is not None:
        raise FileNotFoundError(packaged_model_message(source, packaged))
    path = pathlib.Path(source)
    if path.is_dir():
        path = path / "model.keras"
    elif path.suffix == ".tflite":
        beside = path.parent / "model.keras"
        if not beside.is_file():
            raise FileNotFoundError(f"{source}: fine-tuning needs the Keras model a .tflite was exported from, and "
                                    f"there is no model.keras beside it; give the run folder (digit-train writes "
                                    f"one; scripts/make_default_model.sh rebuilds the packaged model's)")
        path = beside
    if not path.exists():
        raise FileNotFoundError(f"{path}: model not found (give a model.keras, a run folder holding one, or a "
                                f".tflite exported into a run folder)")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: not a Keras model file; expected a .keras file, a run folder or an exported .tflite")
    return path


def recorded_labels(model_path: pathlib.Path) -> tuple[str, ...]:
    """The labels a model's run recorded, told without loading the model.

    Order: the run's config.json "labels" (fine-tuned runs), an exported .tflite's metadata, the
    run's "not_digit_share" (digit-train: above 0 adds "not a digit"), else the digits and "not a
    digit" (the widest a digitkit model has). `trainer.finetune.class_labels` decides once the model
    is loaded; the user's crops are read again only when the two differ.
    """
    from edge_runtime import metadata

    run = model_path.parent
    widest = constants.LABELS + (constants.NOT_A_DIGIT,)
    recorded = _run_config(run)
    if isinstance(recorded.get("labels"), list) and recorded["labels"]:
        return tuple(str(label) for label in recorded["labels"])
    for exported in sorted(run.glob("*.tflite")):
        try:
            description = metadata.read_description(exported.read_bytes())
        except Exception:  # A damaged .tflite is no hint; the loaded model decides (`class_labels`).
            continue
        if description.embedded:
            return tuple(description.labels)
    share = recorded.get("not_digit_share")
    if isinstance(share, (int, float)):
        return widest if share > 0 else constants.LABELS
    return widest


def _run_config(run: pathlib.Path) -> dict:
    from exporter import model_checks

    value = model_checks.read_run_json(run / "config.json")
    return value if isinstance(value, dict) else {}
