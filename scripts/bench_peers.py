#!/usr/bin/env python
"""digitkit against peer engines on the same network and the same MNIST test images, side by side in one run.

Engines, each measured in its own processes (one for cold start, one per thread count):
  digitkit-int8, digitkit-dynamic   `DigitClassifier.classify` on the same files as litert-int8 and
                litert-dynamic (the difference is digitkit's own code); the ratios use the one of the two that
                `--model auto` would pick (the lower batch-1 latency);
  litert-int8, litert-dynamic, litert-float16, litert-float32
                LiteRT raw calls (set_tensor, invoke, get_tensor; int8 quantizes and dequantizes in numpy);
  onnxruntime-float32, onnxruntime-int8   ONNX Runtime on the tf2onnx conversion; int8 is static QDQ,
                per-channel, calibrated on the same training images as the LiteRT int8 export;
  opencv-dnn    OpenCV DNN on the float32 ONNX file;
  keras         the Keras model itself (TensorFlow), the reference.
Figures: batch-1 latency (p50, p90, min) on one thread, throughput at batch 64 and 256 on 1 and 2 threads,
MNIST test accuracy (all 10,000), cold start (wall seconds and peak RSS of a process that imports the
engine, loads the model and classifies one image) and the installed size of what each engine needs.

The peers come from the `[bench]` extra (pip install '.[train,bench]'), never from the edge install.

Usage:
    MNIST_DIR=../shared/mnist .venv/bin/python scripts/bench_peers.py --keras runs/train/default-model-seed0/model.keras
        [--model edge_runtime/models/digitkit_int8.tflite] [--engines ...] [--json bench/peers.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ENGINES = ("digitkit-int8", "digitkit-dynamic", "litert-int8", "litert-dynamic", "litert-float16", "litert-float32", "onnxruntime-float32",
           "onnxruntime-int8", "opencv-dnn", "keras")
# What each engine needs installed, for the installed size (requirements followed recursively).
DISTRIBUTIONS = {"digitkit": ["numpy", "ai-edge-litert", "opencv-python-headless", "click"],
                 "litert": ["numpy", "ai-edge-litert"], "onnxruntime": ["numpy", "onnxruntime"],
                 "opencv-dnn": ["numpy", "opencv-python-headless"], "keras": ["tensorflow-cpu", "keras"]}
CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
             "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")
THREADS = (1, 2)
BATCHES = (64, 256)


# ------------------------------------------------------------------------------------------ engines (worker side)
class Engine:
    """One engine's minimal way to turn float (N, 28, 28, 1) images in [0, 1] into probabilities."""

    def __init__(self, name: str, files: dict, threads: int):
        self.name = name
        kind = name.split("-")[0]
        if kind == "digitkit":
            from edge_runtime.interpreter import DigitClassifier

            # The same file as the LiteRT row of that mode: the difference is digitkit's own code.
            path = files.get(name) or files["litert-" + name.split("-")[1]]
            self.model_file = str(path)
            self.classifier = DigitClassifier(path, num_threads=threads)
            self.run = lambda images: self.classifier.classify(images[..., 0])
        elif kind == "litert":
            from ai_edge_litert.interpreter import Interpreter

            self.model_file = files[name]
            self.interpreter = Interpreter(model_path=self.model_file, num_threads=threads)
            self.interpreter.allocate_tensors()
            self.batch = 1
            self.details = (self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0])
            self.run = self._litert
        elif kind == "onnxruntime":
            import onnxruntime

            self.model_file = files["onnx-" + name.split("-")[1]]
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = onnxruntime.InferenceSession(self.model_file, options, providers=["CPUExecutionProvider"])
            input_name = session.get_inputs()[0].name
            self.run = lambda images: session.run(None, {input_name: images.transpose(0, 3, 1, 2)})[0]
        elif kind == "opencv":
            import cv2

            cv2.setNumThreads(threads)
            self.model_file = files["onnx-float32"]
            net = cv2.dnn.readNetFromONNX(self.model_file)

            def run(images):
                net.setInput(images.transpose(0, 3, 1, 2).copy())
                return net.forward()
            self.run = run
        elif kind == "keras":
            import tensorflow as tf

            try:  # Settable only before TensorFlow's first op: true in the benchmark's own processes.
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # In a process that already ran TensorFlow (a test): its thread pools stay.
            import keras

            self.model_file = files["keras"]
            model = keras.models.load_model(self.model_file)
            call = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
            self.run = lambda images: call(tf.constant(images)).numpy()
        else:
            raise ValueError(f"engine {name!r}: choose one of {', '.join(ENGINES)}")

    def _litert(self, images):
        import numpy as np

        interpreter = self.interpreter
        source, target = self.details  # Read once: get_*_details() builds dicts, 10 µs a call.
        if len(images) != self.batch:
            interpreter.resize_tensor_input(source["index"], [len(images), 28, 28, 1])
            interpreter.allocate_tensors()
            self.batch = len(images)
        scale, zero_point = source["quantization"]
        if scale:
            images = np.clip(np.rint(images / scale + zero_point), -128, 127).astype(source["dtype"])
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        raw = interpreter.get_tensor(target["index"])
        scale, zero_point = target["quantization"]
        return (raw.astype(np.float32) - zero_point) * scale if scale else raw


def worker(arguments) -> None:
    """Measures one engine at one thread count; prints one JSON line."""
    import numpy as np

    files = json.loads(arguments.files)
    data = np.load(files["images"])
    images, labels = data["images"], data["labels"]
    engine = Engine(arguments.worker, files, arguments.threads)
    figures = {"engine": arguments.worker, "threads": arguments.threads, "model_file": engine.model_file}
    if arguments.threads == 1:
        for index in range(300):
            engine.run(images[index % 500:index % 500 + 1])
        samples = []
        cpu_started = time.process_time()
        for index in range(arguments.calls):
            image = images[index % 1000:index % 1000 + 1]
            started = time.perf_counter_ns()
            engine.run(image)
            samples.append(time.perf_counter_ns() - started)
        # CPU time per call as well: on a shared machine, wall time also counts waiting for a core.
        figures["latency_cpu_us_mean"] = round((time.process_time() - cpu_started) / arguments.calls * 1e6, 2)
        samples.sort()
        figures["latency_us"] = {"p50": samples[len(samples) // 2] / 1e3, "p90": samples[len(samples) * 9 // 10] / 1e3,
                                 "min": samples[0] / 1e3}
        predictions = np.concatenate([np.asarray(engine.run(images[start:start + 250])).argmax(1)
                                      for start in range(0, len(images), 250)])
        figures["accuracy"] = float((predictions == labels).mean())
    figures["images_per_s"] = {}
    for batch in BATCHES:
        block = images[:batch]
        for _ in range(3):
            engine.run(block)
        best = best_cpu = 0.0
        for _ in range(arguments.repeats):
            calls, started, cpu_started = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - started < arguments.seconds:
                engine.run(block)
                calls += 1
            best = max(best, calls * batch / (time.perf_counter() - started))
            best_cpu = max(best_cpu, calls * batch / max(time.process_time() - cpu_started, 1e-9))
        figures["images_per_s"][str(batch)] = round(best)
        if arguments.threads == 1:  # Images per CPU-second: what one core does, whatever else runs.
            figures.setdefault("images_per_cpu_s", {})[str(batch)] = round(best_cpu)
    print(json.dumps(figures), flush=True)


def cold_start(arguments) -> None:
    """Imports the engine, loads the model, classifies one image: the parent times this whole process."""
    import numpy as np

    files = json.loads(arguments.files)
    engine = Engine(arguments.cold, files, 1)
    engine.run(np.zeros((1, 28, 28, 1), np.float32))
    # The high-water mark of this process image: a forked child's rusage would also count the parent's
    # pages from before exec.
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mb": peak / 1024}), flush=True)


# ---------------------------------------------------------------------------------------- preparation (parent)
def prepare(keras_path: pathlib.Path, digitkit_model: str | None, scratch: pathlib.Path, calibration: int) -> dict:
    """Exports the Keras model for every engine into `scratch`; returns engine file paths."""
    import numpy as np
    import tensorflow as tf

    import keras
    from exporter import convert, metadata as export_metadata
    from trainer import data

    scratch.mkdir(parents=True, exist_ok=True)
    mnist = data.load_mnist(os.environ.get("MNIST_DIR"))
    images = mnist.test_images.astype(np.float32)[..., None] / 255.0
    # The first training images, the same for LiteRT int8 and ONNX Runtime int8 calibration.
    calibration_images = mnist.train_images[:calibration].astype(np.float32)[..., None] / 255.0
    files = {"images": str(scratch / "mnist_test.npz"), "keras": str(keras_path)}
    np.savez(files["images"], images=images, labels=mnist.test_labels.astype(np.int64))
    if digitkit_model:
        files["digitkit-int8"] = digitkit_model
    model = keras.models.load_model(keras_path)
    description = _description(int(model.outputs[0].shape[-1]))
    for mode, name in (("int8", "litert-int8"), ("dynamic", "litert-dynamic"), ("float16", "litert-float16"),
                       ("none", "litert-float32")):
        path = scratch / f"{name}.tflite"
        converted = convert.convert(model, mode, calibration_images if mode == "int8" else None)
        # digitkit reads labels from the file (10 digits, or 11 with "not a digit"); LiteRT ignores metadata.
        path.write_bytes(export_metadata.embed_description(converted, description))
        files[name] = str(path)
    saved_model = scratch / "saved_model"
    signature = [tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")]
    model.export(str(saved_model), format="tf_saved_model", input_signature=signature, verbose=False)
    onnx_float = scratch / "model_float32.onnx"
    # tf2onnx from the SavedModel (Keras 3's own ONNX export goes through tf2onnx too); NCHW input for
    # OpenCV DNN, the same layout ONNX Runtime then gets.
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--output",
                    str(onnx_float), "--opset", "17", "--inputs-as-nchw", "image"], check=True,
                   capture_output=True)
    files["onnx-float32"] = str(onnx_float)
    files["onnx-int8"] = str(_quantize_onnx(onnx_float, calibration_images, scratch))
    return files


def _description(outputs: int):
    from edge_runtime import constants, metadata

    labels = constants.LABELS + tuple(f"class {index}" for index in range(constants.NUM_CLASSES, outputs))
    return metadata.ModelDescription(labels=labels[:outputs], output="softmax", embedded=True)


def _quantize_onnx(onnx_float: pathlib.Path, calibration_images, scratch: pathlib.Path) -> pathlib.Path:
    import onnxruntime
    from onnxruntime import quantization

    prepared, output = scratch / "model_prepared.onnx", scratch / "model_int8_qdq.onnx"
    quantization.shape_inference.quant_pre_process(str(onnx_float), str(prepared), skip_symbolic_shape=True)
    input_name = onnxruntime.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: image[None].transpose(0, 3, 1, 2)} for image in calibration_images])

        def get_next(self):
            return next(self.items, None)

    quantization.quantize_static(str(prepared), str(output), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True, activation_type=quantization.QuantType.QInt8,
                                 weight_type=quantization.QuantType.QInt8)
    return output


def installed_mb(names: list[str]) -> float:
    """Size on disk of these distributions and everything they require (extras not followed)."""
    seen, pending, total = set(), list(names), 0
    while pending:
        name = re.split(r"[ ;<>=!~\[(]", pending.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in distribution.files or ():
            try:
                total += os.path.getsize(distribution.locate_file(file))
            except OSError:
                pass
        pending += [requirement for requirement in distribution.requires or () if "extra ==" not in requirement]
    return round(total / 1e6, 1)


def cpu_description() -> dict:
    model, flags = platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "machine": platform.machine(), "cores": os.cpu_count(),
            "flags": {flag: flag in flags for flag in CPU_FLAGS}}


def wait_for_quiet(limit: float, timeout: float) -> dict:
    """Waits until the 1-minute load average is under `limit`, for at most `timeout` seconds."""
    started = time.time()
    seen = os.getloadavg()[0]
    while seen >= limit and time.time() - started < timeout:
        time.sleep(5)
        seen = os.getloadavg()[0]
    return {"load_1min": round(seen, 2), "waited_s": round(time.time() - started, 1), "quiet": seen < limit}


def _child(arguments: list[str]) -> tuple[str, float]:
    """Runs this script as a child; returns its stdout and wall seconds."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments[:2])} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout, seconds


def _cold(name: str, encoded: str) -> tuple[float, float]:
    """Wall seconds of a whole cold-start process, and its own peak RSS (MB)."""
    output, seconds = _child(["--cold", name, "--files", encoded])
    return seconds, json.loads(output.strip().splitlines()[-1])["peak_rss_mb"]


def measure(files: dict, engines: list[str], arguments) -> list[dict]:
    rows = []
    encoded = json.dumps(files)
    for name in engines:
        row = {"engine": name}
        load = wait_for_quiet(arguments.quiet_load, arguments.quiet_timeout)
        row["load_before"] = load
        colds = [_cold(name, encoded) for _ in range(arguments.cold_runs)]
        row["cold_start_s"] = round(min(seconds for seconds, _ in colds), 3)
        row["cold_start_mb"] = round(min(mb for _, mb in colds), 1)
        for threads in THREADS:
            output, _ = _child(["--worker", name, "--threads", str(threads), "--files", encoded,
                                   "--calls", str(arguments.calls), "--seconds", str(arguments.seconds),
                                   "--repeats", str(arguments.repeats)])
            figures = json.loads(output.strip().splitlines()[-1])
            row["model_file"] = os.path.basename(figures["model_file"])
            row.update({key: figures[key] for key in ("latency_us", "latency_cpu_us_mean", "accuracy") if key in figures})
            for batch, rate in figures["images_per_s"].items():
                row[f"batch{batch}_threads{threads}_images_per_s"] = rate
            for batch, rate in figures.get("images_per_cpu_s", {}).items():
                row[f"batch{batch}_images_per_cpu_s"] = rate
        kind = name.split("-")[0] if not name.startswith("opencv") else "opencv-dnn"
        row["installed_mb"] = installed_mb(DISTRIBUTIONS[kind])
        row["load_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def ratios(rows: list[dict]) -> dict:
    """digitkit : best peer, per figure (latency: lower is better, so a ratio under 1 means digitkit is faster)."""
    # digitkit's row is the variant `--model auto` would pick: the lower batch-1 latency.
    ours = min((row for row in rows if row["engine"].startswith("digitkit") and "latency_us" in row),
               key=lambda row: row["latency_us"]["p50"], default=None)
    peers = [row for row in rows if not row["engine"].startswith(("digitkit", "keras")) and "latency_us" in row]
    if ours is None or not peers:
        return {}
    result = {"digitkit_row": ours["engine"]}
    best = min(peers, key=lambda row: row["latency_us"]["p50"])
    result["latency_p50"] = {"ratio": round(ours["latency_us"]["p50"] / best["latency_us"]["p50"], 2),
                             "best_peer": best["engine"]}
    onnx = next((row for row in rows if row["engine"] == "onnxruntime-float32"), None)
    if onnx:
        result["latency_p50_vs_onnxruntime_float32"] = round(ours["latency_us"]["p50"] / onnx["latency_us"]["p50"], 2)
    keys = [f"batch{batch}_threads{threads}_images_per_s" for threads in THREADS for batch in BATCHES]
    keys += [f"batch{batch}_images_per_cpu_s" for batch in BATCHES]
    if all("latency_cpu_us_mean" in row for row in [ours, *peers]):
        best = min(peers, key=lambda row: row["latency_cpu_us_mean"])
        result["latency_cpu"] = {"ratio": round(ours["latency_cpu_us_mean"] / best["latency_cpu_us_mean"], 2),
                                 "best_peer": best["engine"]}
    for key in keys:
        if key not in ours or not all(key in row for row in peers):
            continue
        best = max(peers, key=lambda row: row[key])
        result[key] = {"ratio": round(ours[key] / best[key], 2), "best_peer": best["engine"]}
    return result


def markdown(report: dict) -> str:
    lines = ["| engine | model file | batch-1 p50 / p90 / min, 1 thread | batch-1 CPU per call | batch 64, 1 / 2 threads "
             "| batch 256, 1 / 2 threads | batch 64 / 256 per CPU-second | MNIST | cold start | installed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        latency = row.get("latency_us", {})
        lines.append(
            f"| {row['engine']} | {row.get('model_file', '')} | {latency.get('p50', 0):.1f} / {latency.get('p90', 0):.1f} / "
            f"{latency.get('min', 0):.1f} µs | {row.get('latency_cpu_us_mean', 0):.1f} µs | "
            f"{row['batch64_threads1_images_per_s'] / 1e3:.1f}k / "
            f"{row['batch64_threads2_images_per_s'] / 1e3:.1f}k | {row['batch256_threads1_images_per_s'] / 1e3:.1f}k / "
            f"{row['batch256_threads2_images_per_s'] / 1e3:.1f}k | {row.get('batch64_images_per_cpu_s', 0) / 1e3:.1f}k / "
            f"{row.get('batch256_images_per_cpu_s', 0) / 1e3:.1f}k | {row.get('accuracy', 0):.2%} | "
            f"{row['cold_start_s']:.2f} s / {row['cold_start_mb']:.0f} MB | {row['installed_mb']:.0f} MB |")
    ratio = report.get("ratios", {})
    if ratio:
        parts = [f"{ratio['digitkit_row']}: batch-1 p50 {ratio['latency_p50']['ratio']}× ({ratio['latency_p50']['best_peer']})"]
        if "latency_p50_vs_onnxruntime_float32" in ratio:
            parts.append(f"vs ONNX Runtime float32 {ratio['latency_p50_vs_onnxruntime_float32']}×")
        if "latency_cpu" in ratio:
            parts.append(f"batch-1 CPU per call {ratio['latency_cpu']['ratio']}× ({ratio['latency_cpu']['best_peer']})")
        for key, value in ratio.items():
            if key.startswith("batch") and "_cpu_" in key:
                parts.append(f"batch {re.findall(r'[0-9]+', key)[0]} per CPU-second {value['ratio']}× ({value['best_peer']})")
            elif key.startswith("batch"):
                batch, threads = re.findall(r"[0-9]+", key)
                parts.append(f"batch {batch} {threads}T {value['ratio']}× ({value['best_peer']})")
        lines.append("")
        lines.append("digitkit : best peer: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras", help="the model.keras every engine's file is made from")
    parser.add_argument("--model", help="digitkit-int8's .tflite (default: the LiteRT int8 export made here)")
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--json", default=str(REPO / "bench" / "peers.json"))
    parser.add_argument("--calls", type=int, default=3000, help="batch-1 calls timed one by one")
    parser.add_argument("--seconds", type=float, default=0.4, help="per throughput repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=500)
    parser.add_argument("--quiet-load", type=float, default=1.0, help="wait while the 1-minute load is above this")
    parser.add_argument("--quiet-timeout", type=float, default=60.0)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cold", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        return worker(arguments)
    if arguments.cold:
        return cold_start(arguments)
    if not arguments.keras:
        parser.error("--keras MODEL.keras is required: the network every engine runs")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edge_runtime import files as files_module

    with tempfile.TemporaryDirectory(prefix="digitkit-peers-") as scratch:
        started = time.perf_counter()
        files = prepare(pathlib.Path(arguments.keras), arguments.model, pathlib.Path(scratch), arguments.calibration)
        print(f"exported every engine's file in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rows = measure(files, arguments.engines, arguments)
    versions = {}
    for name in ("ai-edge-litert", "onnxruntime", "opencv-python-headless", "tensorflow-cpu", "keras", "numpy",
                 "tf2onnx"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    report = {"cpu": cpu_description(), "python": platform.python_version(), "versions": versions,
              "measured": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "command": " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
              "keras_model": arguments.keras, "rows": rows}
    report["ratios"] = ratios(rows)
    report["markdown"] = markdown(report)
    files_module.write_json(arguments.json, report)
    print(report["markdown"])


if __name__ == "__main__":
    main()
