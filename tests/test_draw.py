"""`digit-draw` under Agg: synthesised mouse and key events drive the pad, the live reading and saving."""

from __future__ import annotations

import csv

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as pyplot  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from matplotlib.backend_bases import KeyEvent, MouseEvent  # noqa: E402

from edge_runtime import draw, labelled  # noqa: E402
from edge_runtime import reader as reader_module  # noqa: E402

SEVEN = [[(80, 70), (120, 70), (160, 70), (200, 70)], [(200, 70), (180, 120), (160, 170), (140, 220)]]
ONE = [[(140, 50), (140, 110), (140, 170), (140, 230)]]


@pytest.fixture
def window(tmp_path):
    pad = draw.Pad(reader_module.DigitReader(), draw.DrawOptions(out=str(tmp_path / "my digits")))
    with matplotlib.rc_context():  # the pad takes Matplotlib's keys for good: other tests get them back
        view = draw.PadWindow(pad, pyplot)
        view.figure.canvas.draw()
        yield view
        pyplot.close(view.figure)


def _mouse(view, name, x, y):
    display_x, display_y = view.pad_axes.transData.transform((x, y))
    canvas = view.figure.canvas
    canvas.callbacks.process(name, MouseEvent(name, canvas, display_x, display_y, button=1))


def _stroke(view, points, offset=0):
    _mouse(view, "button_press_event", points[0][0] + offset, points[0][1])
    for x, y in points[1:]:
        _mouse(view, "motion_notify_event", x + offset, y)
    _mouse(view, "button_release_event", points[-1][0] + offset, points[-1][1])


def _key(view, key):
    canvas = view.figure.canvas
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, key=key))


def test_strokes_are_read_live_and_shown(window):
    for stroke in SEVEN:
        _stroke(window, stroke)
    assert len(window.pad.strokes) == 2
    assert window.pad.result.digits == "7"
    assert window.pad.image.min() == 0 and window.pad.image.max() == 255  # dark ink on light paper
    heights = [bar.get_height() for bar in window.bars]
    assert heights[7] == max(heights) and sum(heights) == pytest.approx(1.0, abs=0.02)
    assert "read: 7" in window.headline.get_text()
    assert window.crop_image.get_array()[:, :28].max() > 0.5  # the crop the model saw


def test_same_code_path_as_digit_infer(window):
    for stroke in SEVEN:
        _stroke(window, stroke)
    again = window.pad.reader.read(window.pad.image.copy())
    assert again.digits == window.pad.result.digits and again.boxes == window.pad.result.boxes


def test_undo_clear_and_a_number(window):
    _stroke(window, ONE[0], offset=-70)
    _stroke(window, ONE[0], offset=+70)
    assert window.pad.result.digits == "11"
    _key(window, "u")
    assert len(window.pad.strokes) == 1 and window.pad.result.digits == "1"
    _key(window, "c")
    assert window.pad.strokes == [] and window.pad.result.status == "no digit found"
    assert window.pad.image.min() == 255


def test_digit_keys_save_labelled_and_s_saves_with_the_guess(window, tmp_path):
    folder = tmp_path / "my digits"
    for stroke in SEVEN:
        _stroke(window, stroke)
    _key(window, "7")
    saved = list((folder / "7").glob("*.png"))
    assert len(saved) == 1 and "saved" in window.status and window.pad.strokes == []
    for stroke in SEVEN:
        _stroke(window, stroke)
    _key(window, "s")
    rows = list(csv.DictReader((folder / labelled.LABELS_CSV).open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["label"] == "7" and rows[0]["path"].startswith("drawings/")
    loaded = labelled.load(folder)
    assert sorted(item.digits for item in loaded.items) == ["7", "7"] and loaded.warnings == ()


def test_saving_nothing_says_so(window):
    _key(window, "5")
    assert "not saved: nothing drawn" in window.status


def test_strokes_outside_the_pad_are_ignored(window):
    canvas = window.figure.canvas
    canvas.callbacks.process("button_press_event", MouseEvent("button_press_event", canvas, 5, 5, button=1))
    assert window.pad.strokes == []


def test_cli_refuses_without_a_window():
    result = CliRunner().invoke(draw.main, [])
    assert result.exit_code == 1 and "needs a window" in result.output


def test_cli_refuses_a_bad_model(tmp_path):
    result = CliRunner().invoke(draw.main, ["--model", str(tmp_path / "none.tflite")])
    assert result.exit_code == 2 and "not found" in result.output


def test_the_cli_window_keeps_taking_strokes_while_it_is_shown(tmp_path, monkeypatch):
    """Matplotlib keeps callbacks weakly: the CLI's window must outlive the garbage collector while shown."""
    import gc

    from edge_runtime import live_view

    taken = []

    def show():
        gc.collect()
        figure = pyplot.gcf()
        canvas = figure.canvas
        pad_axes = figure.axes[0]
        for name, (x, y) in (("button_press_event", (140, 50)), ("motion_notify_event", (140, 230)),
                             ("button_release_event", (140, 230))):
            display_x, display_y = pad_axes.transData.transform((x, y))
            canvas.callbacks.process(name, MouseEvent(name, canvas, display_x, display_y, button=1))
        taken.append(figure.texts[0].get_text() if figure.texts else "")
        pyplot.close(figure)

    monkeypatch.setattr(live_view, "is_interactive_backend", lambda: True)
    monkeypatch.setattr(pyplot, "show", show)
    with matplotlib.rc_context():  # digit-draw takes over keys and the toolbar for good: give them back after
        result = CliRunner().invoke(draw.main, ["--out", str(tmp_path / "my digits")])
    assert result.exit_code == 0, result.output
    assert taken and taken[0].startswith("read: 1"), taken
