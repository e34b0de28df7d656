"""`digit-train --strategy`: TF_CONFIG roles, TensorFlow's scaling rules, and a real two-worker run on localhost."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from conftest import REPO
from trainer import config as config_module, distribute


def tf_config(workers: list[str], kind: str = "worker", index: int = 0, chief: list[str] | None = None) -> dict:
    cluster = {"worker": workers} | ({"chief": chief} if chief else {})
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


def test_default_and_mirrored_are_one_chief_process():
    assert distribute.role("default") == distribute.Role() == distribute.role("mirrored")
    assert config_module.TrainConfig().strategy == "default"  # The default stays single-device.
    assert distribute.make_strategy("default") is None


def test_multiworker_roles_follow_tf_config():
    pair = ["a:1", "b:1"]
    assert distribute.role("multiworker", tf_config(pair, index=0)) == distribute.Role(2, 0, True)
    assert distribute.role("multiworker", tf_config(pair, index=1)) == distribute.Role(2, 1, False)
    with_chief = tf_config(pair, index=0, chief=["c:1"])
    assert distribute.role("multiworker", with_chief) == distribute.Role(3, 1, False)
    assert distribute.role("multiworker", tf_config(pair, "chief", 0, chief=["c:1"])) == distribute.Role(3, 0, True)


@pytest.mark.parametrize("environ, message", [
    ({}, "needs the TF_CONFIG environment variable"),
    ({"TF_CONFIG": "{not json"}, "not TensorFlow's format"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})}, "not TensorFlow's format"),
    (tf_config(["a:1"], index=3), "not in the cluster"),
])
def test_a_bad_tf_config_is_named_with_an_example(environ, message):
    with pytest.raises(ValueError, match=message):
        distribute.role("multiworker", environ)


def test_scaling_rules():
    class FourReplicas:
        num_replicas_in_sync = 4

    assert distribute.global_batch_size(128, FourReplicas) == 512
    assert distribute.scaled_learning_rate(4e-3, FourReplicas) == pytest.approx(1.6e-2)
    assert distribute.steps_per_epoch(1000, 512) == 1
    with pytest.raises(ValueError, match="strategy='ring'"):
        config_module.TrainConfig(strategy="ring")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for item in sockets:
            item.bind(("localhost", 0))
        return [item.getsockname()[1] for item in sockets]
    finally:
        for item in sockets:
            item.close()


WORKER = """
import sys
from trainer import cli, config, data, train
settings = config.from_profile("quick", limit=400, epochs=1, batch_size=16, out=sys.argv[1], name="pair", seed=3,
                               strategy="multiworker")
run_dir = cli._run_dir_for(settings, train)  # The CLI's choice: the chief's run folder, else a temporary one.
result = train.train(settings, data.load_mnist(sys.argv[2]), run_dir)
print("epochs_run", result.epochs_run, "run_dir", run_dir)
"""


@pytest.mark.slow
def test_two_multiworker_processes_on_localhost_train_and_save_one_model(tmp_path, mnist_path):
    """The training part of digit-train (the report, which predicts on all 10,000 test images, is left out)."""
    pytest.importorskip("tensorflow")
    out = tmp_path / "my runs"
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        environ = {**os.environ, **tf_config(workers, index=index), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "CUDA_VISIBLE_DEVICES": ""}
        processes.append(subprocess.Popen([sys.executable, "-c", WORKER, str(out), str(mnist_path)], cwd=REPO,
                                          env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        logs = [process.communicate(timeout=400)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [process.returncode for process in processes] == [0, 0], "\n---\n".join(log[-3000:] for log in logs)
    assert "2 replica(s), global batch 32" in logs[0] and "epochs_run 1" in logs[0]
    assert sorted(path.name for path in out.iterdir()) == ["pair"]  # Worker 1 wrote to a temporary folder.
    assert (out / "pair" / "model.keras").is_file()
    worker_dir = pathlib.Path(logs[1].split("run_dir ")[-1].strip())
    assert not worker_dir.exists()  # Removed when the worker exited.
