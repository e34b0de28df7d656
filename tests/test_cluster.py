"""`digit-infer --cluster`: a local Dask cluster gives the in-process rows, survives a killed worker, names bad addresses."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import cv2
import pytest
from click.testing import CliRunner

from conftest import REPO, SAMPLES

distributed = pytest.importorskip("distributed", reason="the [cluster] extra (Dask) is not installed")
psutil = pytest.importorskip("psutil")

from edge_runtime import batch, cli, cluster, constants, reader as reader_module  # noqa: E402


def make_folder(root: pathlib.Path, mnist, count: int) -> pathlib.Path:
    """`count` MNIST PNGs, the sample photos and a file that is not an image, in a folder with spaces."""
    folder = root / "my scans"
    (folder / "digits").mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(folder / "digits" / f"{index:05d}.png"), mnist.test_images[index])
    for sample in sorted(SAMPLES.glob("*.jpg")):
        (folder / sample.name).write_bytes(sample.read_bytes())
    (folder / "notes.png").write_text("shopping list\n")
    return folder


@pytest.fixture(scope="module")
def local_cluster():
    """A 2-worker local cluster for this module's library tests, stopped at the end."""
    session = cluster.Session(cluster.ClusterOptions("local:2"))
    yield session
    session.close()


def test_a_local_cluster_reads_a_folder_with_the_in_process_rows(tmp_path, mnist, local_cluster):
    folder = make_folder(tmp_path, mnist, 300)
    files, _ = batch.discover([folder])
    in_process = [result.to_record() for result in batch.read_files(batch.BatchJob(), files)]
    on_cluster = [result.to_record() for result in cluster.read_files(local_cluster.client, batch.BatchJob(), files)]
    assert cluster.worker_count(local_cluster.client) == 2
    assert on_cluster == in_process  # Row for row, in order, errors included.
    assert any(row["status"] == "error" and "notes.png" in row["path"] for row in on_cluster)


def test_the_cli_on_a_local_cluster_writes_the_same_csv(tmp_path, mnist):
    folder = make_folder(tmp_path, mnist, 120)
    runner = CliRunner()
    plain = runner.invoke(cli.main, [str(folder), "--format", "csv", "--output", str(tmp_path / "plain.csv")])
    spread = runner.invoke(cli.main, [str(folder), "--format", "csv", "--output", str(tmp_path / "cluster.csv"),
                                      "--cluster", "local:2"])
    assert plain.exit_code == spread.exit_code == 1, spread.output  # notes.png is an error row.
    assert (tmp_path / "cluster.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


def test_an_unreachable_scheduler_is_named_with_dasks_own_error():
    with pytest.raises(cluster.ClusterError, match=r"tcp://127\.0\.0\.1:9.*(OSError|TimeoutError).*"):
        cluster.Session(cluster.ClusterOptions("tcp://127.0.0.1:9", connect_timeout=1))


@pytest.mark.parametrize("address", ["local:0", "locale", ""])
def test_bad_local_addresses_are_refused(address):
    with pytest.raises(ValueError, match="local"):
        cluster.ClusterOptions(address)


def _rows(path: pathlib.Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_a_worker_killed_mid_run_loses_nothing_after_resume(tmp_path, mnist):
    folder = make_folder(tmp_path, mnist, 1500)
    output = tmp_path / "out put.csv"
    command = [sys.executable, "-m", "edge_runtime.cli", str(folder), "--cluster", "local:2", "--format", "csv",
               "--output", str(output), "--resume"]
    driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and driver.poll() is None and time.monotonic() < deadline:
            if output.exists() and output.stat().st_size > 2000:  # Reading has begun on the workers.
                workers = [child for child in psutil.Process(driver.pid).children(recursive=True)
                           if _is_worker(child)]
                if workers:
                    killed = workers[0].pid
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, stderr = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed is not None, f"the run ended before a worker could be killed: {stderr}"
    # Dask reschedules the dead worker's chunks: the job completes, or it fails naming Dask's error.
    assert driver.returncode == 1 and "Traceback" not in stderr, stderr  # 1: notes.png is an error row.
    if "the cluster lost a chunk" in stderr:
        assert "KilledWorker" in stderr or "CommClosedError" in stderr
    resumed = CliRunner().invoke(cli.main, [str(folder), "--format", "csv", "--output", str(output), "--resume"])
    assert resumed.exit_code in (0, 1), resumed.output
    rows = _rows(output)
    files, _ = batch.discover([folder])
    assert sorted(row["path"] for row in rows) == sorted(files)  # Every input exactly once.
    cli_default = reader_module.ReaderOptions(min_confidence=constants.CLI_MIN_CONFIDENCE)  # as digit-infer reads
    expected = {result.source: result.to_record()["digits"]
                for result in batch.read_files(batch.BatchJob(options=cli_default), files)}
    assert {row["path"]: row["digits"] for row in rows} == expected


def _is_worker(process) -> bool:
    """A Dask worker process: spawned by multiprocessing, with no children of its own."""
    try:
        return "spawn_main" in " ".join(process.cmdline()) and not process.children()
    except psutil.Error:  # It ended while we looked.
        return False


ENGINE_BLOCKER = """
import importlib.abc, json, sys
class BlockEngines(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed", "ray", "pyarrow", "fsspec", "tensorflow", "keras"):
            raise ImportError(f"blocked: {name}", name=name)
sys.meta_path.insert(0, BlockEngines())
from edge_runtime import cli
sys.argv = ["digit-infer", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exit_:
    code = exit_.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"dask", "distributed", "ray", "pyarrow", "fsspec"})
print(json.dumps({"exit": code, "engines": heavy}), file=sys.stderr)
"""


def test_the_edge_install_never_imports_the_engine_without_cluster(tmp_path):
    output = tmp_path / "out.csv"
    completed = subprocess.run([sys.executable, "-c", ENGINE_BLOCKER, str(SAMPLES), "--format", "csv", "--output",
                                str(output), "--resume"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert json.loads(completed.stderr.strip().splitlines()[-1]) == {"exit": 0, "engines": []}, completed.stderr
    assert len(_rows(output)) == len(list(SAMPLES.glob("*.jpg")))


@pytest.mark.parametrize("options", [["--cluster", "local:2"], ["--format", "parquet", "--output", "x.parquet"]])
def test_without_the_extra_the_error_says_which_pip_install(tmp_path, options):
    completed = subprocess.run([sys.executable, "-c", ENGINE_BLOCKER, str(SAMPLES), *options], capture_output=True,
                               text=True, cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "pip install 'digitkit[cluster]'" in completed.stderr, completed.stderr
    assert json.loads(completed.stderr.strip().splitlines()[-1])["exit"] == 1
