"""Reading a batch on a Dask cluster: connecting (or starting a local one), the per-worker model and ordered results."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import threading
from typing import Iterator

from edge_runtime import batch, reader as reader_module

ENGINE = "Dask distributed"
EXTRA = "cluster"
# Chunks waiting per worker: enough that a worker never idles while the driver writes rows, few enough
# that the driver holds a bounded number of results for a 10-million-file job.
CHUNKS_IN_FLIGHT_PER_WORKER = 4
_LOCAL = re.compile(r"local(?::(\d+))?")


class ClusterError(RuntimeError):
    """The cluster cannot be reached or lost the job; the message names Dask's own error."""


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """Where to read.

    Attributes:
        address: "local" (one worker per CPU), "local:N" (N workers), or a Dask scheduler address such as
            "tcp://10.0.0.5:8786".
        connect_timeout: Seconds to wait for a remote scheduler before giving up.
        chunks_in_flight: Chunks queued per worker.
    """

    address: str
    connect_timeout: float = 10.0
    chunks_in_flight: int = CHUNKS_IN_FLIGHT_PER_WORKER

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise ValueError("cluster address is empty: give 'local', 'local:N' or a scheduler address "
                             "like tcp://host:8786")
        match = _LOCAL.fullmatch(self.address)
        if match and match.group(1) is not None and int(match.group(1)) < 1:
            raise ValueError(f"{self.address!r}: a local cluster needs at least 1 worker")
        if self.address.startswith("local") and not match:
            raise ValueError(f"{self.address!r}: write 'local' or 'local:N' with N workers, e.g. local:2")
        if self.connect_timeout <= 0 or self.chunks_in_flight < 1:
            raise ValueError(f"connect_timeout={self.connect_timeout}, chunks_in_flight={self.chunks_in_flight}: "
                             f"must be positive")

    @property
    def local_workers(self) -> int | None:
        """Workers of the local cluster to start, or None for a remote scheduler."""
        match = _LOCAL.fullmatch(self.address)
        if not match:
            return None
        return int(match.group(1)) if match.group(1) else (os.cpu_count() or 1)


def require_engine():
    """Imports `distributed`, or raises MissingExtra naming the [cluster] extra."""
    from edge_runtime import optional

    return optional.require("distributed", "--cluster")


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[object]:
    """Yields a Dask client: to a scheduler already running, or to a local cluster started here and
    stopped (workers included) when the block ends.

    Raises:
        MissingExtra: Dask is not installed.
        ClusterError: The scheduler cannot be reached; the message carries Dask's error.
    """
    distributed = require_engine()
    workers = options.local_workers
    if workers is None:
        try:
            client = distributed.Client(options.address, timeout=options.connect_timeout)
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterError(f"cannot reach the Dask scheduler at {options.address!r}: "
                               f"{type(error).__name__}: {error}") from error
        with contextlib.closing(client):
            yield client
        return
    # Processes, one thread each: the TFLite interpreter and the chunk reader's state are per process,
    # and the GIL would serialise threads anyway. The HTTP endpoint takes any free port, not 8787 (often in use).
    import dask

    # Dask's statistical profiler samples every worker thread 100 times a second: measurable CPU on small
    # machines, and nobody looks at the dashboard of a run-scoped cluster. Unlimited worker saturation sends
    # each worker its next chunks at once, instead of one when it reports the last done: the round trip
    # through a busy scheduler left the workers idle a third of the time here.
    with dask.config.set({"distributed.worker.profile.enabled": False,
                          "distributed.scheduler.worker-saturation": float("inf")}):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
    try:
        with contextlib.closing(distributed.Client(cluster)) as client:
            yield client
    finally:
        cluster.close()


class Session:
    """A client connected now (so a bad address fails before any output is opened), closed, with the local
    cluster it started, when its reading ends or stops."""

    def __init__(self, options: ClusterOptions):
        """Connects, or starts the local cluster.

        Raises:
            MissingExtra: Dask is not installed.
            ClusterError: The scheduler cannot be reached.
        """
        self.options = options
        self._context = connect(options)
        self.client = self._context.__enter__()

    def read_files(self, job: batch.BatchJob, paths: list[str]) -> Iterator[reader_module.ReadResult]:
        """`read_files` on this session's cluster; the session closes when the iterator ends or is closed."""
        try:
            yield from read_files(self.client, job, paths, self.options)
        finally:
            self.close()

    def close(self) -> None:
        """Disconnects, and stops a local cluster's workers; a second call does nothing."""
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(None, None, None)


def worker_count(client) -> int:
    """Workers the scheduler knows now (at least 1, so chunking stays defined while workers join)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def read_files(client, job: batch.BatchJob, paths: list[str],
               options: ClusterOptions | None = None) -> Iterator[reader_module.ReadResult]:
    """Reads `paths` on the cluster's workers, a chunk per task, and yields the results in input order.

    Each worker process loads the model once, on its first chunk, and reads through
    `batch.read_chunk`, the in-process reader, so the rows are the same. Only a bounded window of chunks
    is queued at a time, so the driver's memory does not grow with the job.

    Raises:
        ClusterError: A chunk failed on the cluster (a worker died more often than Dask retries, the
            scheduler went away). Results already yielded stay valid; `--resume` reads the rest.
        ValueError: A worker's model file differs from the driver's.
    """
    distributed = require_engine()
    workers = worker_count(client)
    job = dataclasses.replace(job, workers=workers)
    # Workers resolve paths on their own machine: the driver's working folder means nothing there.
    if job.model_path is not None:
        job = dataclasses.replace(job, model_path=os.path.abspath(job.model_path))
    if job.overlay_dir is not None:
        job = dataclasses.replace(job, overlay_dir=os.path.abspath(job.overlay_dir))
    expected = model_sha256(job.model_path)
    chunks = iter(batch.chunk_paths(job, paths))
    window: collections.deque = collections.deque()
    limit = workers * (options.chunks_in_flight if options else CHUNKS_IN_FLIGHT_PER_WORKER)

    def submit_next() -> None:
        chunk = next(chunks, None)
        if chunk is not None:
            window.append(client.submit(_read_chunk_on_worker, job, chunk, pure=False))

    for _ in range(limit):
        submit_next()
    try:
        while window:
            future = window.popleft()
            try:
                worker_model, results = future.result()
            except (distributed.KilledWorker, distributed.comm.CommClosedError, OSError, TimeoutError) as error:
                raise ClusterError(f"the cluster lost a chunk of {len(paths)} inputs ({ENGINE}: "
                                   f"{type(error).__name__}: {error}); the rows before it were written, and with "
                                   f"--resume a new run reads the rest") from error
            except Exception as error:  # Raised by the task itself on the worker (one bad file never does).
                raise ClusterError(f"a chunk failed on a worker ({ENGINE} passed on {type(error).__name__}: "
                                   f"{error})") from error
            if worker_model != expected:
                raise ValueError(f"a worker's model {job.model_path or 'packaged model'} has SHA-256 "
                                 f"{worker_model[:12]}…, the driver's {expected[:12]}…: install the same "
                                 f"digitkit and model on every worker")
            submit_next()
            yield from results
    finally:
        if window:
            client.cancel(list(window))


def model_sha256(model_path: str | os.PathLike | None) -> str:
    """SHA-256 of a model file (None: the packaged model), which names the model in resumable outputs."""
    path = model_path if model_path is not None else reader_module.DEFAULT_MODEL
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_worker_lock = threading.Lock()
_worker_model: dict = {}


def _read_chunk_on_worker(job: batch.BatchJob, paths: list[str]) -> tuple[str, list[reader_module.ReadResult]]:
    """Runs on a Dask worker: (the worker's model hash, the chunk's results)."""
    # A worker started with several threads would share the one cached reader: take turns.
    with _worker_lock:
        if "sha256" not in _worker_model or _worker_model["path"] != job.model_path:
            _worker_model["path"], _worker_model["sha256"] = job.model_path, model_sha256(job.model_path)
        return _worker_model["sha256"], batch.read_chunk(job, paths)
