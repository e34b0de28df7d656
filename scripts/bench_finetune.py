"""Benchmarks `digit-train --finetune`: 500 user crops (seven-segment digits, a style MNIST lacks) with MNIST replay.

Times the whole command (start to exit: TensorFlow import, loading MNIST and the crops, the before and
after measurements, training) and the training alone, and records the accuracy moves.

Usage: MNIST_DIR=../shared/mnist .venv/bin/python scripts/bench_finetune.py --from RUN [--json bench/finetune.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # scripts/machine.py, also when imported by tests
import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="run folder to fine-tune")
    parser.add_argument("--crops", type=int, default=500)
    parser.add_argument("--json", default=str(ROOT / "bench" / "finetune.json"))
    args = parser.parse_args(argv)
    from test_finetune import write_set  # the seven-segment generator the tests use

    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as scratch:
        user = pathlib.Path(scratch) / "user crops"
        write_set(user, per_digit=args.crops // 10, seed=11)
        command = [str(pathlib.Path(sys.executable).parent / "digit-train"), "--finetune", str(user),
                   "--from", args.source, "--out", scratch, "--name", "bench"]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if completed.returncode != 0:
            raise SystemExit(completed.stdout + completed.stderr)
        result = json.loads((pathlib.Path(scratch) / "bench" / "finetune.json").read_text())
    summary = {
        "user_crops": args.crops, "command_seconds": round(wall, 1), "train_seconds": result["train_seconds"],
        "cpu_seconds_user_plus_system": round(usage.ru_utime + usage.ru_stime, 1),
        "images_per_epoch": result["images_per_epoch"], "epochs_run": result["epochs_run"],
        "best_epoch": result["best_epoch"], "before": result["before"], "after": result["after"],
        "mnist_test_change_points": result["mnist_test_change_points"],
        "source": args.source, "cpu": machine.cpu_name(), "python": platform.python_version(),
        "load_average_at_end": os.getloadavg(),
    }
    machine.write_result(args.json, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
