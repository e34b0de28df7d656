"""`digit-draw`: a Matplotlib drawing pad that reads what you draw, live, and saves your digits into a labelled folder.

Every stroke is re-read by `DigitReader.read` on the pad's pixels, the code path of `digit-infer`,
so the crops and probabilities shown are what the model gets from a photo of the same ink. Keys:
c clears, u undoes the last stroke, s saves the drawing with the model's guess as its label (a
labels.csv row to correct), 0-9 save it labelled with that digit (`<out>/<digit>/`).
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import time

import click
import cv2
import numpy as np

from edge_runtime import collect, constants, labelled
from edge_runtime import reader as reader_module

DRAWINGS_FOLDER = "drawings"
"""Where `s` saves drawings inside the labelled folder; labels.csv lists them with the model's guess."""

_MAX_CROPS = 8
_INK, _PAPER = 0, 255


@dataclasses.dataclass(frozen=True)
class DrawOptions:
    """The pad's settings.

    Attributes:
        out: The labelled folder that saved drawings go into.
        size: Side of the pad in pixels (10x MNIST's 28 by default).
        stroke_width: Pen width in pad pixels.
    """

    out: str = "my-digits"
    size: int = 280
    stroke_width: int = 18

    def __post_init__(self) -> None:
        if not 64 <= self.size <= 2048:
            raise ValueError(f"size={self.size}: must be between 64 and 2048 pixels")
        if not 1 <= self.stroke_width <= self.size // 4:
            raise ValueError(f"stroke_width={self.stroke_width}: must be between 1 and {self.size // 4}")


class Pad:
    """The drawing and its reading, without any window: strokes in, pixels and a `ReadResult` out."""

    def __init__(self, reader: reader_module.DigitReader, options: DrawOptions = DrawOptions()):
        self.reader, self.options = reader, options
        self.strokes: list[list[tuple[float, float]]] = []
        self.image = np.full((options.size, options.size), _PAPER, np.uint8)
        self.result = reader_module.ReadResult("", constants.STATUS_NO_DIGIT)

    def begin(self, x: float, y: float) -> None:
        self.strokes.append([(x, y)])
        self._paint([(x, y)])

    def extend(self, x: float, y: float) -> None:
        if not self.strokes:
            self.begin(x, y)
            return
        self.strokes[-1].append((x, y))
        self._paint(self.strokes[-1][-2:])

    def undo(self) -> None:
        if self.strokes:
            self.strokes.pop()
            self._repaint()

    def clear(self) -> None:
        self.strokes.clear()
        self._repaint()

    def read(self) -> reader_module.ReadResult:
        """Reads the pad as `digit-infer` reads an image (dark ink on light paper)."""
        if not self.strokes:
            self.result = reader_module.ReadResult("", constants.STATUS_NO_DIGIT, source="pad")
        else:
            self.result = self.reader.read(self.image, source="pad")
        return self.result

    def save(self, label: str | None = None) -> pathlib.Path:
        """Saves the drawing into the labelled folder and returns its path.

        With a label, into `<out>/<label>/`; without, into `<out>/drawings/` with a labels.csv row
        holding the model's guess (correct it there).

        Raises:
            ValueError: Nothing drawn, or a label the model does not know.
        """
        if not self.strokes:
            raise ValueError("nothing drawn yet")
        folder = pathlib.Path(self.options.out)
        stamp = datetime.datetime.now().strftime("drawing-%Y%m%d-%H%M%S")
        if label is not None:
            if label not in self.reader.classifier.description.labels:
                raise ValueError(f"label {label!r} is not one of the model's labels")
            path = labelled.next_free_path(folder / label, stamp)
            _write_png(path, self.image)
            return path
        path = labelled.next_free_path(folder / DRAWINGS_FOLDER, stamp)
        _write_png(path, self.image)
        csv_path = folder / labelled.LABELS_CSV
        columns, rows = labelled.read_csv_rows(csv_path)
        columns = collect.COLUMNS + [name for name in columns if name not in collect.COLUMNS]
        result = self.result
        rows.append({"path": path.relative_to(folder).as_posix(), "label": "".join(item.label for item in result.items),
                     "source": "digit-draw", "box": " ".join("x".join(map(str, box)) for box in result.boxes),
                     "guesses": "", "confidence": f"{result.confidence:.4f}", "status": result.status})
        labelled.write_csv_rows(csv_path, columns, rows)
        return path

    def _paint(self, points: list[tuple[float, float]]) -> None:
        width = self.options.stroke_width
        pixels = np.round(np.array(points) * 4).astype(np.int32)  # 2 fractional bits: smooth slow strokes.
        if len(pixels) == 1:
            cv2.circle(self.image, tuple(int(v) for v in pixels[0]), width * 2, _INK, -1, cv2.LINE_AA, shift=2)
        else:
            cv2.polylines(self.image, [pixels.reshape(-1, 1, 2)], False, _INK, width, cv2.LINE_AA, shift=2)

    def _repaint(self) -> None:
        self.image[:] = _PAPER
        for stroke in self.strokes:
            self._paint(stroke[:1])
            if len(stroke) > 1:
                self._paint(stroke)


def _write_png(path: pathlib.Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the drawing")
    from edge_runtime import files

    files.write_bytes(path, encoded.tobytes())


def _short(label: str) -> str:
    """Tick text for a class: digits as they are, a long name on two lines ("not\ndigit")."""
    return label if len(label) <= 2 else label.replace(" a ", "\n")


class PadWindow:
    """The Matplotlib window around a `Pad`: the pad, the crops the model saw and the probability bars.

    Under a non-interactive backend (Agg) it opens no window but handles the same events, so tests
    drive it with synthesised mouse and key events.
    """

    KEYS = "c: clear   u: undo   s: save (guess in labels.csv)   0-9: save as that digit"

    def __init__(self, pad: Pad, pyplot):
        self.pad, self.pyplot = pad, pyplot
        self.drawing = False
        self.last_point: tuple[float, float] | None = None
        self.last_refresh_seconds = 0.0
        self.status = ""
        self._prepare_keymaps()
        size = pad.options.size
        labels = pad.reader.classifier.description.labels
        self.figure = pyplot.figure(figsize=(9.6, 5.4))
        if self.figure.canvas.manager is not None:
            self.figure.canvas.manager.set_window_title("digit-draw")
        grid = self.figure.add_gridspec(3, 2, width_ratios=(1.0, 1.05), height_ratios=(0.28, 1.0, 0.12),
                                        left=0.03, right=0.98, top=0.9, bottom=0.08, wspace=0.12, hspace=0.45)
        self.pad_axes = self.figure.add_subplot(grid[:, 0])
        self.pad_axes.set_xticks([]), self.pad_axes.set_yticks([])
        self.pad_image = self.pad_axes.imshow(pad.image, cmap="gray", vmin=0, vmax=255, extent=(0, size, size, 0),
                                              interpolation="bilinear")
        self.pad_axes.set_title("draw here", fontsize=10)
        self.crop_axes = self.figure.add_subplot(grid[0, 1])
        self.crop_axes.set_xticks([]), self.crop_axes.set_yticks([])
        self.crop_image = self.crop_axes.imshow(np.zeros((28, 28 * _MAX_CROPS + _MAX_CROPS - 1)), cmap="gray",
                                                vmin=0, vmax=1, interpolation="nearest")
        self.crop_axes.set_title("what the model sees (28x28 crops, in reading order)", fontsize=9)
        self.bar_axes = self.figure.add_subplot(grid[1, 1])
        self.bars = self.bar_axes.bar(range(len(labels)), np.zeros(len(labels)), color="#9aa7b8")
        self.bar_axes.set_xticks(range(len(labels)), [_short(label) for label in labels])
        self.bar_axes.set_ylim(0, 1.02)
        self.bar_title = self.bar_axes.set_title("", fontsize=10)
        self.headline = self.figure.suptitle("", fontsize=15, fontweight="bold")
        self.status_text = self.figure.text(0.52, 0.015, self.KEYS, fontsize=8.5, color="#555555", va="bottom",
                                            linespacing=1.6)
        # Only these change per stroke: they are left out of full redraws and blitted over a saved
        # background, so a stroke costs a few artists, not the whole figure (axes, ticks, labels).
        # The pad's frame comes after its image, which would otherwise cover half of each line.
        self.animated = [self.pad_image, *self.pad_axes.spines.values(), self.crop_image, *self.bars, self.bar_title,
                         self.headline]
        for artist in self.animated:
            artist.set_animated(True)
        self.background = None
        canvas = self.figure.canvas
        canvas.mpl_connect("draw_event", self._on_draw)
        canvas.mpl_connect("button_press_event", self.on_press)
        canvas.mpl_connect("motion_notify_event", self.on_motion)
        canvas.mpl_connect("button_release_event", self.on_release)
        canvas.mpl_connect("key_press_event", self.on_key)
        self.refresh()

    def _prepare_keymaps(self) -> None:
        """Frees c, u, s and the digits from Matplotlib's own shortcuts (s would open "save figure")."""
        import matplotlib

        ours = {"c", "u", "s", *"0123456789"}
        for name in [key for key in matplotlib.rcParams if key.startswith("keymap.")]:
            matplotlib.rcParams[name] = [key for key in matplotlib.rcParams[name] if key not in ours]

    def on_press(self, event) -> None:
        if event.inaxes is not self.pad_axes or event.xdata is None or event.button not in (1, None):
            return
        self.drawing = True
        self.pad.begin(event.xdata, event.ydata)
        self.last_point = (event.xdata, event.ydata)
        self._show_pad()

    def on_motion(self, event) -> None:
        if not self.drawing or event.inaxes is not self.pad_axes or event.xdata is None:
            return
        self.pad.extend(event.xdata, event.ydata)
        self.last_point = (event.xdata, event.ydata)
        self._show_pad()

    def on_release(self, event) -> None:
        if not self.drawing:
            return
        self.drawing = False
        self.refresh()

    def on_key(self, event) -> None:
        key = event.key or ""
        try:
            if key == "c":
                self.pad.clear()
                self.status = "cleared"
            elif key == "u":
                self.pad.undo()
                self.status = "undone"
            elif key == "s":
                self.status = f"saved {self._short(self.pad.save())}; its guess is in labels.csv"
                self.pad.clear()
            elif key in "0123456789" and len(key) == 1:
                count = len(self.pad.result.items)
                path = self.pad.save(key)
                warning = f"; note: {count} digits were found, so training skips it" if count != 1 else ""
                self.status = f"saved {self._short(path)} as {key}{warning}"
                self.pad.clear()
            else:
                return
        except (ValueError, OSError) as error:
            self.status = f"not saved: {error}"
        self.refresh()

    def _on_draw(self, _event) -> None:
        """After a full redraw (first show, resize): keep the static background, then draw the rest on it."""
        self.background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    def _draw_animated(self) -> None:
        for artist in self.animated:
            self.figure.draw_artist(artist)

    def _blit(self) -> None:
        canvas = self.figure.canvas
        if self.background is None:
            canvas.draw()  # Its draw_event saves the background and draws the changing artists.
            return
        canvas.restore_region(self.background)
        self._draw_animated()
        canvas.blit(self.figure.bbox)

    def _show_pad(self) -> None:
        """While a stroke is drawn only the pad changes: the opaque image is drawn over itself and blitted."""
        self.pad_image.set_data(self.pad.image)
        if self.background is None:
            self._blit()
            return
        for artist in (self.pad_image, *self.pad_axes.spines.values()):
            self.figure.draw_artist(artist)
        self.figure.canvas.blit(self.pad_axes.bbox)

    def refresh(self) -> None:
        """Re-reads the pad and updates the crops, bars and text (the stroke-to-probabilities path)."""
        started = time.perf_counter()
        result = self.pad.read()
        self.pad_image.set_data(self.pad.image)
        mosaic = np.zeros((28, 28 * _MAX_CROPS + _MAX_CROPS - 1), np.float32)
        mosaic[:, 28::29] = 0.25  # Thin separators between crops.
        for index, item in enumerate(result.items[:_MAX_CROPS]):
            mosaic[:, index * 29:index * 29 + 28] = item.crop
        self.crop_image.set_data(mosaic)
        focus = self._focus(result)
        labels = self.pad.reader.classifier.description.labels
        probabilities = focus.probabilities if focus is not None else np.zeros(len(labels))
        best = int(np.argmax(probabilities)) if focus is not None else -1
        for index, bar in enumerate(self.bars):
            bar.set_height(float(probabilities[index]))
            bar.set_color("#2f7ed8" if index == best else "#9aa7b8")
        if focus is None:
            self.bar_title.set_text("probabilities: draw a digit or a number")
            self.headline.set_text("")
        else:
            position = result.items.index(focus) + 1
            self.bar_title.set_text(f"probabilities of digit {position} of {len(result.items)}: {focus.label} "
                                    f"({focus.confidence:.1%})")
            self.headline.set_text(f"read: {result.digits}   ({result.confidence:.1%}, {result.status})")
        # The last key's outcome above the keys, which stay in view.
        status = f"{self.status}\n{self.KEYS}" if self.status else self.KEYS
        if status != self.status_text.get_text():
            self.status_text.set_text(status)  # Rare (keys only): part of the background, so a full redraw.
            self.background = None
        self._blit()
        self.last_refresh_seconds = time.perf_counter() - started

    def _short(self, path: pathlib.Path) -> str:
        """A saved file as the status line shows it: inside the --out folder, which the user chose."""
        try:
            return path.relative_to(self.pad.options.out).as_posix()
        except ValueError:
            return path.name

    def _focus(self, result):
        """The digit nearest the last stroke: the one being drawn."""
        if not result.items:
            return None
        if self.last_point is None:
            return result.items[-1]
        x, y = self.last_point
        return min(result.items, key=lambda item: (item.box[0] + item.box[2] / 2 - x) ** 2
                   + (item.box[1] + item.box[3] / 2 - y) ** 2)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--model", type=click.Path(dir_okay=False), help="A .tflite model (default: the packaged one).")
@click.option("--out", type=click.Path(file_okay=False), default="my-digits", show_default=True,
              help="The labelled folder that saved drawings go into.")
@click.option("--size", type=click.IntRange(64, 2048), default=280, show_default=True, help="Pad side in pixels.")
@click.option("--stroke-width", type=click.IntRange(1, 512), default=18, show_default=True, help="Pen width in pixels.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Show less certain digits as rejected (?), as digit-infer does.")
def main(model, out, size, stroke_width, min_confidence):
    """Draw digits with the mouse or a touchscreen and watch the model read them, live.

    \b
    Keys: c clear, u undo the last stroke, s save (the model's guess goes into
    OUT/labels.csv; correct it there), 0-9 save labelled as that digit (OUT/<digit>/).
    The saved folder works with digit-eval and digit-train --finetune.
    """
    from edge_runtime import live_view, optional

    try:
        options = DrawOptions(out=out, size=size, stroke_width=stroke_width)
        reader = reader_module.DigitReader(model, reader_module.ReaderOptions(min_confidence=min_confidence))
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="--model") from error
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    try:
        matplotlib = optional.require("matplotlib", "digit-draw")
        matplotlib.rcParams["toolbar"] = "None"  # Pan and zoom would swallow the strokes.
        pyplot = optional.pyplot("digit-draw")
    except optional.MissingExtra as error:
        raise click.ClickException(str(error)) from error
    if not live_view.is_interactive_backend():
        raise click.ClickException(f"digit-draw needs a window, and Matplotlib's backend is "
                                   f"{matplotlib.get_backend()} (no display? set DISPLAY, or MPLBACKEND=TkAgg)")
    # Kept in a name until the window closes: Matplotlib holds its event callbacks only weakly, so an
    # unnamed PadWindow was collected at once, leaving a window that drew no pad and took no stroke.
    window = PadWindow(Pad(reader, options), pyplot)
    pyplot.show()
    return window


if __name__ == "__main__":
    main()
