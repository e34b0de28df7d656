"""scripts/bench_peers.py: every peer engine runs the same network and reads the same digits (needs `[bench]`)."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [bench] extra is not installed: pip install '.[bench]'")
pytest.importorskip("tf2onnx", reason="the [bench] extra is not installed: pip install '.[bench]'")

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "bench_peers.py"


@pytest.fixture(scope="module")
def bench_peers():
    spec = importlib.util.spec_from_file_location("bench_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_engine_reads_the_same_digits(bench_peers, tiny_run, tmp_path, mnist_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(mnist_path))
    files = bench_peers.prepare(tiny_run.run_dir / "model.keras", None, tmp_path / "engine files", calibration=50)
    data = np.load(files["images"])
    images, labels = data["images"][:64], data["labels"][:64]
    reference = np.asarray(bench_peers.Engine("keras", files, 1).run(images)).argmax(1)
    assert (reference == labels).mean() > 0.8  # The tiny run is a real, if short, training.
    for name in bench_peers.ENGINES:
        if name == "keras":
            continue
        probabilities = np.asarray(bench_peers.Engine(name, files, 1).run(images))
        assert probabilities.shape == (64, tiny_run_outputs(files)), name
        assert (probabilities.argmax(1) == reference).mean() >= 0.9, name


def tiny_run_outputs(files) -> int:
    import keras

    return int(keras.models.load_model(files["keras"]).outputs[0].shape[-1])


def test_ratios_compare_the_faster_digitkit_row_with_the_best_peer(bench_peers):
    def row(engine, p50, rate):
        figures = {"engine": engine, "latency_us": {"p50": p50, "p90": p50, "min": p50}}
        figures.update({f"batch{batch}_threads{threads}_images_per_s": rate
                        for batch in bench_peers.BATCHES for threads in bench_peers.THREADS})
        return figures

    rows = [row("digitkit-int8", 30.0, 40_000), row("digitkit-dynamic", 20.0, 50_000),
            row("onnxruntime-float32", 40.0, 25_000), row("litert-int8", 25.0, 45_000), row("keras", 500.0, 90_000)]
    ratios = bench_peers.ratios(rows)
    assert ratios["digitkit_row"] == "digitkit-dynamic"
    assert ratios["latency_p50"] == {"ratio": 0.8, "best_peer": "litert-int8"}
    assert ratios["latency_p50_vs_onnxruntime_float32"] == 0.5
    assert ratios["batch64_threads1_images_per_s"] == {"ratio": 1.11, "best_peer": "litert-int8"}  # Keras is no peer.


def test_installed_size_follows_requirements(bench_peers):
    assert bench_peers.installed_mb(["numpy"]) > 5
    assert bench_peers.installed_mb(["no-such-distribution-here"]) == 0
    assert set(bench_peers.cpu_description()["flags"]) == set(bench_peers.CPU_FLAGS)
