"""Usage errors of `digit-train` and `digit-export`: caught before TensorFlow loads, exit code 2, naming the option.

Fast: nothing here trains, converts or imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import REPO
from exporter import cli as export_cli
from trainer import cli as train_cli

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _train(arguments: list[str]):
    return CliRunner().invoke(train_cli.main, arguments)


def _assert_usage_error(result, option: str, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "Traceback" not in result.output


# --- digit-train --data ------------------------------------------------------------------------------------


def _bad_data(tmp_path, kind: str):
    """A --data path (with spaces) of `kind` and what the message must say about it."""
    path = tmp_path / "my mnist"
    if kind == "missing":
        return path / "nowhere", "no such file or folder"
    if kind == "empty folder":
        path.mkdir()
        return path, "an empty folder"
    if kind == "unrelated folder":
        path.mkdir()
        (path / "notes.txt").write_text("x")
        return path, "no MNIST file in this folder"
    if kind == "partial folder":
        path.mkdir()
        (path / f"{IDX_NAMES[0]}.gz").write_bytes(b"")
        (path / IDX_NAMES[1]).write_bytes(b"")
        return path, f"{IDX_NAMES[2]}, {IDX_NAMES[3]} (raw or .gz) missing"
    if kind == "text file":
        path.write_text("hello\n")
        return path, "is a file, not a folder, and not an .npz archive"
    if kind == "one IDX file":
        path.mkdir()
        (path / f"{IDX_NAMES[0]}.gz").write_bytes(b"\x1f\x8b")
        return path / f"{IDX_NAMES[0]}.gz", f"is one MNIST IDX file; give the folder that holds all four ({path})"
    os.mkfifo(path)  # Never opened: reading a pipe would block.
    return path, "is a named pipe (FIFO)"


DATA_KINDS = ["missing", "empty folder", "unrelated folder", "partial folder", "text file", "one IDX file", "fifo"]


@pytest.mark.parametrize("kind", DATA_KINDS)
def test_bad_data_path_is_a_usage_error_naming_it(tmp_path, kind):
    path, problem = _bad_data(tmp_path, kind)
    result = _train(["--data", str(path), "--out", str(tmp_path / "runs")])
    _assert_usage_error(result, "--data", str(path), problem, "four MNIST IDX files")
    assert not (tmp_path / "runs").exists()


def test_data_paths_that_may_hold_mnist_pass_the_check(tmp_path, mnist_path):
    train_cli.check_data_path(None)  # No --data: $MNIST_DIR, the Keras cache or a download, later.
    train_cli.check_data_path(str(mnist_path))
    raw = tmp_path / "raw idx"
    raw.mkdir()
    for name in IDX_NAMES:  # Names only: the content is the loader's to judge.
        (raw / name).write_bytes(b"")
    train_cli.check_data_path(str(raw))
    npz_folder = tmp_path / "npz folder"
    npz_folder.mkdir()
    (npz_folder / "mnist.npz").write_bytes(b"PK\x05\x06")
    train_cli.check_data_path(str(npz_folder))
    renamed = tmp_path / "mnist copy.bin"  # A zip archive by another name may be an npz.
    renamed.write_bytes(b"PK\x03\x04")
    train_cli.check_data_path(str(renamed))
    text_npz = tmp_path / "mnist.npz"  # Named as the npz: a broken one is a data error (exit 1), said on loading.
    text_npz.write_text("x_train\n")
    train_cli.check_data_path(str(text_npz))


def test_config_errors_still_come_before_the_data_path(tmp_path):
    result = _train(["--name", "a/b", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "--name" in result.output and "--data" not in result.output, result.output


# --- digit-train --finetune --------------------------------------------------------------------------------


def test_missing_from_names_the_option(tmp_path):
    result = _train(["--finetune", "nope", "--from", str(tmp_path / "no model")])
    _assert_usage_error(result, "--from", f"{tmp_path / 'no model'}: model not found")


@pytest.mark.parametrize("option", ["--finetune", "--val", "--data"])
def test_missing_finetune_paths_name_their_option(tmp_path, option):
    model = tmp_path / "a run"
    model.mkdir()
    labelled = tmp_path / "my digits"
    labelled.mkdir()
    arguments = {"--finetune": str(labelled), "--from": str(model)}
    arguments[option] = str(tmp_path / "not there")
    result = _train([word for pair in arguments.items() for word in pair])
    _assert_usage_error(result, option, f"{tmp_path / 'not there'}: no such file or folder")


# --- no TensorFlow before a usage error ----------------------------------------------------------------------

BLOCK_TENSORFLOW = """
import importlib.abc, json, os, sys
class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"blocked: {name} imported before a usage error")
sys.meta_path.insert(0, BlockTensorFlow())
import click
from trainer import cli
"""
"""A script prefix that makes any TensorFlow or Keras import fail, then imports digit-train's CLI."""

NO_TENSORFLOW = BLOCK_TENSORFLOW + """
for arguments in json.loads(sys.argv[1]):
    try:
        cli.main(arguments, standalone_mode=False)
        outcome = [0, ""]
    except click.ClickException as error:
        outcome = [error.exit_code, error.format_message()]
    heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps(outcome + [heavy]))
"""


def test_usage_errors_come_before_tensorflow_loads(tmp_path):
    runs = []
    for kind in ("missing", "empty folder", "text file"):
        (tmp_path / kind).mkdir()
        runs.append(["--data", str(_bad_data(tmp_path / kind, kind)[0])])
    runs += [["--finetune", "nope", "--from", "nope"], ["--finetune", "nope", "--from", str(tmp_path)],
             ["--finetune", str(tmp_path), "--from", str(tmp_path), "--data", str(tmp_path / "no mnist")]]
    completed = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, json.dumps(runs)], capture_output=True,
                               text=True, cwd=tmp_path, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    outcomes = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len(outcomes) == len(runs), completed.stderr
    for arguments, (code, message, heavy) in zip(runs, outcomes):
        assert code == 2 and message.startswith("Invalid value for '--") and heavy == [], (arguments, message)


# --- help ----------------------------------------------------------------------------------------------------


def test_train_help_states_the_readme_figures():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    default = re.search(r"^\| `digit-train` \(default[^|]*\| \*\*(.+?)\*\*", readme, re.M).group(1)
    quick = re.search(r"^\| `digit-train --quick` \| \*\*(.+?)\*\*", readme, re.M).group(1)
    help_text = " ".join(_train(["--help"]).output.split())
    assert f"digit-train # {default}" in help_text and f"digit-train --quick # {quick}" in help_text, help_text
    assert f"(README: {quick})" in help_text  # --quick's own help.
    assert "~99" not in help_text


@pytest.mark.parametrize("command", [train_cli.main, export_cli.main], ids=["digit-train", "digit-export"])
def test_help_fits_80_columns(command):
    result = CliRunner().invoke(command, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    too_long = [line for line in result.output.splitlines() if len(line) > 80]
    assert not too_long, too_long


def test_export_help_lists_one_exit_code_a_line():
    lines = CliRunner().invoke(export_cli.main, ["--help"], terminal_width=80).output.splitlines()
    paragraph = lines[lines.index("  Exit codes:") + 1:]
    paragraph = paragraph[:paragraph.index("")]
    assert [line.split()[0] for line in paragraph if line.split()[0].isdigit()] == ["0", "1", "2", "130"], paragraph

