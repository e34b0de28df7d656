"""Benchmarks `digit-draw`: the time from the end of a stroke to updated probabilities on screen.

Strokes are synthesised as mouse events on the real window class. The measured span runs from the
button-release event to the end of the figure's redraw (crops, bars, text), which under Agg
(default here) happens inside the event; the read alone (`DigitReader.read` of the pad) is given too.
With a display, `MPLBACKEND=TkAgg xvfb-run ...` measures the same span with Tk's own canvas update.

Usage: .venv/bin/python scripts/bench_draw.py [--strokes 60] [--model FILE] [--json bench/draw.json]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # scripts/machine.py, also when imported by tests
import machine  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=60)
    parser.add_argument("--model")
    parser.add_argument("--json", default=str(ROOT / "bench" / "draw.json"))
    args = parser.parse_args(argv)
    import matplotlib

    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    from matplotlib.backend_bases import MouseEvent

    from edge_runtime import draw
    from edge_runtime import reader as reader_module

    scratch = tempfile.mkdtemp(prefix="digit-draw-bench-")
    pad = draw.Pad(reader_module.DigitReader(args.model), draw.DrawOptions(out=scratch))
    view = draw.PadWindow(pad, pyplot)
    canvas = view.figure.canvas
    canvas.draw()
    pyplot.show(block=False)

    def send(name, x, y):
        display_x, display_y = view.pad_axes.transData.transform((x, y))
        canvas.callbacks.process(name, MouseEvent(name, canvas, display_x, display_y, button=1))

    shapes = [[(80, 70), (200, 70), (140, 220)], [(140, 50), (140, 230)], [(90, 90), (140, 50), (190, 90), (90, 230), (200, 230)]]
    total, reads, cpu = [], [], []
    for index in range(args.strokes):
        if index % 6 == 0:
            pad.clear()
        points = shapes[index % len(shapes)]
        offset = (index % 3 - 1) * 20
        send("button_press_event", points[0][0] + offset, points[0][1])
        for x, y in points[1:]:
            for step in range(1, 9):  # a mouse reports many small moves
                send("motion_notify_event", points[0][0] + offset + (x - points[0][0]) * step / 8,
                     points[0][1] + (y - points[0][1]) * step / 8)
        started, cpu_started = time.perf_counter(), time.process_time()
        send("button_release_event", points[-1][0] + offset, points[-1][1])
        canvas.flush_events()
        total.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        read_started = time.perf_counter()
        pad.reader.read(pad.image)
        reads.append(time.perf_counter() - read_started)
    result = {
        "backend": matplotlib.get_backend(), "strokes": args.strokes,
        "stroke_to_probabilities_ms_median": round(statistics.median(total) * 1000, 2),
        "stroke_to_probabilities_ms_p90": round(sorted(total)[int(0.9 * len(total))] * 1000, 2),
        # CPU time of this process over the same span: what the span costs with a core to itself
        # (the wall figures above include waiting for a core on a busy machine).
        "stroke_to_probabilities_cpu_ms_median": round(statistics.median(cpu) * 1000, 2),
        "read_only_ms_median": round(statistics.median(reads) * 1000, 2),
        "cpu": machine.cpu_name(), "python": platform.python_version(), "matplotlib": matplotlib.__version__,
        "load_average_at_end": os.getloadavg(),
    }
    machine.write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
