"""The line reader: CTC decoding on known alignments, strip normalization, synthetic lines, a tiny trained
line model exported through digit-export with Keras<->TFLite parity, third-party models, and no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from edge_runtime import line_reader

BLANK = line_reader.BLANK_INDEX


def one_hot_columns(path: list[int], classes: int = 11, confidence: float = 0.9) -> np.ndarray:
    """Column probabilities whose best path is `path`: `confidence` on the path, the rest spread evenly."""
    probabilities = np.full((len(path), classes), (1 - confidence) / (classes - 1), np.float32)
    probabilities[np.arange(len(path)), path] = confidence
    return probabilities


@pytest.mark.parametrize("path, digits, columns", [
    ([BLANK, 1, 1, BLANK, 1, 2, 2, BLANK, BLANK, 3], [1, 1, 2, 3], [(1, 3), (4, 5), (5, 7), (9, 10)]),
    ([7, 7, 7], [7], [(0, 3)]),  # repeats without a blank between them are one digit
    ([7, BLANK, 7], [7, 7], [(0, 1), (2, 3)]),  # a blank between repeats keeps both
    ([BLANK] * 5, [], []),
    ([0, 9, 0, 9], [0, 9, 0, 9], [(0, 1), (1, 2), (2, 3), (3, 4)]),
])
def test_greedy_ctc_decoding_on_known_alignments(path, digits, columns):
    decoding = line_reader.greedy_ctc_decode(one_hot_columns(path))
    assert decoding.labels.tolist() == digits
    assert [tuple(run) for run in decoding.columns.tolist()] == columns
    assert np.allclose(decoding.confidences, 0.9) and len(decoding.step_confidences) == len(path)


def test_greedy_decoding_takes_each_digits_best_column_and_any_blank_index():
    probabilities = one_hot_columns([0, 4, 4, 0, 0, 5], confidence=0.6)
    probabilities[2, 4] = 0.8  # the second column of the 4 is surer than the first
    decoding = line_reader.greedy_ctc_decode(probabilities, blank_index=0)
    assert decoding.labels.tolist() == [4, 5]
    assert decoding.confidences.tolist() == pytest.approx([0.8, 0.6])
    assert line_reader.greedy_ctc_decode(np.zeros((0, 11))).labels.size == 0
    with pytest.raises(ValueError, match="blank_index=11"):
        line_reader.greedy_ctc_decode(probabilities, blank_index=11)
    with pytest.raises(ValueError, match="expected \\(columns, classes\\)"):
        line_reader.greedy_ctc_decode(np.zeros(11))


def test_normalize_line_fits_the_ink_band_and_maps_columns_back():
    ink = np.zeros((100, 300), np.uint8)
    ink[20:66, 50:142] = 255  # 46 rows x 92 columns of ink: scale 0.5
    strip = line_reader.normalize_line(ink)
    assert strip.pixels.shape == (32, line_reader.bucket_width(46))
    rows = np.flatnonzero(strip.pixels.max(axis=1) > 0.5)
    assert (rows[0], rows[-1] + 1) == (line_reader.INK_TOP, line_reader.INK_TOP + line_reader.INK_HEIGHT)
    columns = np.flatnonzero(strip.pixels.max(axis=0) > 0.5)
    assert columns[0] == line_reader.MARGIN and strip.scale == pytest.approx(0.5)
    assert strip.to_input_x(line_reader.MARGIN) == pytest.approx(50)
    assert strip.to_input_x(line_reader.MARGIN + 46) == pytest.approx(142)
    same = line_reader.normalize_line(ink.astype(np.float32) / 255)
    assert np.allclose(same.pixels, strip.pixels, atol=1e-6)
    assert line_reader.normalize_line(np.zeros((10, 10), np.uint8)) is None
    with pytest.raises(ValueError, match="2-D image of one line"):
        line_reader.normalize_line(np.zeros((2, 10, 10), np.uint8))


def test_synthetic_lines_are_seeded_labelled_and_sized(mnist):
    from trainer import lines

    first = lines.fixed_line_set(mnist.test_images[:500], mnist.test_labels[:500], 24, seed=3)
    again = lines.fixed_line_set(mnist.test_images[:500], mnist.test_labels[:500], 24, seed=3)
    assert np.array_equal(first.strips, again.strips) and first.texts == again.texts
    assert first.strips.shape == (24, 32, 256) and first.strips.max() <= 1.0
    assert sorted({len(text) for text in first.texts}) == list(range(1, 13))
    for text, row in zip(first.texts, first.labels):
        assert "".join(str(v) for v in row[row >= 0]) == text


def test_line_parts_are_the_test_lines_with_each_digits_place(mnist):
    """`fixed_line_parts` draws the very lines of `fixed_line_set` and says where each digit went."""
    from trainer import lines

    images, labels = mnist.test_images[:500], mnist.test_labels[:500]
    whole = lines.fixed_line_set(images, labels, 24, seed=3, keep_canvases=True)
    parts, texts = lines.fixed_line_parts(images, labels, 24, seed=3)
    assert texts == whole.texts
    for part, canvas, text in zip(parts, whole.canvases, texts):
        assert np.array_equal(part.canvas, canvas)
        assert len(part.digit_spans) == len(part.digit_tiles) == len(text)
        for (x, width), tile in zip(part.digit_spans, part.digit_tiles):
            assert width == tile.shape[1] and 0 <= x and x + width <= canvas.shape[1]
        starts = [x for x, _ in part.digit_spans]
        assert starts == sorted(starts)


def test_the_digit_model_reads_lone_digits_better_than_cut_ones(mnist):
    """scripts/line_ceiling.py: neighbours and noise reaching into a digit's columns cost the digit model
    far more than the line's warps do (the whole test set: 84.0% of lines cut, 95.3% alone)."""
    import importlib.util
    import pathlib

    from edge_runtime import reader as reader_module
    from trainer import lines

    script = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "line_ceiling.py"
    spec = importlib.util.spec_from_file_location("line_ceiling", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parts, texts = lines.fixed_line_parts(mnist.test_images, mnist.test_labels, 240, seed=2026)
    figures = module.measure(parts, texts, reader_module.DigitReader().classifier)
    assert figures["alone"]["digit_accuracy"] >= 0.985
    assert figures["cut"]["sequence_accuracy"] + 0.05 <= figures["alone"]["sequence_accuracy"] < 0.99


def test_line_model_reads_one_column_per_four_pixels_within_the_size_budget():
    from trainer import config, line_model

    model = line_model.build_line_model(config.LINE_PROFILES["default"]["widths"])
    for width in (64, 256):
        assert model(np.zeros((1, 32, width, 1), np.float32)).shape == (1, width // line_reader.COLUMN_STRIDE, 11)
    # int8 stores a byte a weight plus per-channel scales and names: 125k weights stay under 150 KB.
    assert model.count_params() <= 125_000
    assert {layer.name for layer in model.layers} >= {"column_conv", "context1_add", "column_logits"}
    with pytest.raises(ValueError, match="five filter counts"):
        line_model.build_line_model((8, 8, 8))
    with pytest.raises(ValueError, match="context_blocks=-1"):
        line_model.build_line_model(context_blocks=-1)


def test_training_lines_only_add_noise_to_the_test_distribution():
    from trainer import lines, lines_train

    defaults = lines.LineOptions()
    changed = {field for field in defaults.__dataclass_fields__
               if getattr(defaults, field) != getattr(lines_train.TRAINING_OPTIONS, field)}
    assert changed <= {"noise_probability"}


def test_lead_ins_go_down_left_from_the_top_of_a_one_and_nowhere_else():
    from trainer import augment

    stem = np.zeros((28, 28), np.uint8)
    stem[4:24, 13:15] = 255  # a plain upright 1
    images = np.stack([stem, stem, stem])
    labels = np.array([1, 7, 1])
    led = augment.add_lead_ins(images, labels, np.random.default_rng(0), probability=1.0)
    added = (led[0] > 96) & ~(stem > 96)
    rows, columns = np.nonzero(added)
    assert len(rows) >= 8  # a stroke, not a speck
    assert columns.max() < 13 and rows.min() >= 4  # left of the stem, starting at its top
    assert rows.max() - 4 >= 0.4 * 20 * np.sin(np.radians(35)) - 1  # reaches well down the digit
    np.testing.assert_array_equal(led[1], stem)  # a 7 is left alone
    np.testing.assert_array_equal(images[0], stem)  # the input is not changed in place
    unchanged = augment.add_lead_ins(images, labels, np.random.default_rng(0), probability=0.0)
    np.testing.assert_array_equal(unchanged, images)


def test_lead_in_share_is_a_line_option_checked_like_the_others():
    from click.testing import CliRunner

    from trainer import cli, config

    assert config.from_profile("default", task="line", lead_in_share=0.3).lead_in_share == 0.3
    # The line profiles train the packaged model's recipe; 0 turns the lead-ins off; digits never get them.
    assert config.from_profile("default", task="line").lead_in_share == 0.3
    assert config.from_profile("quick", task="line").lead_in_share == 0.3
    assert config.from_profile("default", task="line", lead_in_share=0.0).lead_in_share == 0.0
    assert config.from_profile("default", task="digit").lead_in_share == 0.0
    with pytest.raises(ValueError, match="line task only"):
        config.from_profile("default", task="digit", lead_in_share=0.3)
    with pytest.raises(ValueError, match=r"lead_in_share=1.5: must be in \[0, 1\]"):
        config.from_profile("default", task="line", lead_in_share=1.5)
    refused = CliRunner().invoke(cli.main, ["--lead-in-share", "0.3"])  # the digit task
    assert refused.exit_code == 2 and "--lead-in-share 0.3" in refused.output and "line task only" in refused.output


def test_sequence_accuracy_and_character_error_rate():
    from trainer import lines_train

    assert lines_train.edit_distance("2024", "2024") == 0
    assert lines_train.edit_distance("2024", "224") == 1  # a digit lost where two touch
    assert lines_train.edit_distance("2024", "20244") == 1 and lines_train.edit_distance("12", "21") == 2
    scores = lines_train.sequence_scores(["2024", "17", "5"], ["2024", "11", ""])
    assert scores["sequence_accuracy"] == pytest.approx(1 / 3)
    assert scores["character_error_rate"] == pytest.approx(2 / 7)
    with pytest.raises(ValueError, match="3 true lines but 2 reads"):
        lines_train.sequence_scores(["1", "2", "3"], ["1", "2"])


@pytest.fixture(scope="module")
def tiny_line_run(tmp_path_factory, mnist, monkeypatch_module):
    """`digit-train --task line --quick` with the profile shrunk to seconds, into a path with spaces."""
    from click.testing import CliRunner

    from trainer import cli, config, lines_train

    monkeypatch_module.setitem(config.LINE_PROFILES, "quick", {
        **config.LINE_PROFILES["quick"], "epochs": 1, "steps_per_epoch": 10, "batch_size": 12,
        "widths": (8, 8, 16, 16, 32), "learning_rate": 1e-2})
    monkeypatch_module.setattr(lines_train, "TEST_LINES", 48)
    monkeypatch_module.setattr(lines_train, "VALIDATION_LINES", 24)
    out = tmp_path_factory.mktemp("line runs") / "my runs"
    result = CliRunner().invoke(cli.main, ["--task", "line", "--quick", "--limit", "3000", "--out", str(out),
                                           "--name", "tiny line"])
    assert result.exit_code == 0, result.output
    return out / "tiny line"


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.slow
def test_line_training_writes_a_complete_run_folder(tiny_line_run):
    for name in ("model.keras", "config.json", "history.json", "metrics.json", "learning_curves.png",
                 "line_errors.png"):
        assert (tiny_line_run / name).is_file(), name
    metrics = json.loads((tiny_line_run / "metrics.json").read_text())
    assert metrics["task"] == "line" and metrics["complete"] and metrics["test_lines"] == 48
    assert 0 <= metrics["test_sequence_accuracy"] <= 1 and metrics["test_character_error_rate"] >= 0
    assert json.loads((tiny_line_run / "config.json").read_text())["task"] == "line"
    # The training lines' distribution is not in TrainConfig: the run records it beside the model.
    from trainer import lines_train

    assert metrics["training_lines"]["noise_probability"] == lines_train.TRAINING_OPTIONS.noise_probability
    from trainer import config

    assert json.loads((tiny_line_run / "config.json").read_text())["lead_in_share"] == config.LINE_LEAD_IN_SHARE == 0.3


@pytest.fixture(scope="module")
def tiny_line_exports(tiny_line_run, mnist, tmp_path_factory):
    """The tiny line run exported as float32 and int8 through digit-export's own pipeline."""
    from exporter import config, export

    exports = {}
    for mode in ("none", "int8"):
        settings = config.ExportConfig(model=str(tiny_line_run), quantize=mode, latency_runs=5,
                                       calibration_samples=16, max_drop=100.0)
        exports[mode] = export.export(settings, mnist)
    return exports


@pytest.mark.slow
def test_digit_export_proves_a_line_model_and_describes_it(tiny_line_exports):
    path, report = tiny_line_exports["int8"]
    assert path.name == "model_int8.tflite" and report["kind"] == "line" and report["test_lines"] == 48
    for key in ("keras_accuracy", "tflite_accuracy", "agreement", "tflite_bytes", "tflite_us_per_line",
                "keras_character_error_rate", "gate_passed"):
        assert key in report, key
    from edge_runtime import metadata

    description = metadata.read_description(path.read_bytes())
    assert description.extra["kind"] == "line" and description.extra["blank_index"] == BLANK
    assert description.extra["height"] == 32 and description.input_range == (0.0, 1.0)
    assert description.polarity == "white-on-black"
    assert path.with_name("model_int8.report.md").read_text().startswith("# Export report")


@pytest.mark.slow
def test_keras_and_tflite_agree_on_lines(tiny_line_run, tiny_line_exports, mnist):
    import keras

    from trainer import lines

    model = keras.saving.load_model(tiny_line_run / "model.keras", compile=False)
    sample = lines.fixed_line_set(mnist.test_images, mnist.test_labels, 12, seed=5)
    keras_probabilities = model.predict(sample.strips[..., None], verbose=0)
    float32 = line_reader.LineRecognizer(tiny_line_exports["none"][0]).column_probabilities(sample.strips)
    assert np.abs(float32 - keras_probabilities).max() < 1e-4
    int8 = line_reader.LineRecognizer(tiny_line_exports["int8"][0])
    probabilities = int8.column_probabilities(sample.strips)
    assert np.abs(probabilities - keras_probabilities).max() < 0.3
    assert (probabilities.argmax(-1) == keras_probabilities.argmax(-1)).mean() > 0.9
    narrow = int8.column_probabilities(sample.strips[:3, :, :128])  # any bucketed width runs
    assert narrow.shape == (3, 32, 11)


@pytest.mark.slow
def test_third_party_line_models_need_their_blank_index(tiny_line_exports, tmp_path):
    from edge_runtime import metadata
    from exporter import metadata as export_metadata

    bare = tmp_path / "third party.tflite"  # a CTC model whose description says nothing of lines
    bare.write_bytes(export_metadata.embed_description(tiny_line_exports["none"][0].read_bytes(),
                                                       metadata.ModelDescription()))
    with pytest.raises(ValueError, match="not a line model.*blank"):
        line_reader.LineRecognizer(bare)
    recognizer = line_reader.LineRecognizer(bare, blank_index=BLANK)
    assert recognizer.labels == tuple("0123456789") + ("",)
    reading = recognizer.read_line(np.pad(np.full((20, 8), 255, np.uint8), 10))
    assert reading.probabilities.shape[1] == 11


def test_the_digit_model_is_refused_as_a_line_model():
    with pytest.raises(ValueError, match="not a line model.*a digit model.*goes with --model"):
        line_reader.LineRecognizer(REPO / "edge_runtime" / "models" / "digitkit_int8.tflite")


PACKAGED = line_reader.DEFAULT_MODEL


@pytest.mark.skipif(not PACKAGED.is_file(), reason="the packaged line model is not built yet")
def test_packaged_line_model_reads_test_lines_with_boxes(mnist):
    from trainer import lines

    sample = lines.fixed_line_set(mnist.test_images, mnist.test_labels, 48, seed=11, keep_canvases=True)
    recognizer = line_reader.LineRecognizer()
    readings = [recognizer.read_line(canvas) for canvas in sample.canvases]
    assert np.mean([reading.digits == text for reading, text in zip(readings, sample.texts)]) >= 0.85
    for reading, canvas in zip(readings, sample.canvases):
        assert len(reading.x_ranges) == len(reading.digits) == len(reading.confidences) == len(reading.columns)
        for x0, x1 in reading.x_ranges:
            assert 0 <= x0 < x1 <= canvas.shape[1]
        assert 0 <= reading.confidence <= min(reading.confidences, default=1.0) + 1e-6
    empty = recognizer.read_line(np.zeros((40, 100), np.float32))
    assert empty.digits == "" and empty.confidence == 0.0


NO_TENSORFLOW = """
import importlib.abc, json, sys
class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "tensorflow_cpu"):
            raise ImportError(f"blocked: the edge runtime imported {name}")
sys.meta_path.insert(0, BlockTensorFlow())
import numpy as np
from edge_runtime import line_reader
ink = np.zeros((40, 120), np.uint8)
ink[8:32, 10:14] = 255
ink[8:32, 40:60] = 200
model = sys.argv[1] if len(sys.argv) > 1 else None
reading = line_reader.LineRecognizer(model).read_line(ink) if model else None
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({"digits": None if reading is None else reading.digits, "heavy_modules": heavy}))
"""


def test_the_line_reader_never_imports_tensorflow():
    arguments = [str(PACKAGED)] if PACKAGED.is_file() else []
    completed = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *arguments], capture_output=True, text=True,
                               cwd=REPO, timeout=120)
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["heavy_modules"] == []
