"""The trainer: augmentation, a short real training run with every output, Ctrl-C safety, and the CLI."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from trainer import augment, cli, config, model, train


def test_model_is_small_enough_for_the_edge():
    network = model.build_model()
    assert 10_000 < network.count_params() < 60_000
    assert network.output_shape == (None, 10)


def test_augmentation_is_seeded_and_keeps_digits_in_frame(mnist):
    images = mnist.train_images[:64]
    first = augment.augment_batch(images, np.random.default_rng(5), augment.AugmentOptions())
    second = augment.augment_batch(images, np.random.default_rng(5), augment.AugmentOptions())
    assert first.shape == images.shape and first.dtype == np.uint8
    assert np.array_equal(first, second)
    assert not np.array_equal(first, images)
    # Strokes get thicker or thinner, but no digit loses most of its ink off the edge.
    ratio = first.reshape(64, -1).sum(1) / images.reshape(64, -1).sum(1)
    assert ratio.min() > 0.4 and ratio.max() < 2.2 and 0.85 < np.median(ratio) < 1.15


@pytest.mark.slow
def test_short_training_writes_every_output(tiny_run):
    run_dir = tiny_run.run_dir
    assert " " in str(run_dir)
    assert (run_dir / "model.keras").is_file()
    assert tiny_run.epochs_run == 2 and tiny_run.best_epoch in (1, 2)
    probabilities = tiny_run.model.predict(train.to_float(tiny_run.split.validation_images), verbose=0)
    assert (probabilities.argmax(1) == tiny_run.split.validation_labels).mean() > 0.8  # chance is 0.1


@pytest.mark.slow
def test_report_holds_metrics_and_plots(tiny_run, mnist):
    from trainer import report

    metrics = report.write_run_report(tiny_run, mnist.test_images[:2000], mnist.test_labels[:2000])
    run_dir = tiny_run.run_dir
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"] > 0.8
    assert set(saved["per_class"]) == set("0123456789")
    assert np.array(saved["confusion_matrix"]).sum() == 2000
    assert json.loads((run_dir / "history.json").read_text())["val_accuracy"]
    for plot in ("learning_curves.png", "confusion_matrix.png", "misclassified.png"):
        assert (run_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run_dir.glob(".*"))  # No temporary files left behind.


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_keeps_the_best_model_so_far(tmp_path, mnist):
    settings = config.TrainConfig(epochs=5, limit=1000, out=str(tmp_path), name="stopped")
    run_dir = train.make_run_dir(settings)
    result = train.train(settings, mnist, run_dir, extra_callbacks=[_InterruptAfterFirstEpoch()])
    assert result.interrupted and result.best_epoch == 1
    reloaded = keras.saving.load_model(run_dir / "model.keras")
    images = train.to_float(mnist.test_images[:50])
    assert np.allclose(reloaded.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-5)


def test_run_folders_are_never_overwritten(tmp_path):
    settings = config.TrainConfig(out=str(tmp_path), name="same")
    first, second = train.make_run_dir(settings), train.make_run_dir(settings)
    assert first.name == "same" and second.name == "same-2"


def test_quick_profile_and_explicit_options():
    quick = config.from_profile("quick", epochs=None, batch_size=None, augment=None)
    assert quick.profile == "quick" and quick.epochs < config.TrainConfig().epochs
    assert config.from_profile("default", epochs=3, augment=False).augment is False
    with pytest.raises(ValueError, match="epochs=0"):
        config.TrainConfig(epochs=0)


def test_cli_help_lists_the_options():
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    for option in ("--epochs", "--batch-size", "--out", "--seed", "--no-augment", "--quick", "--limit", "--data"):
        assert option in result.output


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "0"], "0 is not in the range x>=1"),
    (["--limit", "5"], "5 is not in the range x>=20"),
    (["--batch-size", "many"], "'many' is not a valid integer"),
    (["--colour", "blue"], "--colour"),
])
def test_cli_rejects_bad_options(arguments, message):
    result = CliRunner().invoke(cli.main, arguments)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_reports_missing_data_clearly(tmp_path):
    result = CliRunner().invoke(cli.main, ["--data", str(tmp_path / "no such folder"), "--out", str(tmp_path)])
    assert result.exit_code == 2  # a usage error, found before TensorFlow loads
    assert "no such folder: no such file or folder" in result.output and "'--data'" in result.output


@pytest.mark.slow
def test_cli_trains_end_to_end(tmp_path, mnist_path):
    out = tmp_path / "runs with spaces"
    arguments = ["--limit", "1500", "--epochs", "1", "--out", str(out), "--name", "smoke", "--data", str(mnist_path)]
    result = CliRunner().invoke(cli.main, arguments)
    assert result.exit_code == 0, result.output
    run_dir = out / "smoke"
    for name in ("model.keras", "config.json", "history.json", "metrics.json", "learning_curves.png",
                 "confusion_matrix.png", "misclassified.png"):
        assert (run_dir / name).is_file(), name
    saved_config = json.loads((run_dir / "config.json").read_text())
    assert saved_config["limit"] == 1500 and saved_config["data_source"] == str(mnist_path)
    assert "test accuracy" in result.output
    again = CliRunner().invoke(cli.main, arguments)
    assert again.exit_code == 0 and (out / "smoke-2" / "model.keras").is_file()


def test_a_run_that_learned_nothing_is_called_so(tmp_path, monkeypatch, mnist_path):
    from trainer import report

    def untrained(config, mnist, run_dir):
        return train.TrainResult(None, {}, 1, 1, 1.5, False, run_dir, None)

    monkeypatch.setattr(train, "train", untrained)
    monkeypatch.setattr(report, "write_run_report", lambda *_, **__: {
        "parameters": 10, "best_validation_accuracy": 0.09, "test_accuracy": 0.0, "test_loss": 2.9})
    arguments = ["--limit", "2000", "--epochs", "1", "--out", str(tmp_path / "my runs"), "--data", str(mnist_path)]
    result = CliRunner().invoke(cli.main, arguments)
    assert result.exit_code == 0, result.output
    assert "warning: test accuracy 0.00% is no better than guessing" in result.output and "--limit 2000" in result.output
