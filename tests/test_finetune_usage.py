"""`digit-train --finetune`: what cannot be fine-tuned is refused before TensorFlow loads and before a run folder
is made (exit code 2, naming the folder, the usable crops, the minimum and every skipped row), the packaged
TFLite-only model says how to get a Keras one, and a run records absolute paths and where MNIST came from.

Fast: only the last test loads TensorFlow, to fine-tune a one-layer model for one epoch.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from conftest import REPO
from test_cli_usage_errors import BLOCK_TENSORFLOW, _assert_usage_error as _assert_refused, _train

PACKAGED = REPO / "edge_runtime" / "models" / "digitkit_int8.tflite"


def _crop(seed: int) -> np.ndarray:
    """A 28x28 crop as digitkit writes them: a white stroke on black."""
    image = np.zeros((28, 28), np.uint8)
    rng = np.random.default_rng(seed)
    cv2.line(image, (int(rng.integers(8, 12)), 5), (int(rng.integers(16, 20)), 23), 255, 3)
    return image


def labelled_folder(folder: pathlib.Path, good: int, rows: list[str] = ()) -> pathlib.Path:
    """`good` readable crops labelled in labels.csv (rows 2 on), then the extra `rows` as written."""
    folder.mkdir(parents=True)
    lines = ["path,label"]
    for index in range(good):
        cv2.imwrite(str(folder / f"crop {index}.png"), _crop(index))
        lines.append(f"crop {index}.png,{index % 10}")
    (folder / "labels.csv").write_text("\n".join(lines + list(rows)) + "\n", encoding="utf-8")
    return folder


def fake_run(folder: pathlib.Path) -> pathlib.Path:
    """A run folder whose model.keras passes the file checks made before TensorFlow loads (never loaded here)."""
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.npz", b"")
    (folder / "config.json").write_text(json.dumps({"not_digit_share": 0.1}))
    return folder


# --- too few usable crops: refused before TensorFlow, with every skipped row ----------------------------------

UNUSABLE_ROWS = ["missing.png,3", "crop 0.png,", "crop 1.png,x", "not an image.png,5", ",7"]


def test_too_few_crops_name_the_folder_the_count_the_minimum_and_each_skipped_row(tmp_path):
    user = labelled_folder(tmp_path / "to label", good=2, rows=UNUSABLE_ROWS)
    (user / "not an image.png").write_text("hello")
    csv_path = user / "labels.csv"
    result = _train(["--finetune", str(user), "--from", str(fake_run(tmp_path / "base run")),
                     "--out", str(tmp_path / "my runs"), "--name", "t-few"])
    _assert_refused(result, "--finetune", f"{user}: 2 usable crops", "at least 5", "--val FOLDER",
                    "5 entries skipped",
                    f"{csv_path} row 4 ({user / 'missing.png'}): image file not found",
                    f"{csv_path} row 5 ({user / 'crop 0.png'}): no label yet",
                    f"{csv_path} row 6 ({user / 'crop 1.png'}): label 'x'",
                    f"{csv_path} row 7 ({user / 'not an image.png'}): not a readable image",
                    f"{csv_path} row 8: empty path")
    assert not (tmp_path / "my runs").exists()


def test_a_long_list_of_skipped_rows_is_cut_after_ten(tmp_path):
    user = labelled_folder(tmp_path / "to label", good=1, rows=[f"gone {index}.png,1" for index in range(15)])
    result = _train(["--finetune", str(user), "--from", str(fake_run(tmp_path / "base run")),
                     "--out", str(tmp_path / "my runs")])
    _assert_refused(result, "--finetune", "1 usable crop;", "15 entries skipped", "gone 9.png", "... and 5 more")
    assert not (tmp_path / "my runs").exists()
    assert "gone 10.png" not in result.output


def test_no_readable_image_is_zero_usable_crops_with_the_reasons(tmp_path):
    user = labelled_folder(tmp_path / "to label", good=0, rows=["a.png,1", "b.png,2"])
    for name in ("a.png", "b.png"):
        (user / name).write_bytes(b"\x89PNG broken")
    result = _train(["--finetune", str(user), "--from", str(fake_run(tmp_path / "base run")),
                     "--out", str(tmp_path / "my runs")])
    _assert_refused(result, "--finetune", "0 usable crops", "2 entries skipped", f"row 2 ({user / 'a.png'})",
                    f"row 3 ({user / 'b.png'})")
    assert not (tmp_path / "my runs").exists()


def test_a_folder_where_every_entry_is_invalid_is_a_usage_error(tmp_path):
    user = labelled_folder(tmp_path / "to label", good=0, rows=["missing.png,3", "other.png,4"])
    result = _train(["--finetune", str(user), "--from", str(fake_run(tmp_path / "base run")),
                     "--out", str(tmp_path / "my runs")])
    _assert_refused(result, "--finetune", str(user), "no labelled images found", "image file not found")
    assert not (tmp_path / "my runs").exists()


def test_with_val_one_crop_trains_but_an_unusable_val_folder_is_named(tmp_path):
    user = labelled_folder(tmp_path / "to label", good=1)
    held = labelled_folder(tmp_path / "held out", good=0, rows=["a.png,1"])
    (held / "a.png").write_bytes(b"not an image")
    result = _train(["--finetune", str(user), "--val", str(held), "--from", str(fake_run(tmp_path / "base run")),
                     "--out", str(tmp_path / "my runs")])
    _assert_refused(result, "--val", f"{held}: 0 usable crops", "to validate on", f"row 2 ({held / 'a.png'})")
    assert not (tmp_path / "my runs").exists()


# --- the packaged model: TFLite only --------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["default", str(PACKAGED), str(PACKAGED.parent)],
                         ids=["default", "packaged tflite", "packaged folder"])
def test_the_packaged_model_says_it_ships_as_tflite_only_and_how_to_get_a_keras_one(tmp_path, source):
    user = labelled_folder(tmp_path / "to label", good=6)
    result = _train(["--finetune", str(user), "--from", source, "--out", str(tmp_path / "my runs")])
    _assert_refused(result, "--from", "ships as TFLite only", "without its Keras weights", "Pi install small",
                    "bash scripts/make_default_model.sh", "runs/train/default-model-seed0",
                    "about 5 minutes on 2 cores", "digit-train --name base", "about 4 minutes on 2 cores",
                    "--from runs/train/base")
    assert "model not found" not in result.output
    assert not (tmp_path / "my runs").exists()


def test_the_packaged_model_is_recognised_by_the_library_too():
    from trainer import finetune_cli

    with pytest.raises(FileNotFoundError, match="ships as TFLite only"):
        finetune_cli.locate_source("default")
    assert finetune_cli.packaged_model(str(REPO / "edge_runtime" / "models" / "digitkit_line_int8.tflite")) is None


# --- none of it loads TensorFlow or makes a run folder ----------------------------------------------------------

NO_TENSORFLOW = BLOCK_TENSORFLOW + """
out = sys.argv[2]
for arguments in json.loads(sys.argv[1]):
    try:
        cli.main(arguments + ["--out", out, "--name", "t-few"], standalone_mode=False)
        outcome = [0, ""]
    except click.ClickException as error:
        outcome = [error.exit_code, error.format_message()]
    heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps(outcome + [heavy, os.path.exists(out)]))
"""


def test_refusals_come_before_tensorflow_loads_and_leave_no_run_folder(tmp_path):
    few = labelled_folder(tmp_path / "ft" / "few", good=3)
    mixed = labelled_folder(tmp_path / "ft" / "mixed", good=2, rows=UNUSABLE_ROWS)
    run = str(fake_run(tmp_path / "runs" / "base 2"))
    runs = [["--finetune", str(few), "--from", run, "--epochs", "1"],
            ["--finetune", str(mixed), "--from", run],
            ["--finetune", str(few), "--from", "default"],
            ["--finetune", str(few), "--from", str(PACKAGED)]]
    out = tmp_path / "x"
    completed = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, json.dumps(runs), str(out)],
                               capture_output=True, text=True, cwd=tmp_path, timeout=60,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    outcomes = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len(outcomes) == len(runs), completed.stderr
    for arguments, (code, message, heavy, made) in zip(runs, outcomes):
        assert code == 2 and heavy == [] and not made, (arguments, code, message, heavy)
    assert f"{few}: 3 usable crops; fine-tuning needs at least 5" in outcomes[0][1]
    assert "2 usable crops" in outcomes[1][1] and "image file not found" in outcomes[1][1]
    assert all("ships as TFLite only" in outcome[1] for outcome in outcomes[2:])


# --- a run records where everything came from, as absolute paths ----------------------------------------------


def test_a_run_records_absolute_paths_and_where_mnist_came_from(tmp_path, monkeypatch, mnist_path):
    import keras

    base = tmp_path / "runs" / "base 2"
    base.mkdir(parents=True)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.save(base / "model.keras")  # No config.json: its 10 labels are told once the model is loaded.
    labelled_folder(tmp_path / "to label", good=10)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DIR", os.path.relpath(mnist_path, tmp_path))
    result = _train(["--finetune", "to label", "--from", "runs/base 2", "--out", "out", "--name", "ft",
                     "--epochs", "1"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "ft" / "config.json").read_text())
    assert saved["user_data"] == str((tmp_path / "to label").resolve())
    assert saved["source"] == str(base.resolve())
    assert saved["source_model"] == str((base / "model.keras").resolve())
    assert saved["out"] == str((tmp_path / "out").resolve())
    assert saved["validation"] is None
    assert saved["data"] == saved["data_source"] == str(pathlib.Path(mnist_path).resolve())
    assert saved["data_origin"] == f"$MNIST_DIR={os.path.relpath(mnist_path, tmp_path)}"
    assert saved["labels"] == [str(digit) for digit in range(10)]
