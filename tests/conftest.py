"""Shared fixtures: the real MNIST files, a tiny trained run and its exports, made once per test session."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def mnist_dir() -> pathlib.Path:
    """$MNIST_DIR, else ../shared/mnist beside the checkout (where CI and the workplace keep it)."""
    folder = pathlib.Path(os.environ.get("MNIST_DIR") or REPO.parent / "shared" / "mnist")
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"MNIST not found in {folder}: set MNIST_DIR to a folder holding the four IDX .gz files")
    return folder


@pytest.fixture(scope="session")
def mnist_path() -> pathlib.Path:
    return mnist_dir()


@pytest.fixture(scope="session")
def mnist(mnist_path):
    from trainer import data

    return data.load_mnist(mnist_path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist):
    """A real but short training run: 3,000 MNIST samples, 2 epochs, in a folder whose path has spaces."""
    from trainer import config, train

    settings = config.TrainConfig(epochs=2, limit=3000, batch_size=64, out=str(tmp_path_factory.mktemp("runs") / "my runs"),
                                  name="tiny", augment=True, seed=1)
    run_dir = train.make_run_dir(settings)
    result = train.train(settings, mnist, run_dir)
    return result


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory, tiny_run, mnist):
    """The tiny run exported in all four modes; {mode: (tflite path, report)}."""
    from exporter import config, export

    out = tmp_path_factory.mktemp("exports")
    exports = {}
    for mode in ("int8", "float16", "dynamic", "none"):
        settings = config.ExportConfig(model=str(tiny_run.run_dir), quantize=mode, out=str(out), latency_runs=20,
                                       calibration_samples=200)
        exports[mode] = export.export(settings, mnist)
    return exports
