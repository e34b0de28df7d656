"""Hostile and careless input to digit-train and digit-export: clear errors, no tracebacks, no memory blow-up."""

import gzip
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from exporter import cli as export_cli, config as export_config, export, model_checks
from trainer import cli as train_cli, config as train_config, data, input_files, report, train

MEGABYTE = 1 << 20


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory) -> pathlib.Path:
    """An untrained 28x28x1 -> 10 Keras model saved as a real .keras file (a few KB, no training)."""
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(inputs))
    path = tmp_path_factory.mktemp("tiny model") / "model.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def _run_folder(tmp_path, model_file, **files) -> pathlib.Path:
    folder = tmp_path / "my runs" / "run"
    folder.mkdir(parents=True)
    shutil.copy(model_file, folder / "model.keras")
    for name, value in files.items():
        (folder / f"{name}.json").write_text(json.dumps(value))
    return folder


def _export(arguments, timeout=120):
    """Runs digit-export in a thread, so that a regression that blocks (a FIFO) fails instead of hanging."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=CliRunner().invoke(export_cli.main, arguments)),
                              daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"digit-export {arguments} did not return within {timeout} s"
    result = outcome["result"]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


# --- digit-export: the MODEL file --------------------------------------------------------------------------


def _write_zip_bomb(path: pathlib.Path, megabytes: int) -> None:
    """A real zip bomb: config.json and `megabytes` of zeros deflated to about a thousandth."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        with archive.open("model.weights.h5", "w") as member:
            for _ in range(megabytes):
                member.write(bytes(MEGABYTE))


def _forge_declared_size(path: pathlib.Path, member: str, size: int) -> None:
    """Rewrites a member's declared sizes (compressed and not) in both zip headers: a lie at ratio 1."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 18, 30), (b"PK\x01\x02", 20, 46)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            if raw[start + name_offset:start + name_offset + len(name)] == name:
                raw[start + size_offset:start + size_offset + 8] = size.to_bytes(4, "little") * 2
            start += 4
    path.write_bytes(bytes(raw))


def test_digit_export_refuses_a_bad_data_folder_after_the_model_naming_the_option(tmp_path, tiny_model_file):
    missing = tmp_path / "my mnist" / "nowhere"
    result = _export([str(tiny_model_file), "--data", str(missing)])
    assert result.exit_code == 2, result.output
    assert "'--data'" in result.output and str(missing) in result.output


@pytest.mark.parametrize("case, message", [
    ("link to /dev/zero", "(a link to /dev/zero) is a character device, not a regular file"),
    ("fifo", "is a named pipe (FIFO), not a regular file"),
    ("folder", "is a folder, not a regular file"),
    ("empty", "not a loadable Keras model: the file is empty (0 bytes)"),
    ("text", "not a loadable Keras model: not a zip archive (starts with b'just some no'): a text file"),
    ("zip, not keras", "not a loadable Keras model: a zip archive without Keras's config.json (it holds notes.txt)"),
    ("zip bomb", "would expand from"),
    ("forged size", "more than the 268,435,456 accepted"),
])
def test_model_file_that_is_not_a_model_fails_fast_with_exit_2(tmp_path, tiny_model_file, case, message):
    folder = tmp_path / "run with spaces"
    folder.mkdir()
    model = folder / "model.keras"
    if case == "link to /dev/zero":
        model.symlink_to("/dev/zero")
    elif case == "fifo":
        os.mkfifo(model)
    elif case == "folder":
        model.mkdir()
    elif case == "empty":
        model.write_bytes(b"")
    elif case == "text":
        model.write_text("just some notes\n")
    elif case == "zip, not keras":
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("notes.txt", "hello")
    elif case == "zip bomb":
        _write_zip_bomb(model, 40)
    else:
        shutil.copy(tiny_model_file, model)
        _forge_declared_size(model, "model.weights.h5", 3_000_000_000)
    tracemalloc.start()
    result = _export([str(folder), "--data", str(tmp_path / "never read")])  # The run folder, as users give it.
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert peak < 20 * MEGABYTE  # Refused from the file's type or central directory, never expanded.


def _rewrite_member(source: pathlib.Path, target: pathlib.Path, member: str, content: bytes) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            copy.writestr(info.filename, content if info.filename == member else original.read(info.filename))


@pytest.mark.parametrize("member, content, message", [
    ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(100), "its model.weights.h5 is damaged"),
    ("config.json", b"{not json", "not a loadable Keras model (JSONDecodeError"),
    ("config.json", json.dumps({"class_name": "Lambda", "config": {"function": "os.system"}}).encode(),
     "not a loadable Keras model"),
])
def test_damaged_keras_archives_are_clear_usage_errors(tmp_path, tiny_model_file, mnist_path, member, content,
                                                       message):
    model = tmp_path / "damaged.keras"
    _rewrite_member(tiny_model_file, model, member, content)
    result = _export([str(model), "--data", str(mnist_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out" / "model_int8.tflite").exists()


def test_config_declaring_huge_layers_is_stopped_by_the_memory_cap(tmp_path, tiny_model_file):
    config = json.loads(zipfile.ZipFile(tiny_model_file).read("config.json"))
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["units"] = 20_000_000  # 784 x 20 M float32 weights: 63 GB from a 3 KB config.json.
    bomb = tmp_path / "config bomb.keras"
    _rewrite_member(tiny_model_file, bomb, "config.json", json.dumps(config).encode())
    with pytest.raises(model_checks.ModelFileError, match="building it needs more than the .* bytes of memory"):
        export.load_keras_model(bomb)
    export.load_keras_model(tiny_model_file)  # The limit is lifted again afterwards.


def test_oversized_config_is_refused_unread(tiny_model_file, monkeypatch):
    monkeypatch.setattr(model_checks, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(model_checks.ModelFileError, match="its config.json declares .* bytes, more than the 100"):
        model_checks.check_model_file(tiny_model_file)


def test_unknown_class_count_is_refused_before_converting(tmp_path, mnist, monkeypatch):
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    model = tmp_path / "twelve.keras"
    keras.Model(inputs, layers.Dense(12, activation="softmax")(layers.Flatten()(inputs))).save(model)

    def never(*_args, **_kwargs):
        raise AssertionError("converted a model that is refused anyway")

    monkeypatch.setattr(export.convert, "convert", never)
    with pytest.raises(ValueError, match="the model has 12 outputs"):
        export.export(export_config.ExportConfig(model=str(model), out=str(tmp_path / "out")), mnist)


def test_bad_model_is_refused_before_tensorflow_loads(tmp_path):
    bomb = tmp_path / "bomb.keras"
    _write_zip_bomb(bomb, 8)
    script = ("import sys\n"
              "class Block:\n"
              "    def find_spec(self, name, *_):\n"
              "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
              "            raise ImportError('blocked: ' + name)\n"
              "sys.meta_path.insert(0, Block())\n"
              "from exporter import cli\n"
              "cli.main(sys.argv[1:])\n")
    finished = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True, text=True,
                              cwd=pathlib.Path(__file__).resolve().parent.parent, timeout=120)
    assert finished.returncode == 2, finished.stderr
    assert "a decompression bomb, refused unread" in finished.stderr and "blocked" not in finished.stderr


def test_run_folder_without_model_and_model_of_wrong_shape_are_refused(tmp_path):
    import keras
    from keras import layers

    empty_run = tmp_path / "empty run"
    empty_run.mkdir()
    result = _export([str(empty_run)])
    assert result.exit_code == 2 and "a folder without model.keras" in result.output
    inputs = keras.Input((32, 32, 3))
    wrong = tmp_path / "colour.keras"
    keras.Model(inputs, layers.Dense(10)(layers.Flatten()(inputs))).save(wrong)
    with pytest.raises(model_checks.ModelFileError, match=r"input is \(None, 32, 32, 3\); a digit model reads"):
        model_checks.check_model_shape(export.load_keras_model(wrong), wrong)
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)
    with pytest.raises(model_checks.ModelFileError, match="is a named pipe"):  # Other tools load through it too.
        export.load_keras_model(fifo)


def test_weights_declaring_too_much_are_refused_unread(tmp_path, tiny_model_file, monkeypatch):
    monkeypatch.setattr(model_checks, "MAX_WEIGHT_BYTES", 1000)  # The tiny model declares 31 KB of weights.
    with pytest.raises(model_checks.ModelFileError, match="model.weights.h5 declares 31,400 bytes of weights"):
        model_checks.check_model_file(tiny_model_file)


def test_a_nan_model_is_refused_before_the_gate(tmp_path, tiny_model_file, mnist):
    model = export.load_keras_model(tiny_model_file)
    model.set_weights([np.full_like(weight, np.nan) for weight in model.get_weights()])
    with pytest.raises(model_checks.ModelFileError, match="outputs NaN or infinity for 10,000 of 10,000"):
        export._verify(model, b"", b"", mnist, export_config.ExportConfig())


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "101", "-1"])
def test_max_drop_must_be_a_finite_number_of_points(tiny_model_file, value):
    result = _export([str(tiny_model_file), "--max-drop", value])
    assert result.exit_code == 2, result.output
    assert "--max-drop" in result.output


def test_unwritable_output_folder_is_refused_before_any_work(tmp_path, tiny_model_file):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    result = _export([str(tiny_model_file), "--out", str(blocker / "exports"), "--data", str(tmp_path / "unused")])
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "cannot write the export there" in result.output


# --- digit-export: unfinished training runs -----------------------------------------------------------------


@pytest.mark.parametrize("files, reason", [
    ({"config": {"epochs": 12}}, "config.json but no metrics.json"),
    ({"config": {}, "metrics": {"complete": False, "interrupted": True,
                                "incomplete_reason": "interrupted before the first epoch ended (0 of 12 epochs)"}},
     "interrupted before the first epoch ended"),
    ({"config": {}, "metrics": {"interrupted": True, "test_accuracy": 0.65}}, "training was interrupted"),
])
def test_incomplete_run_is_refused_without_force(tmp_path, tiny_model_file, files, reason):
    run = _run_folder(tmp_path, tiny_model_file, **files)
    result = _export([str(run), "--data", str(tmp_path / "unused")])
    assert result.exit_code == 2, result.output
    assert "from a training run that did not finish" in result.output and reason in result.output
    assert "--force" in result.output
    forced = export_config.ExportConfig(model=str(run), force=True)
    assert export.check_inputs(forced) == (run / "model.keras", run)


def test_finished_runs_and_foreign_models_pass_the_completeness_check(tmp_path, tiny_model_file):
    finished = _run_folder(tmp_path, tiny_model_file, config={}, metrics={"complete": True, "test_accuracy": 0.99})
    assert model_checks.run_status(finished / "model.keras") == (True, "")
    assert model_checks.run_status(tiny_model_file) == (None, "")  # Not a digit-train run: nothing to check.
    older = tmp_path / "older run"
    older.mkdir()
    shutil.copy(tiny_model_file, older / "model.keras")
    (older / "config.json").write_text("{}")
    (older / "metrics.json").write_text('{"interrupted": false}')  # Written before "complete" existed.
    assert model_checks.run_status(older / "model.keras") == (True, "")


# --- digit-train: options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a/b", "../../x", "..", ".", "", "a\\b", "tab\there", "x" * 300])
def test_run_name_must_be_one_folder_name(tmp_path, name):
    out = tmp_path / "runs"
    result = CliRunner().invoke(train_cli.main, ["--name", name, "--out", str(out), "--data", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "--name" in result.output and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "x").exists()


def test_seed_out_of_range_is_a_usage_error():
    for seed in ("-1", str(2**32)):
        result = CliRunner().invoke(train_cli.main, ["--seed", seed])
        assert result.exit_code == 2 and "--seed" in result.output, result.output


def test_unwritable_out_is_a_usage_error(tmp_path, mnist, monkeypatch):
    monkeypatch.setattr(data, "load_mnist", lambda *_: mnist)
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    result = CliRunner().invoke(train_cli.main, ["--out", str(blocker / "runs"), "--limit", "100"])
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "cannot create a run folder" in result.output


# --- digit-train: interruptions ------------------------------------------------------------------------------


def _fake_training(model_file, interrupted: bool, best_epoch: int):
    """Stands in for train.train: a finished (or interrupted) run of the tiny model, no fitting."""
    import keras

    def fake(config, mnist, run_dir, extra_callbacks=()):
        model = keras.saving.load_model(model_file)
        train.save_model(model, run_dir / "model.keras")
        history = {"loss": [0.5] * best_epoch, "val_accuracy": [0.9] * best_epoch}
        return train.TrainResult(model, history, best_epoch, best_epoch, 1.0, interrupted, run_dir,
                                 data.split_validation(mnist, 0.1, 0, 100))
    return fake


def test_second_ctrl_c_during_the_report_exits_130_and_keeps_the_metrics(tmp_path, mnist, tiny_model_file,
                                                                          monkeypatch):
    monkeypatch.setattr(data, "load_mnist", lambda *_: mnist)
    monkeypatch.setattr(train, "train", _fake_training(tiny_model_file, interrupted=True, best_epoch=0))

    def second_ctrl_c(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot_learning_curves", second_ctrl_c)
    out = tmp_path / "runs here"
    result = CliRunner().invoke(train_cli.main, ["--out", str(out), "--name", "cut", "--epochs", "12"])
    assert result.exit_code == 130, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Interrupted: " in result.output and "digit-export refuses it without --force" in result.output
    metrics = json.loads((out / "cut" / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["test_measured"] is True
    assert metrics["incomplete_reason"] == ("interrupted before the first epoch ended (0 of 12 epochs); "
                                            "model.keras holds weights that were never validated")
    assert not list((out / "cut").glob(".*"))  # No temporary files left behind.
    refused = _export([str(out / "cut"), "--data", str(tmp_path / "unused")])
    assert refused.exit_code == 2 and "interrupted before the first epoch ended" in refused.output


def test_ctrl_c_while_measuring_keeps_the_training_outcome(tmp_path, mnist, tiny_model_file, monkeypatch):
    monkeypatch.setattr(data, "load_mnist", lambda *_: mnist)
    monkeypatch.setattr(train, "train", _fake_training(tiny_model_file, interrupted=False, best_epoch=2))

    def ctrl_c_in_evaluation(self, *args, **kwargs):
        raise KeyboardInterrupt

    import keras

    monkeypatch.setattr(keras.Model, "predict", ctrl_c_in_evaluation)
    out = tmp_path / "runs"
    result = CliRunner().invoke(train_cli.main, ["--out", str(out), "--name", "done", "--epochs", "2"])
    assert result.exit_code == 130, result.output
    assert "training had finished; the report was cut short" in result.output
    metrics = json.loads((out / "done" / "metrics.json").read_text())
    assert metrics["complete"] is True and metrics["test_measured"] is False and metrics["epochs_run"] == 2
    assert model_checks.run_status(out / "done" / "model.keras") == (True, "")


def test_paths_that_are_not_utf8_print_without_a_traceback(tmp_path, mnist, tiny_model_file, monkeypatch):
    monkeypatch.setattr(data, "load_mnist", lambda *_: mnist)
    monkeypatch.setattr(train, "train", _fake_training(tiny_model_file, interrupted=False, best_epoch=1))
    out = tmp_path / "\udcfe runs"  # The bytes b"\xfe runs", as Python names them.
    result = CliRunner().invoke(train_cli.main, ["--out", str(out), "--name", "n\udcff"])
    assert result.exit_code == 0, result.output
    assert "n\\udcff" in result.output and (out / "n\udcff" / "metrics.json").is_file()
    missing = _export([str(tmp_path / "\udcff.keras")])
    assert missing.exit_code == 2 and "model not found" in missing.output


def test_ctrl_c_while_loading_data_exits_130(tmp_path, monkeypatch):
    def ctrl_c(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "load_mnist", ctrl_c)
    result = CliRunner().invoke(train_cli.main, ["--out", str(tmp_path)])
    assert result.exit_code == 130 and "nothing was written" in result.output


# --- MNIST files -------------------------------------------------------------------------------------------


def _copy_mnist(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    target.mkdir(parents=True)
    for file in source.glob("*.gz"):
        shutil.copy(file, target / file.name)
    return target


def _gzip_of_zeros(header: bytes, megabytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunks = [compressor.compress(header)] + [compressor.compress(bytes(MEGABYTE)) for _ in range(megabytes)]
    return b"".join(chunks) + compressor.flush()


def test_gzip_bomb_idx_stops_at_the_size_its_header_declares(mnist_path, tmp_path):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    header = (data.LABEL_MAGIC).to_bytes(4, "big") + (10_000).to_bytes(4, "big")
    bomb = folder / "t10k-labels-idx1-ubyte.gz"
    bomb.write_bytes(_gzip_of_zeros(header, 100))  # About 100 KB that expands to 100 MB.
    tracemalloc.start()
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte.gz: longer than its header says: header "
                                             r"says shape \(10000,\) \(10008 bytes\), the data goes on"):
        data.read_idx(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * MEGABYTE


def test_idx_header_promising_more_than_mnist_is_refused_unread(tmp_path):
    file = tmp_path / "train-images-idx3-ubyte.gz"
    header = b"".join(value.to_bytes(4, "big") for value in (data.IMAGE_MAGIC, 4_000_000_000, 28, 28))
    file.write_bytes(_gzip_of_zeros(header, 2))
    with pytest.raises(data.DataError, match=r"shape \(4000000000, 28, 28\) .* more than the largest MNIST file"):
        data.read_idx(file)


@pytest.mark.parametrize("content, message", [
    (b"", "only 0 bytes"),
    (b"\x00\x00\x08", "only 3 bytes"),
    (b"\x00\x00\x08\x01\x00", r"truncated: the header of 8 bytes is cut at 5"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00", "magic number 0x00000d01 is not an MNIST IDX magic"),
])
def test_short_and_corrupt_idx_headers_are_named(tmp_path, content, message):
    for name, payload in (("labels.gz", gzip.compress(content)), ("labels", content)):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(data.DataError, match=message):
            data.read_idx(tmp_path / name)


def test_gzip_idx_without_gz_suffix_says_so(mnist_path, tmp_path):
    raw_name = tmp_path / "t10k-labels-idx1-ubyte"
    shutil.copy(mnist_path / "t10k-labels-idx1-ubyte.gz", raw_name)
    with pytest.raises(data.DataError, match="gzip-compressed: give it a .gz suffix"):
        data.read_idx(raw_name)


def test_idx_labels_out_of_range_are_refused(mnist_path, tmp_path):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    labels = bytearray(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = 200
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(data.DataError, match="test labels hold 200; labels must be 0-9"):
        data.load_mnist(folder)


@pytest.mark.parametrize("kind, message", [
    ("fifo", "is a named pipe (FIFO), not a regular file"),
    ("folder", "is a folder, not a regular file"),
    ("link to /dev/zero", "(a link to /dev/zero) is a character device"),
])
def test_idx_file_that_is_no_regular_file_is_named(mnist_path, tmp_path, kind, message):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    target = folder / "t10k-labels-idx1-ubyte.gz"
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        target.symlink_to("/dev/zero")
    with pytest.raises(data.DataError, match=re.escape(message)):
        data.read_idx(target)


def test_data_path_that_is_a_pipe_is_named(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(data.DataError, match=r"--data .*pipe is a named pipe \(FIFO\)"):
        data.load_mnist(tmp_path / "pipe")


@pytest.mark.parametrize("content, message", [
    (b"hello, this is not an archive\n", r"not a zip archive \(starts with b'hello, this '\): a text file"),
    (b"\x93NUMPY\x01\x00v\x00{'descr'", r"a single NumPy array \(.npy\), not an .npz archive"),
    (gzip.compress(b"x"), "gzip-compressed data"),
    (b"", "file is empty"),
])
def test_npz_that_is_not_an_archive_says_what_it_is(tmp_path, content, message):
    file = tmp_path / "my mnist.npz"
    file.write_bytes(content)
    with pytest.raises(data.DataError, match=message) as error:
        data.load_mnist(file)
    assert "pickled" not in str(error.value) and str(file) in str(error.value)


def test_npz_zip_bomb_is_refused_unread(tmp_path):
    file = tmp_path / "mnist.npz"
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("x_train.npy", "w") as member:
        for _ in range(40):
            member.write(bytes(MEGABYTE))
    with pytest.raises(data.DataError, match="'x_train.npy' would expand from .* a decompression bomb"):
        data.load_mnist(file)


def test_text_npz_through_the_cli_is_a_clear_error(tmp_path):
    file = tmp_path / "mnist.npz"
    file.write_text("x_train,y_train\n1,2\n")
    result = CliRunner().invoke(train_cli.main, ["--data", str(file), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "not a zip archive (starts with b'x_train,y_tr'): a text file" in result.output


def test_zip_archive_with_too_many_members_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(input_files, "MAX_ZIP_MEMBERS", 3)
    file = tmp_path / "many.npz"
    with zipfile.ZipFile(file, "w") as archive:
        for index in range(5):
            archive.writestr(f"{index}.npy", b"")
    with pytest.raises(input_files.InputFileError, match="a zip archive of 5 members, more than the 3 accepted"):
        input_files.check_zip_archive(file, 1000, "an archive")


# --- a real interrupted training run ------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_before_the_first_epoch_marks_the_run_incomplete(tmp_path, mnist):
    import keras

    class InterruptAtBatchThree(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    settings = train_config.TrainConfig(epochs=3, limit=400, batch_size=32, out=str(tmp_path / "my runs"),
                                        name="early", augment=False)
    run_dir = train.make_run_dir(settings)
    (run_dir / "config.json").write_text("{}")
    result = train.train(settings, mnist, run_dir, extra_callbacks=[InterruptAtBatchThree()])
    assert result.interrupted and result.best_epoch == 0 and (run_dir / "model.keras").is_file()
    metrics = report.write_run_report(result, mnist.test_images[:300], mnist.test_labels[:300],
                                      planned_epochs=settings.epochs)
    assert metrics["complete"] is False and "before the first epoch ended (0 of 3 epochs)" in metrics["incomplete_reason"]
    with pytest.raises(model_checks.IncompleteRunError, match="before the first epoch ended"):
        export.check_inputs(export_config.ExportConfig(model=str(run_dir)))


# --- seeded fuzzing ----------------------------------------------------------------------------------------


def _mutate(rng: np.random.Generator, content: bytes, head_bias: float = 0.6) -> bytes:
    """A few random bytes overwritten (mostly in the header), sometimes cut short."""
    mutated = bytearray(content)
    for _ in range(int(rng.integers(1, 7))):
        span = min(len(mutated), 64) if rng.random() < head_bias else len(mutated)
        mutated[int(rng.integers(span))] = int(rng.integers(256))
    if rng.random() < 0.2:
        mutated = mutated[:int(rng.integers(len(mutated)))]
    return bytes(mutated)


@pytest.mark.fuzz
def test_fuzzed_idx_and_npz_files_give_data_errors_only(mnist_path, tmp_path):
    labels = gzip.decompress((mnist_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    sources = {"raw": labels, ".gz": (mnist_path / "t10k-labels-idx1-ubyte.gz").read_bytes()}
    small = {name: np.zeros(shape, np.uint8) for name, shape in
             (("x_train", (5, 28, 28)), ("y_train", (5,)), ("x_test", (5, 28, 28)), ("y_test", (5,)))}
    np.savez_compressed(tmp_path / "small.npz", **small)
    sources[".npz"] = (tmp_path / "small.npz").read_bytes()
    rng = np.random.default_rng(12)
    outcomes = {"read": 0, "refused": 0}
    for index in range(300):
        kind = ("raw", ".gz", ".npz")[index % 3]
        file = tmp_path / f"mutant {index}{'' if kind == 'raw' else kind}"
        file.write_bytes(_mutate(rng, sources[kind]))
        try:
            data.load_npz(file) if kind == ".npz" else data.read_idx(file)
            outcomes["read"] += 1
        except data.DataError as error:
            assert str(file) in str(error)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100  # Anything else (zlib.error, NotImplementedError...) fails the test.


@pytest.mark.fuzz
def test_fuzzed_keras_members_give_model_errors_only(tiny_model_file, tmp_path):
    members = {info.filename: zipfile.ZipFile(tiny_model_file).read(info.filename)
               for info in zipfile.ZipFile(tiny_model_file).infolist()}
    rng = np.random.default_rng(13)
    refused = 0
    for index in range(80):
        name = ("config.json", "model.weights.h5")[index % 2]
        mutant = tmp_path / f"mutant {index}.keras"
        with zipfile.ZipFile(mutant, "w") as archive:  # Rebuilt, so the mutation reaches Keras, not the CRC check.
            for member, content in members.items():
                archive.writestr(member, _mutate(rng, content, head_bias=0.3) if member == name else content)
        try:
            model_checks.check_model_file(mutant)
            export.load_keras_model(mutant)
        except model_checks.ModelFileError as error:
            assert str(mutant) in str(error)
            refused += 1
    assert refused > 10
