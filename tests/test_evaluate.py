"""`digit-eval` and collecting: accuracy, per-class figures, risk-coverage, comparisons, bad input, --save-uncertain."""

from __future__ import annotations

import csv
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime import cli as infer_cli
from edge_runtime import eval_cli, evaluate, labelled
from edge_runtime.reader import DEFAULT_MODEL

REPO = pathlib.Path(__file__).resolve().parent.parent


def _eval(*arguments):
    return CliRunner().invoke(eval_cli.main, [str(argument) for argument in arguments])


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory, mnist):
    """300 MNIST test digits as a labelled folder (`<label>/*.png`), in a path with spaces."""
    root = tmp_path_factory.mktemp("eval") / "my digits"
    for index in range(300):
        label = int(mnist.test_labels[index])
        path = root / str(label) / f"t{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), mnist.test_images[index])
    return root


def test_report_figures_and_files(mnist_folder, tmp_path):
    out = tmp_path / "report out"
    result = _eval("default", mnist_folder, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    model = report["models"][0]
    assert report["images"] == 300 and model["accuracy"] > 0.95
    assert set(model["per_class"]) >= set("0123456789")
    assert all(0.8 <= model["per_class"][digit]["recall"] <= 1 for digit in "0123456789")
    counts = np.array(model["confusion_matrix"]["counts"])
    assert counts.sum() == 300 and np.trace(counts) == model["correct"]
    thresholds = [row["min_confidence"] for row in model["risk_coverage"]]
    assert thresholds == [0.5, 0.8, 0.9, 0.99]
    coverages = [row["coverage"] for row in model["risk_coverage"]]
    assert coverages == sorted(coverages, reverse=True)
    markdown = (out / "report.md").read_text()
    assert "Risk-coverage" in markdown and "Confusion matrix" in markdown
    if model["correct"] < 300:
        assert (out / "worst_errors.png").is_file() and "worst_errors.png" in markdown
    assert "accuracy" in result.output and "images/s" in result.output


def test_compare_lists_the_reads_that_differ_and_the_gate(mnist_folder, tmp_path):
    broken = tmp_path / "broken"
    for path in sorted(mnist_folder.rglob("*.png"))[:40]:  # Mislabel some: accuracy drops below 100%.
        wrong = str((int(path.parent.name) + 1) % 10)
        (broken / wrong).mkdir(parents=True, exist_ok=True)
        (broken / wrong / path.name).write_bytes(path.read_bytes())
    result = _eval(DEFAULT_MODEL, broken, "--compare", "default", "--min-accuracy", "0.5", "--out", tmp_path / "r")
    assert result.exit_code == 1, result.output  # Mislabelled on purpose: almost nothing is right.
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["differences"] == [] and len(report["models"]) == 2 and report["passed"] is False
    assert "gate --min-accuracy 50.00%: FAILED" in result.output
    assert (tmp_path / "r" / "worst_errors.png").is_file()


@pytest.mark.parametrize("layout, message", [
    ("empty", "no labelled images found"),
    ("outside", "not a valid label"),
])
def test_bad_data_is_a_clear_error_and_writes_nothing(tmp_path, layout, message):
    data = tmp_path / "data"
    data.mkdir()
    if layout == "outside":
        cv2.imwrite(str(tmp_path / "d.png"), np.zeros((28, 28), np.uint8))
        (data / "labels.csv").write_text(f"path,label\n{tmp_path / 'd.png'},12a\n", encoding="utf-8")
    result = _eval("default", data, "--out", tmp_path / "out")
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_one_class_is_evaluated_with_a_note(mnist_folder, tmp_path):
    result = _eval("default", mnist_folder / "7", "--out", tmp_path / "o")
    assert result.exit_code == 2  # A label folder itself is not a labelled folder: its parent is.
    (tmp_path / "only7").mkdir()
    (tmp_path / "only7" / "7").symlink_to(mnist_folder / "7")
    result = _eval("default", tmp_path / "only7", "--out", tmp_path / "o")
    assert result.exit_code == 0 and "only one class (7)" in result.output


def test_a_model_without_metadata_is_named(mnist_folder, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(DEFAULT_MODEL.read_bytes().replace(b"digitkit", b"otherkit"))  # Hides the entry.
    result = _eval(bare, mnist_folder, "--out", tmp_path / "o")
    if result.exit_code == 0:
        assert "no digitkit metadata" in result.output
    else:  # A model with more than 10 outputs cannot be fed on MNIST defaults: refused, saying why.
        assert result.exit_code == 2 and "labels" in result.output


def test_missing_model_exits_2(mnist_folder, tmp_path):
    result = _eval(tmp_path / "none.tflite", mnist_folder)
    assert result.exit_code == 2 and "not found" in result.output


def test_save_uncertain_and_save_crops_are_read_back(tmp_path):
    samples = REPO / "samples"
    uncertain, crops = tmp_path / "un certain", tmp_path / "all crops"
    result = CliRunner().invoke(infer_cli.main, [str(samples), "--save-uncertain", str(uncertain),
                                                 "--min-confidence", "1.0", "--save-crops", str(crops)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((crops / "labels.csv").open(encoding="utf-8")))
    assert rows[0].keys() >= {"path", "label", "source", "box", "guesses", "confidence", "status"}
    blank = [row for row in rows if row["source"].endswith("blank_page.jpg")]
    assert len(blank) == 1 and blank[0]["label"] == "" and blank[0]["status"] == "no digit found"
    year = [row for row in rows if row["source"].endswith("year_2024.jpg")]
    assert "".join(row["label"] for row in year) == "2024"
    assert all(len(row["guesses"].split()) == 3 for row in year)
    first = labelled.read_crop(crops / year[0]["path"])
    assert first.shape == (28, 28) and first.max() > 200
    # --save-uncertain holds the digits under 1.0 (most of them) and the blank page: a subset of every crop.
    unsure = list(csv.DictReader((uncertain / "labels.csv").open(encoding="utf-8")))
    every = {(row["source"], row["box"]) for row in rows}
    assert len(unsure) >= 2 and {(row["source"], row["box"]) for row in unsure} <= every
    assert any(row["status"] == "no digit found" for row in unsure)

    # Correcting a read means editing its row: mislabel one and digit-eval sees it.
    year[0]["label"] = "7"
    labelled.write_csv_rows(crops / "labels.csv", list(rows[0].keys()), rows)
    result = _eval("default", crops, "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["images"] == len(rows) - 1  # the blank page has no label yet: skipped, with a warning
    assert report["models"][0]["correct"] == report["images"] - 1
    assert any("no label yet" in warning for warning in report["skipped"])
    assert report["worst_errors"][0]["label"] == "7"

    # A second run on the same photo adds no second row for a digit already there, and loses nothing.
    second = CliRunner().invoke(infer_cli.main, [str(samples / "year_2024.jpg"), "--save-crops", str(crops)])
    again = list(csv.DictReader((crops / "labels.csv").open(encoding="utf-8")))
    assert again == rows and "4 already there, not added again" in second.stderr
    blank = CliRunner().invoke(infer_cli.main, [str(samples / "blank_page.jpg"), "--save-crops", str(crops)])
    assert "1 already there" in blank.stderr  # an image with no digit gets no second row either
    assert all(row["status"] in ("ok", "rejected", "no digit found") for row in again)


def test_batch_workers_keep_details_only_when_collecting(tmp_path):
    from edge_runtime import batch

    files = [str(path) for path in sorted((REPO / "samples").glob("*.jpg"))]
    job = batch.BatchJob(workers=2, keep_details=True)
    results = list(batch.read_files(job, files))
    assert any(result.items and result.items[0].crop is not None for result in results)
    plain = list(batch.read_files(batch.BatchJob(workers=2), files))
    assert all(item.crop is None for result in plain for item in result.items)


def test_digit_eval_never_imports_tensorflow(mnist_folder, tmp_path):
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name.split('.')[0] in ('tensorflow', 'keras', 'matplotlib'):\n"
            "        raise ImportError('blocked: ' + name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            "from edge_runtime import eval_cli\n"
            f"sys.argv = ['digit-eval', 'default', {str(mnist_folder)!r}, '--out', {str(tmp_path / 'o')!r}]\n"
            "eval_cli.main()\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    assert "accuracy" in completed.stdout


def test_metrics_of_numbers_and_other_reads():
    reads = [evaluate.Read("a", "7", "7", 0.99, "crop"), evaluate.Read("b", "7", "1", 0.6, "crop"),
             evaluate.Read("c", "3", "", 0.0, "image"), evaluate.Read("d", "42", "42", 0.95, "image", single=False)]
    figures = evaluate.metrics(reads, tuple("0123456789"))
    assert figures["accuracy"] == 0.5 and figures["number_accuracy"] == 1.0
    assert figures["single_digit_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    counts = figures["confusion_matrix"]["counts"]
    assert counts[7][7] == 1 and counts[7][1] == 1 and counts[3][10] == 1
    assert figures["per_class"]["7"]["recall"] == 0.5 and figures["per_class"]["1"]["precision"] == 0.0
    by_threshold = {row["min_confidence"]: row for row in figures["risk_coverage"]}
    assert by_threshold[0.9]["coverage"] == 0.5 and by_threshold[0.9]["accuracy_of_accepted"] == 1.0
    assert by_threshold[0.5]["accepted"] == 3


def test_save_uncertain_also_takes_a_digit_the_digit_model_doubts_on_its_crop(tmp_path):

    from edge_runtime import collect, constants, reader as reader_module

    probabilities = np.zeros(11, np.float32)
    probabilities[4] = 1.0
    sure = reader_module.Digit("4", 0.996, (10, 10, 20, 30), probabilities, np.zeros((28, 28), np.float32),
                               line=0, accepted=True)
    result = reader_module.ReadResult("4", constants.STATUS_OK, (sure,), source=str(tmp_path / "a 4.jpg"))
    doubting = np.zeros((1, 11), np.float32)
    doubting[0, 4], doubting[0, 9] = 0.55, 0.45  # the digit model, shown the crop, is far less sure
    options = collect.CollectOptions(str(tmp_path / "unsure digits"), every_read=False, uncertain_below=0.9)
    assert collect.Collector(options).add(result) == 0  # by the reading's confidence alone: not collected
    collector = collect.Collector(options, classify=lambda crops: doubting)
    assert collector.add(result) == 1 and collector.add(result) == 0 and collector.already == 1
    collector.close()
    row = next(csv.DictReader((tmp_path / "unsure digits" / "labels.csv").open(encoding="utf-8")))
    assert row["label"] == "4" and row["guesses"].startswith("4:0.5500 9:0.4500") and row["status"] == "ok"
