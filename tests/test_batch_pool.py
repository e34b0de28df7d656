"""The batch's worker pool ends cleanly: its workers leave by themselves after the last file."""

import multiprocessing.pool
import sys

import cv2
import numpy as np
import pytest

from edge_runtime import batch


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_a_finished_batch_lets_its_workers_leave_without_signals(tmp_path, monkeypatch):
    folder = tmp_path / "with space"
    folder.mkdir()
    for index in range(6):
        cv2.imwrite(str(folder / f"{index}.png"), np.zeros((28, 28), np.uint8))
    exit_codes = []
    terminate = multiprocessing.pool.Pool.terminate

    def recording_terminate(pool):
        exit_codes.append([worker.exitcode for worker in pool._pool])
        terminate(pool)

    monkeypatch.setattr(multiprocessing.pool.Pool, "terminate", recording_terminate)
    monkeypatch.setattr(batch, "chunk_paths", lambda job, paths: [[path] for path in paths])
    paths = sorted(str(path) for path in folder.iterdir())
    results = list(batch.read_files(batch.BatchJob(workers=2), paths))
    assert [result.source for result in results] == paths
    # When the pool's exit would signal them, both workers had already left, by themselves, with status 0.
    assert exit_codes and exit_codes[0] == [0, 0]
