"""Seeded fuzzing of `digit-infer`: mutated images, mutated and oddly shaped models, colliding outputs (issue 12).

Three campaigns, each deterministic for a seed:

* images: PNG, JPEG, TIFF, WebP and BMP files made from the samples, then damaged (bit flips, random bytes,
  truncation, zeroed blocks, header sizes overwritten, spliced files), read as one folder by `digit-infer`
  in a child process. Checked: the process exits 0 or 1 (never dies, never a traceback), every file gets
  exactly one row, every row is strict JSON (no NaN). Counted: how many damaged JPEGs (truncated or with
  zeroed blocks) still come back `ok` (target: at most 5%).
* models: the packaged `.tflite` damaged the same way, plus its tensor shapes rewritten (batch 0, 2, 4, a
  29-pixel side, 0, 9 or 11 classes). Each is loaded and run on a few crops in a child process. Checked: a
  clear refusal (ValueError naming the file) or a read whose probabilities are finite, never a traceback,
  never a dead process, never `ok` on a NaN output. A few are also run through the `digit-infer` command.
* videos: a short clip damaged the same way, read by `digit-infer --camera FILE --headless`. Checked: exit
  0 or 1, no traceback, strict JSON lines.
* outputs: `--output` and `--save-overlays` aimed at an input (relative, absolute, `./`, `..`, hard link,
  symbolic link), a file inside an input folder, the model, a file that is not ours. Checked: exit 2 and
  every file byte-for-byte unchanged.

    .venv/bin/python scripts/fuzz.py --images 2000 --models 500 --outputs 200 --out bench/fuzz.json

tests/test_fuzz.py runs the same campaigns with a few hundred cases (pytest -m fuzz).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import pathlib
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # scripts/machine.py, also when imported by tests
import machine  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
DEFAULT_MODEL = REPO / "edge_runtime" / "models" / "digitkit_int8.tflite"
IMAGE_KINDS = ("png", "jpg", "tif", "webp", "bmp")
_BASE_SIDE = 192  # Small bases keep a campaign of thousands of files fast; the decoders see the same structures.


# --- Mutations ---------------------------------------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random, kind: str = "") -> tuple[bytes, str]:
    """One random damage to `data`; returns the damaged bytes and the damage's name."""
    operations = ["flip", "bytes", "truncate", "zero", "header", "splice", "duplicate", "insert"]
    if kind == "jpg":
        operations += ["truncate", "zero"]  # The corrupt JPEGs: cut off, or with blocks zeroed.
    operation = rng.choice(operations)
    damaged = bytearray(data)
    if operation == "flip":
        for _ in range(rng.randint(1, 16)):
            position = rng.randrange(len(damaged))
            damaged[position] ^= 1 << rng.randrange(8)
    elif operation == "bytes":
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
    elif operation == "truncate":
        damaged = damaged[:rng.randint(1, max(1, len(damaged) - 1))]
        if kind == "jpg" and rng.random() < 0.5:
            damaged += b"\xff\xd9"  # Cut off, but with an end marker, so only the decoder can tell.
    elif operation == "zero":
        start = rng.randrange(len(damaged) // 4, len(damaged))
        damaged[start:start + rng.randint(16, 2048)] = bytes(len(damaged[start:start + rng.randint(16, 2048)]))
    elif operation == "header":
        start = rng.randrange(min(64, len(damaged)))
        damaged[start:start + 4] = struct.pack(">I", rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                                                  rng.randrange(1 << 32)]))
    elif operation == "splice":
        cut = rng.randrange(len(damaged))
        damaged = damaged[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + damaged[cut:]
    elif operation == "duplicate":
        start = rng.randrange(len(damaged))
        damaged = damaged[:start] + damaged[start:start + rng.randint(1, 512)] * 2 + damaged[start:]
    else:  # insert
        cut = rng.randrange(len(damaged))
        damaged = damaged[:cut] + os.urandom(0) + bytes([rng.randrange(256)]) * rng.randint(1, 32) + damaged[cut:]
    return bytes(damaged), operation


def base_images() -> dict[str, bytes]:
    """The samples re-encoded small in every kind digit-infer reads: {"name.kind": bytes}."""
    import cv2

    bases = {}
    for path in sorted(SAMPLES.glob("*.jpg")):
        image = cv2.imread(str(path))
        scale = _BASE_SIDE / max(image.shape[:2])
        image = cv2.resize(image, (max(8, round(image.shape[1] * scale)), max(8, round(image.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        for kind in IMAGE_KINDS:
            params = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, 90], "webp": [cv2.IMWRITE_WEBP_QUALITY, 90]}.get(kind, [])
            ok, encoded = cv2.imencode("." + kind, gray if kind == "tif" and len(bases) % 2 else image, params)
            if ok:
                bases[f"{path.stem}.{kind}"] = encoded.tobytes()
    return bases


def make_image_mutants(folder: pathlib.Path, count: int, seed: int) -> dict[str, dict]:
    """Writes `count` damaged images into `folder`; returns {file name: {"base", "kind", "operation"}}."""
    rng = random.Random(seed)
    bases = base_images()
    names = sorted(bases)
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    clean = folder.parent / "clean"  # The undamaged bases, read too, to tell a damaged file read as another number.
    clean.mkdir(parents=True, exist_ok=True)
    for name in names:
        (clean / name).write_bytes(bases[name])
    for index in range(count):
        base = names[index % len(names)] if index < len(names) else rng.choice(names)
        kind = base.rsplit(".", 1)[1]
        data, operation = mutate(bases[base], rng, kind)
        name = f"m{index:05d}_{operation}.{kind}"
        (folder / name).write_bytes(data)
        made[name] = {"base": base, "kind": kind, "operation": operation}
    return made


# --- Image campaign ----------------------------------------------------------------------------------------------


def _strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not valid JSON")

    return json.loads(line, parse_constant=refuse)


def run_digit_infer(arguments: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from edge_runtime.cli import main; main()", *arguments]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    # errors="replace": a decoder may print bytes of the damaged file itself.
    return subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout,
                          env=environment, cwd=REPO)


def image_campaign(count: int, seed: int, workers: int = 1, keep: pathlib.Path | None = None) -> dict:
    """Damaged images through `digit-infer FOLDER --format jsonl`; the counts and any failure."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="digitkit-fuzz-images-"))
    try:
        made = make_image_mutants(folder / "images", count, seed)
        started = time.perf_counter()
        completed = run_digit_infer([str(folder / "images"), str(folder / "clean"), "--format", "jsonl",
                                     "--workers", str(workers)])
        seconds = time.perf_counter() - started
        failures, rows, clean_rows = [], {}, {}
        if completed.returncode not in (0, 1):
            failures.append(f"digit-infer exited {completed.returncode}: {completed.stderr[-2000:]}")
        if "Traceback" in completed.stderr:
            failures.append(f"a traceback on stderr: {completed.stderr[-2000:]}")
        for line in completed.stdout.splitlines():
            try:
                record = _strict_json(line)
            except ValueError as error:
                failures.append(f"not strict JSON ({error}): {line[:200]}")
                continue
            name = os.path.basename(record["path"])
            if os.path.basename(os.path.dirname(record["path"])) == "clean":
                clean_rows[name] = record
                continue
            if name in rows:
                failures.append(f"{name}: two rows")
            rows[name] = record
        missing = sorted(set(made) - set(rows))
        if missing:
            failures.append(f"{len(missing)} files got no row, e.g. {missing[:5]}")
        statuses = collections.Counter(row["status"] for row in rows.values())
        by_kind = collections.defaultdict(collections.Counter)
        for name, info in made.items():
            if name in rows:
                by_kind[info["kind"]][rows[name]["status"]] += 1
        corrupt_jpegs = [name for name, info in made.items()
                         if info["kind"] == "jpg" and info["operation"] in ("truncate", "zero") and name in rows]
        corrupt_ok = [name for name in corrupt_jpegs if rows[name]["status"] == "ok"]
        # A damaged file read `ok` as another number than its undamaged original: garbage passed as a reading.
        changed_ok = collections.Counter(
            info["kind"] for name, info in made.items()
            if name in rows and rows[name]["status"] == "ok" and info["base"] in clean_rows
            and rows[name]["digits"] != clean_rows[info["base"]]["digits"])
        anonymous = _anonymous_lines(completed.stderr)
        if keep is not None:
            shutil.copytree(folder / "images", keep / "images", dirs_exist_ok=True)
        return {"cases": count, "seed": seed, "exit_code": completed.returncode, "seconds": round(seconds, 1),
                "rows": len(rows), "statuses": dict(statuses), "by_kind": {k: dict(v) for k, v in by_kind.items()},
                "corrupt_jpegs": len(corrupt_jpegs), "corrupt_jpegs_ok": len(corrupt_ok),
                "corrupt_jpegs_ok_share": round(len(corrupt_ok) / max(1, len(corrupt_jpegs)), 4),
                "corrupt_jpegs_ok_examples": corrupt_ok[:10],
                "ok_with_another_number_than_the_original": dict(changed_ok),
                "stderr_lines_without_a_file_name": len(anonymous), "stderr_examples": anonymous[:10],
                "failures": failures}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _anonymous_lines(stderr: str) -> list[str]:
    """Lines on stderr that are neither the summary nor name a file (a decoder talking on its own)."""
    return [line for line in stderr.splitlines()
            if line.strip() and " inputs:" not in line and " input:" not in line and ".jpg" not in line
            and ".png" not in line and ".tif" not in line and ".webp" not in line and ".bmp" not in line]


# --- Model campaign ----------------------------------------------------------------------------------------------


def _int32_vectors(data: bytes, values: tuple[int, ...]) -> list[int]:
    """Offsets of flatbuffer int32 vectors (length prefix, then values) equal to `values`."""
    pattern = struct.pack(f"<{len(values) + 1}i", len(values), *values)
    found, start = [], data.find(pattern)
    while start != -1:
        found.append(start)
        start = data.find(pattern, start + 1)
    return found


def reshape_model(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Rewrites the input or output shape vectors of a 28x28 digit model: an oddly shaped model."""
    inputs = [(offset, (1, 28, 28, 1)) for offset in _int32_vectors(data, (1, 28, 28, 1))]
    inputs += [(offset, (-1, 28, 28, 1)) for offset in _int32_vectors(data, (-1, 28, 28, 1))]
    outputs = [(offset, shape) for shape in ((1, 10), (-1, 10), (1, 11), (-1, 11))
               for offset in _int32_vectors(data, shape)]
    choices = []
    for batch in (0, 2, 4, -1):
        choices.append((f"input batch {batch}", inputs, 0, batch))
        choices.append((f"output batch {batch}", outputs, 0, batch))
    choices += [("input side 29", inputs, 1, 29), ("input side 0", inputs, 2, 0),
                ("classes 9", outputs, 1, 9), ("classes 11", outputs, 1, 11), ("classes 0", outputs, 1, 0)]
    name, vectors, index, value = rng.choice(choices)
    damaged = bytearray(data)
    for offset, shape in vectors:
        struct.pack_into("<i", damaged, offset + 4 + 4 * index, value)
    return bytes(damaged), name


def make_model_mutants(folder: pathlib.Path, count: int, seed: int, base: pathlib.Path = DEFAULT_MODEL) -> dict:
    rng = random.Random(seed)
    data = base.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for index in range(count):
        if rng.random() < 0.3:
            damaged, operation = reshape_model(data, rng)
        else:
            damaged, operation = mutate(data, rng)
        name = f"model{index:04d}.tflite"
        (folder / name).write_bytes(damaged)
        made[name] = operation
    return made


_MODEL_CHILD = r"""
import json, sys, traceback
import numpy as np
from edge_runtime import interpreter, reader as reader_module
from edge_runtime import preprocess
crops = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
for line in sys.stdin:
    path = line.strip()
    outcome = {"path": path}
    try:
        classifier = interpreter.DigitClassifier(path)
        probabilities = classifier.classify(crops)
        outcome["outcome"] = "read"
        outcome["finite"] = bool(np.isfinite(probabilities).all())
        outcome["problem"] = interpreter.output_problem(probabilities)
        reader = reader_module.DigitReader.__new__(reader_module.DigitReader)
        reader.classifier, reader.options = classifier, reader_module.ReaderOptions()
        reader._preprocess_options = None
        crop = preprocess.DigitCrop(box=(0, 0, 28, 28), image=crops[0], line=0)
        outcome["status"] = reader.classify([[crop]], [path], [(28, 28)])[0].status
    except (ValueError, FileNotFoundError) as error:
        outcome["outcome"] = "refused"
        outcome["message"] = str(error)[:300]
        outcome["names_file"] = path in str(error)
    except BaseException as error:
        outcome["outcome"] = "traceback"
        outcome["message"] = traceback.format_exc()[-1500:]
    print(json.dumps(outcome), flush=True)
"""


def model_campaign(count: int, seed: int, cli_runs: int = 5) -> dict:
    """Damaged and reshaped models loaded and run in a child process (restarted if one kills it)."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="digitkit-fuzz-models-"))
    try:
        made = make_model_mutants(folder, count, seed)
        pending = sorted(made)
        outcomes, deaths = {}, []
        environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
        started = time.perf_counter()
        while pending:
            child = subprocess.run([sys.executable, "-c", _MODEL_CHILD], input="\n".join(
                str(folder / name) for name in pending) + "\n", capture_output=True, text=True, env=environment,
                timeout=600, cwd=REPO)
            for line in child.stdout.splitlines():
                record = json.loads(line)
                outcomes[os.path.basename(record["path"])] = record
            done = [name for name in pending if name in outcomes]
            pending = [name for name in pending if name not in outcomes]
            if child.returncode != 0 and pending:
                deaths.append({"model": pending[0], "operation": made[pending[0]], "exit": child.returncode})
                outcomes[pending[0]] = {"outcome": "process died", "exit": child.returncode}
                pending = pending[1:]
            elif not done:
                break
        seconds = time.perf_counter() - started
        failures = [f"{name} ({made[name]}): {record['outcome']}: {record.get('message', '')[-600:]}"
                    for name, record in outcomes.items() if record["outcome"] in ("traceback", "process died")]
        failures += [f"{name} ({made[name]}): refused without naming the file: {record['message']}"
                     for name, record in outcomes.items()
                     if record["outcome"] == "refused" and not record.get("names_file")]
        failures += [f"{name} ({made[name]}): status ok on a non-finite or flat output"
                     for name, record in outcomes.items()
                     if record["outcome"] == "read" and record.get("problem") and record.get("status") == "ok"]
        cli = _model_cli_runs(folder, made, outcomes, cli_runs, seed)
        failures += cli["failures"]
        summary = collections.Counter(record["outcome"] for record in outcomes.values())
        non_finite = sum(1 for record in outcomes.values() if record["outcome"] == "read" and not record["finite"])
        return {"cases": count, "seed": seed, "seconds": round(seconds, 1), "outcomes": dict(summary),
                "reads_with_non_finite_output": non_finite, "process_deaths": deaths,
                "operations": dict(collections.Counter(made.values())), "cli_runs": cli["runs"],
                "failures": failures}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _model_cli_runs(folder: pathlib.Path, made: dict, outcomes: dict, runs: int, seed: int) -> dict:
    """A few models, some refused and some read, through `digit-infer --model` on one sample."""
    rng = random.Random(seed)
    names = sorted(made)
    chosen = rng.sample(names, min(runs, len(names)))
    failures, results = [], []
    sample = sorted(SAMPLES.glob("*.jpg"))[0]
    for name in chosen:
        completed = run_digit_infer([str(sample), "--model", str(folder / name), "--format", "jsonl"], timeout=120)
        results.append({"model": name, "exit": completed.returncode})
        if completed.returncode not in (0, 1, 2) or "Traceback" in completed.stderr:
            failures.append(f"digit-infer --model {name} ({made[name]}): exit {completed.returncode}: "
                            f"{completed.stderr[-800:]}")
        for line in completed.stdout.splitlines():
            try:
                _strict_json(line)
            except ValueError as error:
                failures.append(f"digit-infer --model {name}: not strict JSON ({error})")
    return {"runs": results, "failures": failures}


# --- Video campaign ----------------------------------------------------------------------------------------------


def video_campaign(count: int, seed: int) -> dict:
    """Damaged videos through `digit-infer --camera FILE --headless`: exit 0 or 1, never a traceback."""
    import cv2
    import numpy as np

    rng = random.Random(seed)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="digitkit-fuzz-videos-"))
    try:
        clip = folder / "clip.avi"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
        for index in range(12):
            frame = np.full((120, 160, 3), 255, np.uint8)
            cv2.putText(frame, str(index % 10), (50, 95), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 0), 8)
            writer.write(frame)
        writer.release()
        data = clip.read_bytes()
        failures, exits = [], collections.Counter()
        for index in range(count):
            damaged, operation = mutate(data, rng)
            video = folder / f"v{index:04d}_{operation}.avi"
            video.write_bytes(damaged)
            completed = run_digit_infer(["--camera", str(video), "--headless", "--max-frames", "30"], timeout=120)
            exits[completed.returncode] += 1
            if completed.returncode not in (0, 1) or "Traceback" in completed.stderr:
                failures.append(f"{video.name}: exit {completed.returncode}: {completed.stderr[-600:]}")
            for line in completed.stdout.splitlines():
                try:
                    _strict_json(line)
                except ValueError as error:
                    failures.append(f"{video.name}: not strict JSON ({error})")
        return {"cases": count, "seed": seed, "exit_codes": {str(k): v for k, v in exits.items()},
                "failures": failures}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- Output campaign ---------------------------------------------------------------------------------------------


def _digest(folder: pathlib.Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink()}


def output_campaign(count: int, seed: int) -> dict:
    """`--output`/`--save-overlays` aimed at inputs, the model, or files that are not ours: always exit 2."""
    from click.testing import CliRunner

    from edge_runtime import cli

    rng = random.Random(seed)
    root = pathlib.Path(tempfile.mkdtemp(prefix="digitkit-fuzz-outputs-"))
    failures, kinds = [], collections.Counter()
    try:
        scans = root / "my scans"
        (scans / "nested").mkdir(parents=True)
        photos = sorted(SAMPLES.glob("*.jpg"))[:3]
        for photo in photos:
            shutil.copy(photo, scans / photo.name)
        shutil.copy(photos[0], scans / "nested" / "deep.png")
        model = root / "model copy.tflite"
        shutil.copy(DEFAULT_MODEL, model)
        (root / "labels.csv").write_text("path,label\na.jpg,3\n")
        (root / "notes.txt").write_text("my notes\n")
        os.link(scans / photos[1].name, root / "hard link.dat")
        os.symlink(scans / photos[2].name, root / "link.csv")
        before = _digest(root)
        runner = CliRunner()
        for case in range(count):
            target_kind = rng.choice(["input", "input ./", "input absolute", "input ..", "hard link", "symlink",
                                      "in folder", "model", "labels", "notes", "overlays on input"])
            photo = scans / rng.choice(photos).name
            target = {
                "input": str(photo.relative_to(root)),
                "input ./": "./" + str(photo.relative_to(root)),
                "input absolute": str(photo),
                "input ..": str(pathlib.Path("my scans", "nested", "..", photo.name)),
                "hard link": "hard link.dat",
                "symlink": "link.csv",
                "in folder": str(pathlib.Path("my scans", f"results{rng.choice(['.jpg', '.png', '.tif'])}")),
                "model": "model copy.tflite",
                "labels": "labels.csv",
                "notes": "notes.txt",
                "overlays on input": str(photo.relative_to(root)),
            }[target_kind]
            inputs = ["my scans"] if rng.random() < 0.5 else [str(p.relative_to(root)) for p in scans.glob("*.jpg")]
            option = "--save-overlays" if target_kind == "overlays on input" else "--output"
            arguments = [*inputs, option, target, "--model", "model copy.tflite",
                         "--format", rng.choice(["table", "csv", "jsonl"])]
            cwd = os.getcwd()
            os.chdir(root)
            try:
                result = runner.invoke(cli.main, arguments)
            finally:
                os.chdir(cwd)
            kinds[target_kind] += 1
            if result.exit_code != 2:
                failures.append(f"{target_kind}: {arguments} exited {result.exit_code}: {result.output[-300:]}")
            after = _digest(root)
            if after != before:
                changed = sorted(set(before.items()) ^ set(after.items()))[:3]
                failures.append(f"{target_kind}: {arguments} changed files: {changed}")
                before = after
        return {"cases": count, "seed": seed, "targets": dict(kinds), "failures": failures}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--outputs", type=int, default=200)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="digit-infer --workers for the image campaign")
    parser.add_argument("--out", default="bench/fuzz.json")
    arguments = parser.parse_args()
    report = {"seed": arguments.seed, "cpu": machine.cpu_name()}
    for name, run in (("images", lambda: image_campaign(arguments.images, arguments.seed, arguments.workers)),
                      ("models", lambda: model_campaign(arguments.models, arguments.seed, cli_runs=20)),
                      ("outputs", lambda: output_campaign(arguments.outputs, arguments.seed)),
                      ("videos", lambda: video_campaign(arguments.videos, arguments.seed))):
        started = time.perf_counter()
        report[name] = run()
        report[name]["campaign_seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {json.dumps({k: v for k, v in report[name].items() if k != 'failures'})[:600]}; "
              f"failures: {len(report[name]['failures'])}", flush=True)
        for failure in report[name]["failures"][:10]:
            print("  FAIL", failure[:400])
    report["total_failures"] = sum(len(report[name]["failures"]) for name in ("images", "models", "outputs", "videos"))
    pathlib.Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(arguments.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"total failures: {report['total_failures']}; written to {arguments.out}")
    raise SystemExit(1 if report["total_failures"] else 0)


if __name__ == "__main__":
    main()
