#!/usr/bin/env python
"""Issue 11 benchmark: the engine choice, cluster vs in-process throughput, --resume after SIGKILL, mirrored training.

Sections (all by default; pick with --only):
  engine      what the distributed engine costs by itself: import, starting a 2-worker local cluster,
              500 no-op tasks, stopping, memory of the processes; run under each engine's Python
              (--engine-python PYTHON, e.g. a scratch venv with Ray) to compare Dask with Ray;
  throughput  a folder of --images files (28x28 MNIST PNGs and 640x480 JPEG "photos", --jpeg-share of them)
              through `digit-infer --cluster local:2` and `digit-infer --workers 2`, end to end, plus the
              per-worker rate from Dask's own task stream and a paper estimate for 100 workers / 10 M images;
  resume      `digit-infer --resume` killed with SIGKILL at half the folder, then resumed: times against an
              uninterrupted run, and the two outputs compared byte for byte after sorting;
  train       `digit-train --strategy mirrored` against the default strategy at the same seed
              (--train-profile quick by default, to spare the shared CPU).

Usage:
    MNIST_DIR=../shared/mnist python scripts/bench_cluster.py [--only throughput resume ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SECTIONS = ("engine", "throughput", "resume", "train")
BIN = pathlib.Path(sys.executable).parent
SUMMARY = re.compile(r"(\d+) inputs?: .* in ([\d.]+) s")

ENGINE_PROBE = r'''
import json, os, sys, time
import psutil
engine, tasks = sys.argv[1], int(sys.argv[2])
def noop(x):
    return x
def tree_rss():
    me = psutil.Process()
    return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]) / 1e6
figures = {"engine": engine}
if __name__ == "__main__":
    started = time.perf_counter()
    if engine == "dask":
        import distributed
        figures["version"] = distributed.__version__
        figures["import_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
        figures["start_s"] = time.perf_counter() - started
        client.gather([client.submit(noop, -i - 1, pure=False) for i in range(4)])  # warm
        started = time.perf_counter()
        client.gather([client.submit(noop, i, pure=False) for i in range(tasks)])
        figures["task_overhead_ms"] = (time.perf_counter() - started) / tasks * 1e3
        figures["rss_mb"] = tree_rss()
        started = time.perf_counter()
        client.close(); cluster.close()
        figures["stop_s"] = time.perf_counter() - started
    else:
        import ray
        figures["version"] = ray.__version__
        figures["import_s"] = time.perf_counter() - started
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(noop)
        ray.get([remote.remote(-i - 1) for i in range(4)])
        figures["start_s"] = time.perf_counter() - started
        started = time.perf_counter()
        ray.get([remote.remote(i) for i in range(tasks)])
        figures["task_overhead_ms"] = (time.perf_counter() - started) / tasks * 1e3
        # Ray Data's map_batches with 2 actors on num_cpus=2 was left out: it never finished here (600 s), as
        # the actors hold both CPUs and Ray Data's own read tasks wait for one.
        figures["rss_mb"] = tree_rss()
        started = time.perf_counter()
        ray.shutdown()
        figures["stop_s"] = time.perf_counter() - started
    print(json.dumps({key: round(value, 3) if isinstance(value, float) else value for key, value in figures.items()}))
'''


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    return {"cpu": cpu, "cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version()}


def site_packages_mb(python: str, packages: list[str]) -> float:
    """Installed size of `packages` (and their data folders) in `python`'s site-packages."""
    code = ("import importlib.metadata as m, os, sys\n"
            "total = 0\n"
            "for name in sys.argv[1:]:\n"
            "    d = m.distribution(name)\n"
            "    total += sum(os.path.getsize(d.locate_file(f)) for f in d.files or [] if os.path.isfile(d.locate_file(f)))\n"
            "print(total / 1e6)")
    completed = subprocess.run([python, "-c", code, *packages], capture_output=True, text=True)
    return round(float(completed.stdout.strip()), 1) if completed.returncode == 0 else float("nan")


def bench_engine(pythons: list[str]) -> list[dict]:
    results = []
    for python in pythons:
        for engine in ("dask", "ray"):
            probe = subprocess.run([python, "-c", ENGINE_PROBE, engine, "500"], capture_output=True, text=True,
                                   timeout=600, cwd=tempfile.gettempdir())
            if probe.returncode != 0:
                continue  # That engine is not installed under this Python.
            figures = json.loads(probe.stdout.strip().splitlines()[-1])
            figures["python"] = python
            packages = ["dask", "distributed"] if engine == "dask" else ["ray"]
            figures["installed_mb"] = site_packages_mb(python, packages)
            print(f"engine {engine} {figures['version']}: import {figures['import_s']:.2f} s, 2-worker local "
                  f"start {figures['start_s']:.2f} s, {figures['task_overhead_ms']:.2f} ms per no-op task, "
                  f"stop {figures['stop_s']:.2f} s, {figures['rss_mb']:.0f} MB RSS, "
                  f"{figures['installed_mb']:.0f} MB installed ({' + '.join(packages)})")
            results.append(figures)
    return results


def make_folder(folder: pathlib.Path, images: int, jpeg_share: float, seed: int = 0) -> dict:
    """`images` files in one folder: MNIST test digits as 28x28 PNGs and, spread evenly among them (so that
    half the files is half the work), a share of 640x480 JPEG "photos" of 1-3 digits on noisy paper."""
    import cv2
    import numpy as np

    from trainer import data

    marker = folder / ".complete.json"
    wanted = {"images": images, "jpeg_share": jpeg_share, "seed": seed, "layout": "mixed"}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return wanted
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "mixed").mkdir(parents=True)
    mnist = data.load_mnist(os.environ.get("MNIST_DIR"))
    digits = mnist.test_images
    rng = np.random.default_rng(seed)
    pngs = jpegs = 0
    for number in range(images):
        if int((number + 1) * jpeg_share) == int(number * jpeg_share):
            cv2.imwrite(str(folder / "mixed" / f"{number:06d}.png"), digits[pngs % len(digits)])
            pngs += 1
            continue
        page = np.full((480, 640), 200, np.uint8) + rng.integers(0, 30, (480, 640), dtype=np.uint8)
        count = int(rng.integers(1, 4))
        x = int(rng.integers(40, 300))
        for slot in range(count):
            digit = 255 - digits[int(rng.integers(len(digits)))]
            big = cv2.resize(digit, (112, 112), interpolation=cv2.INTER_LINEAR)
            y = int(rng.integers(100, 300))
            region = page[y:y + 112, x + slot * 110:x + slot * 110 + 112]
            np.minimum(region, big, out=region)
        cv2.imwrite(str(folder / "mixed" / f"{number:06d}.jpg"), cv2.GaussianBlur(page, (3, 3), 0),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        jpegs += 1
    marker.write_text(json.dumps(wanted))
    return wanted


def run_infer(arguments: list[str], kill_at_rows: int | None = None, output: pathlib.Path | None = None) -> dict:
    """Runs digit-infer; with `kill_at_rows`, SIGKILLs it once `output` has that many lines."""
    started = time.perf_counter()
    process = subprocess.Popen([str(BIN / "digit-infer"), *arguments], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed = False
    if kill_at_rows is not None:
        while process.poll() is None:
            if output.exists() and _lines(output) >= kill_at_rows:
                os.killpg(process.pid, signal.SIGKILL)  # The driver and the pool it started, as a crash would.
                killed = True
                break
            time.sleep(0.05)
    stderr = process.communicate()[1]
    seconds = time.perf_counter() - started
    match = SUMMARY.search(stderr or "")
    figures = {"wall_s": round(seconds, 2), "exit": process.returncode, "killed": killed}
    if match:
        figures.update(inputs=int(match.group(1)), reading_s=float(match.group(2)))
    if process.returncode not in (0, 1) and not killed:
        raise RuntimeError(f"digit-infer {' '.join(arguments)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return figures


def _lines(path: pathlib.Path) -> int:
    with open(path, "rb") as stream:
        return sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))


def per_worker_rates(folder: pathlib.Path, sample: int) -> dict:
    """Reads `sample` files of the folder on a 2-worker local cluster and asks Dask's task stream how long
    each worker was busy: images per busy second per worker, and the scheduler's share."""
    import distributed

    from edge_runtime import batch, cluster

    paths = sorted(str(path) for path in folder.rglob("*") if path.suffix in (".png", ".jpg"))
    step = max(1, len(paths) // sample)
    paths = paths[::step][:sample]
    session = cluster.Session(cluster.ClusterOptions("local:2"))
    try:
        list(cluster.read_files(session.client, batch.BatchJob(), paths[:64]))  # Each worker loads the model.
        with distributed.get_task_stream(session.client) as stream:
            started = time.perf_counter()
            rows = list(cluster.read_files(session.client, batch.BatchJob(), paths))
            seconds = time.perf_counter() - started
        busy, images = {}, {}
        for task in stream.data:
            compute = [part for part in task["startstops"] if part["action"] == "compute"]
            worker = task["worker"]
            busy[worker] = busy.get(worker, 0.0) + sum(part["stop"] - part["start"] for part in compute)
            images[worker] = images.get(worker, 0) + 1
    finally:
        session.close()
    chunk = len(paths) / max(1, sum(images.values()))
    workers = {worker: {"chunks": images[worker], "busy_s": round(busy[worker], 2),
                        "images_per_busy_s": round(images[worker] * chunk / busy[worker], 1)} for worker in busy}
    return {"images": len(rows), "seconds": round(seconds, 2), "tasks": sum(images.values()),
            "images_per_task": round(chunk, 1), "workers": workers}


def paper_estimate(rate_per_worker: float, writer_rows_per_s: float, task_overhead_ms: float,
                   images: int = 10_000_000, workers: int = 100, chunk: int = 64) -> dict:
    """What 100 workers would give for 10 M images: the slowest of the workers, the scheduler and the driver."""
    tasks = images / chunk
    workers_s = images / (rate_per_worker * workers)
    scheduler_s = tasks * task_overhead_ms / 1e3  # Dask's scheduler handles tasks one at a time.
    driver_s = images / writer_rows_per_s  # Every row comes back to the one driver that writes the output.
    bound = max(workers_s, scheduler_s, driver_s)
    return {"images": images, "workers": workers, "chunk": chunk, "tasks": int(tasks),
            "workers_bound_s": round(workers_s), "scheduler_bound_s": round(scheduler_s),
            "driver_bound_s": round(driver_s), "estimate_s": round(bound),
            "limited_by": ["workers", "scheduler", "driver"][[workers_s, scheduler_s, driver_s].index(bound)],
            "estimate_images_per_s": round(images / bound)}


def writer_rate(rows: int = 50_000) -> float:
    """Rows per second the driver appends to a resumable CSV (one flush per record)."""
    from edge_runtime import reader as reader_module, resume

    scratch = pathlib.Path(tempfile.mkdtemp())
    try:
        results = [reader_module.ReadResult(digits="7", status="ok", source=f"/data/{i:08d}.png") for i in range(rows)]
        output = resume.ResumableResults(scratch / "rows.csv", "csv", {"format": "csv", "model_sha256": "x",
                                                                        "reading": {}})
        started = time.perf_counter()
        with output:
            for result in results:
                output.write(result)
        return rows / (time.perf_counter() - started)
    finally:
        shutil.rmtree(scratch)


def bench_throughput(folder: pathlib.Path, scratch: pathlib.Path, engine: list[dict]) -> dict:
    local = run_infer([str(folder), "--workers", "2", "--format", "csv", "--output", str(scratch / "local.csv")])
    distributed_run = run_infer([str(folder), "--cluster", "local:2", "--format", "csv", "--output",
                                 str(scratch / "cluster.csv")])
    same = (scratch / "local.csv").read_bytes() == (scratch / "cluster.csv").read_bytes()
    figures = {"in_process_workers_2": local, "cluster_local_2": distributed_run, "rows_identical": same}
    for run in (local, distributed_run):
        run["images_per_s_wall"] = round(run["inputs"] / run["wall_s"], 1)
        run["images_per_s_reading"] = round(run["inputs"] / run["reading_s"], 1)
    figures["ratio_wall"] = round(distributed_run["images_per_s_wall"] / local["images_per_s_wall"], 3)
    figures["ratio_reading"] = round(distributed_run["images_per_s_reading"] / local["images_per_s_reading"], 3)
    print(f"throughput: in-process --workers 2 {local['images_per_s_wall']:.0f} images/s wall "
          f"({local['images_per_s_reading']:.0f} reading); --cluster local:2 {distributed_run['images_per_s_wall']:.0f} "
          f"wall ({distributed_run['images_per_s_reading']:.0f} reading): ratio {figures['ratio_wall']:.0%} wall, "
          f"{figures['ratio_reading']:.0%} reading phase (target 80%); rows identical: {same}")
    figures["per_worker"] = per_worker_rates(folder, sample=4000)
    rates = [worker["images_per_busy_s"] for worker in figures["per_worker"]["workers"].values()]
    print(f"per worker (Dask task stream): {rates} images per busy second; "
          f"{figures['per_worker']['tasks']} tasks of {figures['per_worker']['images_per_task']} images")
    figures["writer_rows_per_s"] = round(writer_rate())
    overhead = next((item["task_overhead_ms"] for item in engine if item["engine"] == "dask"), 1.0)
    figures["paper_100_workers_10M"] = paper_estimate(min(rates), figures["writer_rows_per_s"], overhead)
    estimate = figures["paper_100_workers_10M"]
    print(f"paper: 100 workers x {min(rates):.0f} images/s = 10 M images in {estimate['workers_bound_s']} s of "
          f"worker time; scheduler {estimate['scheduler_bound_s']} s for {estimate['tasks']} tasks at "
          f"{overhead:.2f} ms; driver writing {estimate['driver_bound_s']} s at {figures['writer_rows_per_s']} rows/s "
          f"-> about {estimate['estimate_s']} s, limited by the {estimate['limited_by']}")
    return figures


def sorted_bytes(path: pathlib.Path) -> bytes:
    return b"".join(sorted(path.read_bytes().splitlines(keepends=True)))


def bench_resume(folder: pathlib.Path, scratch: pathlib.Path, images: int) -> dict:
    full_output, killed_output = scratch / "full.csv", scratch / "resumed.csv"
    for path in (full_output, killed_output):
        for leftover in (path, path.with_name(path.name + ".digitkit.json")):
            leftover.unlink(missing_ok=True)
    common = ["--workers", "2", "--format", "csv", "--resume"]
    full = run_infer([str(folder), *common, "--output", str(full_output)])
    killed = run_infer([str(folder), *common, "--output", str(killed_output)], kill_at_rows=images // 2 + 1,
                       output=killed_output)
    rows_at_kill = _lines(killed_output) - 1
    resumed = run_infer([str(folder), *common, "--output", str(killed_output)])
    identical = sorted_bytes(full_output) == sorted_bytes(killed_output)
    figures = {"full": full, "killed": killed, "rows_at_kill": rows_at_kill, "resumed": resumed,
               "resume_over_full": round(resumed["wall_s"] / full["wall_s"], 3),
               "killed_plus_resume_over_full": round((killed["wall_s"] + resumed["wall_s"]) / full["wall_s"], 3),
               "byte_identical_after_sorting": identical, "rows": _lines(killed_output) - 1}
    print(f"resume: full run {full['wall_s']:.1f} s; SIGKILL after {rows_at_kill} rows ({killed['wall_s']:.1f} s); "
          f"resumed run {resumed['wall_s']:.1f} s = {figures['resume_over_full']:.0%} of a full run (target 60%); "
          f"killed + resumed {figures['killed_plus_resume_over_full']:.0%}; byte-identical after sorting: {identical}")
    return figures


def bench_train(profile: str, seed: int, scratch: pathlib.Path) -> dict:
    figures = {"profile": profile, "seed": seed}
    for strategy in ("default", "mirrored"):
        name = f"{strategy}-{seed}"
        arguments = [str(BIN / "digit-train"), "--seed", str(seed), "--out", str(scratch / "runs"), "--name", name,
                     "--strategy", strategy] + (["--quick"] if profile == "quick" else [])
        started = time.perf_counter()
        subprocess.run(arguments, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        metrics = json.loads((scratch / "runs" / name / "metrics.json").read_text())
        figures[strategy] = {"test_accuracy": metrics["test_accuracy"], "wall_s": round(time.perf_counter() - started, 1)}
    figures["difference_points"] = round(100 * abs(figures["mirrored"]["test_accuracy"] - figures["default"]["test_accuracy"]), 3)
    print(f"train ({profile}, seed {seed}): default {figures['default']['test_accuracy']:.2%} "
          f"({figures['default']['wall_s']} s), mirrored {figures['mirrored']['test_accuracy']:.2%} "
          f"({figures['mirrored']['wall_s']} s): {figures['difference_points']} points apart (target 0.1)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--jpeg-share", type=float, default=0.25)
    parser.add_argument("--folder", type=pathlib.Path, default=pathlib.Path(tempfile.gettempdir()) / "digitkit-bench-cluster")
    parser.add_argument("--engine-python", action="append", default=[], help="More interpreters to probe (Ray's venv).")
    parser.add_argument("--train-profile", choices=("quick", "default"), default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=pathlib.Path, default=REPO / "bench" / "cluster.json")
    arguments = parser.parse_args()

    report = {"machine": machine(), "command": " ".join(sys.argv)}
    previous = json.loads(arguments.json.read_text()) if arguments.json.is_file() else {}
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        engine = previous.get("engine", [])
        if "engine" in arguments.only:
            engine = report["engine"] = bench_engine([sys.executable, *arguments.engine_python])
        if {"throughput", "resume"} & set(arguments.only):
            report["folder"] = make_folder(arguments.folder, arguments.images, arguments.jpeg_share)
        if "throughput" in arguments.only:
            report["throughput"] = bench_throughput(arguments.folder, scratch, engine)
        if "resume" in arguments.only:
            report["resume"] = bench_resume(arguments.folder, scratch, arguments.images)
        if "train" in arguments.only:
            report["train"] = bench_train(arguments.train_profile, arguments.seed, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["machine_after"] = machine()
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps({**previous, **report}, indent=2) + "\n")
    print(f"wrote {arguments.json}")


if __name__ == "__main__":
    main()
