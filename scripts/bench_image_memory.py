"""Peak memory of one `digit-infer` worker reading one large image, per image kind (issue 12, item 10).

Each case runs in a fresh process that loads the reader as a batch worker does, reads one file through the
worker's own code path (decode, find, classify) and reports its peak resident memory (ru_maxrss). The
target: at most 400 MB on any image of at most 50 MP (MAX_IMAGE_PIXELS); images whose decoding would need
more than imageio.MAX_DECODE_BYTES are refused before decoding, and the case reports the refusal.

    .venv/bin/python scripts/bench_image_memory.py --out bench/image_memory.json
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

import cv2
import numpy as np
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # scripts/machine.py, also when imported by tests
import machine  # noqa: E402

MEGAPIXELS = 50_000_000
TARGET_MB = 400


def _page(width: int, height: int, channels: int, dtype=np.uint8) -> np.ndarray:
    """A white page with a large dark "7", so the reader has something to find."""
    peak = np.iinfo(dtype).max
    image = np.full((height, width, channels) if channels > 1 else (height, width), peak, dtype)
    thickness = max(3, width // 60)
    x0, y0, size = width // 3, height // 3, min(width, height) // 3
    colour = (0,) * min(channels, 3) + ((peak,) if channels == 4 else ())
    cv2.line(image, (x0, y0), (x0 + size, y0), colour, thickness)
    cv2.line(image, (x0 + size, y0), (x0 + size // 3, y0 + size), colour, thickness)
    return image


def make_cases(folder: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    width, height = 8660, 5773  # 49.99 MP, 3:2
    cases = [
        ("PNG 8-bit gray 50 MP", "gray8.png", _page(width, height, 1), []),
        ("PNG 8-bit RGB 50 MP", "rgb8.png", _page(width, height, 3), []),
        ("PNG 8-bit RGBA 50 MP", "rgba8.png", _page(width, height, 4), []),
        ("PNG 16-bit RGB 50 MP", "rgb16.png", _page(width, height, 3, np.uint16), []),
        ("PNG 16-bit RGBA 50 MP (the issue's 400 KB bomb)", "rgba16.png", _page(width, height, 4, np.uint16), []),
        ("JPEG RGB 50 MP", "rgb.jpg", _page(width, height, 3), [cv2.IMWRITE_JPEG_QUALITY, 80]),
        ("TIFF 8-bit RGB LZW 50 MP", "rgb8.tif", _page(width, height, 3), [cv2.IMWRITE_TIFF_COMPRESSION, 5]),
        ("WebP lossless RGB 50 MP", "rgb.webp", _page(8000, 6250, 3), [cv2.IMWRITE_WEBP_QUALITY, 101]),
        ("BMP 24-bit 50 MP (150 MB file)", "rgb.bmp", _page(width, height, 3), []),
    ]
    made = []
    for label, name, image, params in cases:
        path = folder / name
        if not path.exists():
            if not cv2.imwrite(str(path), image, params):
                print(f"cannot write {name} here; skipped", file=sys.stderr)
                continue
        made.append((label, path))
        del image
    return made


def measure_one(path: str, repeat: int = 1) -> dict:
    """Runs in the child: a worker's reader, one chunk of `repeat` copies of a file, its peak memory."""
    from edge_runtime import batch

    job = batch.BatchJob()
    batch._init_worker(job)
    baseline = _high_water_mb()
    result = batch._read_chunk([path] * repeat)[0]
    peak = _high_water_mb()
    return {"status": result.status, "digits": result.digits, "error": result.error[-160:],
            "baseline_mb": round(baseline, 1), "peak_mb": round(peak, 1)}


def _high_water_mb() -> float:
    """Peak resident memory of this process (VmHWM). Not ru_maxrss: Linux carries that over exec from the
    forked parent, which here made 50 MP test images."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/image_memory.json")
    parser.add_argument("--folder", help="Where the test images are made (kept for reruns); default a temp folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(measure_one(arguments.child, arguments.repeat)))
        return
    folder = pathlib.Path(arguments.folder or tempfile.mkdtemp(prefix="digitkit-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    cases = [(label, path, 1) for label, path in make_cases(folder)]
    # A worker's chunk holds up to 64 files: the decoded images it keeps are bounded too (batch.GROUP_IMAGE_BYTES).
    cases += [(f"64 x {label} in one worker chunk", path, 64) for label, path, _ in cases
              if label.startswith(("PNG 8-bit RGB", "JPEG"))]
    for label, path, repeat in cases:
        output = subprocess.run([sys.executable, __file__, "--child", str(path), "--repeat", str(repeat)],
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])})
        row = {"case": label, "file_mb": round(path.stat().st_size / 1e6, 2), **json.loads(output.stdout)}
        row["within_target"] = row["peak_mb"] <= TARGET_MB
        rows.append(row)
        print(f"{label:60s} file {row['file_mb']:8.2f} MB  peak {row['peak_mb']:6.1f} MB "
              f"(baseline {row['baseline_mb']:.1f})  {row['status']}: {row['error'] or row['digits']}")
    report = {"target_peak_mb": TARGET_MB, "cpu": machine.cpu_name(), "python": platform.python_version(),
              "opencv": cv2.__version__, "cases": rows,
              "all_within_target": all(row["within_target"] for row in rows)}
    pathlib.Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(arguments.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"all within {TARGET_MB} MB: {report['all_within_target']}; written to {arguments.out}")


if __name__ == "__main__":
    main()
