"""Benchmarks `digit-eval`: 10,000 MNIST test digits as 28x28 PNGs (images/s, end to end), and its cold start.

Usage: MNIST_DIR=../shared/mnist .venv/bin/python scripts/bench_eval.py [--json bench/eval.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # scripts/machine.py, also when imported by tests
import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_folder(folder: pathlib.Path) -> int:
    from trainer import data

    mnist = data.load_mnist(os.environ.get("MNIST_DIR") or ROOT.parent / "shared" / "mnist")
    for index, (image, label) in enumerate(zip(mnist.test_images, mnist.test_labels)):
        path = folder / str(int(label)) / f"t{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
    return len(mnist.test_labels)


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds, CPU seconds (user + system, all threads) and the completed process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), completed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(ROOT / "bench" / "eval.json"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    tool = str(pathlib.Path(sys.executable).parent / "digit-eval")
    with tempfile.TemporaryDirectory(prefix="digit-eval-bench-") as scratch:
        folder = pathlib.Path(scratch) / "mnist pngs"
        count = write_folder(folder)
        one = pathlib.Path(scratch) / "one"
        (one / "7").mkdir(parents=True)
        (one / "7" / "a.png").write_bytes(next((folder / "7").glob("*.png")).read_bytes())
        big, big_cpu, reports = [], [], []
        for run in range(args.runs):
            seconds, cpu, completed = timed([tool, "default", str(folder), "--out", f"{scratch}/out{run}"])
            if completed.returncode != 0:
                raise SystemExit(completed.stderr)
            big.append(seconds)
            big_cpu.append(cpu)
            reports.append(json.loads(pathlib.Path(scratch, f"out{run}", "report.json").read_text()))
        cold, cold_cpu = [], []
        for run in range(5):
            seconds, cpu, completed = timed([tool, "default", str(one), "--out", f"{scratch}/cold{run}"])
            cold.append(seconds)
            cold_cpu.append(cpu)
    best = min(big)
    result = {
        "images": count,
        "end_to_end_seconds": [round(value, 3) for value in big],
        "end_to_end_images_per_second_best": round(count / best, 1),
        "end_to_end_images_per_second_median": round(count / statistics.median(big), 1),
        "load_and_decode_seconds": [report["load_seconds"] for report in reports],
        "classify_images_per_second": [report["models"][0]["images_per_second"] for report in reports],
        "accuracy": reports[0]["models"][0]["accuracy"],
        "cold_start_seconds_one_image": [round(value, 3) for value in cold],
        "cold_start_median": round(statistics.median(cold), 3),
        # CPU time (user + system, every thread) of the same commands: what they cost with the cores to
        # themselves; on a busy shared machine the wall figures above include waiting for a core.
        "cpu_seconds_10000_images": [round(value, 3) for value in big_cpu],
        "images_per_cpu_second_best": round(count / min(big_cpu), 1),
        "cold_start_cpu_seconds": [round(value, 3) for value in cold_cpu],
        "cold_start_cpu_median": round(statistics.median(cold_cpu), 3),
        "cpu": machine.cpu_name(), "python": platform.python_version(),
        "load_average_at_end": os.getloadavg(),
        "command": "digit-eval default <10,000 PNG folder> (whole process, start to exit)",
    }
    machine.write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
