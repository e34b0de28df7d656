"""Issue 12, runtime: model files and shapes checked at load, NaN never `ok`, decode caps, strict JPEG, timeouts."""

import json
import os
import random
import socket
import struct
import threading
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SAMPLES
from edge_runtime import camera, cli, imageio, interpreter, reader

PHOTO = sorted(SAMPLES.glob("*.jpg"))[1]


def _invoke(*arguments):
    return CliRunner().invoke(cli.main, [str(argument) for argument in arguments])


# --- Model files ---------------------------------------------------------------------------------------------


def test_a_model_that_is_not_a_regular_file_or_too_big_fails_fast(tmp_path):
    fifo = tmp_path / "model fifo.tflite"
    os.mkfifo(fifo)
    for path, message in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                          (tmp_path, "is a folder")):
        with pytest.raises(ValueError, match=message):
            interpreter.DigitClassifier(path)
    huge = tmp_path / "huge.tflite"
    with open(huge, "wb") as file:
        file.truncate(interpreter.MAX_MODEL_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ValueError, match="MAX_MODEL_BYTES"):
        interpreter.DigitClassifier(huge)
    result = _invoke(PHOTO, "--model", fifo)
    assert result.exit_code == 2 and "not a regular file" in result.output


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    """Tiny float models with fixed batches, NaN and flat outputs, converted with TensorFlow."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("odd models")
    weights = tf.constant(np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32) * 0.05)

    def dense(x):
        return tf.nn.softmax(tf.matmul(tf.reshape(x, [-1, 784]), weights))

    def convert(function, shape, name):
        concrete = tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
        (folder / name).write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete], function).convert())
        return folder / name

    models = {
        "dynamic": convert(dense, [None, 28, 28, 1], "dynamic.tflite"),
        "batch4": convert(dense, [4, 28, 28, 1], "batch4.tflite"),
        "batch4 output 1": convert(lambda x: tf.reduce_mean(dense(x), axis=0, keepdims=True), [4, 28, 28, 1],
                                   "batch4_out1.tflite"),
        "nan": convert(lambda x: dense(x) * tf.math.log(tf.reduce_min(x) - 2.0), [1, 28, 28, 1], "nan.tflite"),
        "flat": convert(lambda x: dense(x) * 0.0 + 0.1, [1, 28, 28, 1], "flat.tflite"),
    }
    data = models["batch4"].read_bytes()  # Batch 0: the same model with its shape vectors rewritten.
    data = data.replace(struct.pack("<5i", 4, 4, 28, 28, 1), struct.pack("<5i", 4, 0, 28, 28, 1))
    data = data.replace(struct.pack("<3i", 2, 4, 10), struct.pack("<3i", 2, 0, 10))
    (folder / "batch0.tflite").write_bytes(data)
    models["batch0"] = folder / "batch0.tflite"
    return models


@pytest.mark.slow
def test_a_fixed_batch_of_4_reads_like_a_dynamic_batch(odd_models):
    images = np.random.default_rng(1).random((7, 28, 28)).astype(np.float32)
    expected = interpreter.DigitClassifier(odd_models["dynamic"]).classify(images)
    fixed = interpreter.DigitClassifier(odd_models["batch4"])
    for count in (1, 3, 4, 7):
        assert np.allclose(fixed.classify(images[:count]), expected[:count], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name, message", [("batch0", "batch of 0"), ("batch4 output 1", "output a batch of 1")])
def test_impossible_batches_are_refused_at_load(odd_models, name, message):
    with pytest.raises(ValueError, match=message):
        interpreter.DigitClassifier(odd_models[name])
    assert _invoke(PHOTO, "--model", odd_models[name]).exit_code == 2


@pytest.mark.slow
@pytest.mark.parametrize("name, message", [("nan", "not a number"), ("flat", "same probability")])
def test_nan_and_flat_outputs_are_error_rows_in_strict_json(odd_models, name, message):
    result = _invoke(PHOTO, "--model", odd_models[name], "--format", "jsonl")
    assert result.exit_code == 1, result.output

    def refuse(constant):
        raise AssertionError(f"{constant} in JSON lines")

    row = json.loads(result.stdout, parse_constant=refuse)
    assert row["status"] == "error" and message in row["error"]


# --- Images --------------------------------------------------------------------------------------------------


def _png(width, height, bit_depth, colour_type) -> bytes:
    """A PNG whose header announces a size; the pixel data is a token (refused before decoding anyway)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_decode_bytes_are_capped_before_decoding():
    with pytest.raises(imageio.ImageError, match="MAX_DECODE_BYTES"):
        imageio.decode_image(_png(8660, 5773, 16, 6), "bomb.png")  # 50 MP 16-bit RGBA: 400 MB of pixels
    with pytest.raises(imageio.ImageError, match="MAX_DECODE_BYTES"):
        imageio.decode_image(_png(8660, 5773, 8, 6), "rgba.png")


def test_large_non_jpeg_images_are_reduced_while_decoding():
    import cv2

    page = np.full((4800, 6000), 255, np.uint8)  # over twice WORK_MAX_SIDE (2048): halved
    cv2.putText(page, "7", (2000, 3600), cv2.FONT_HERSHEY_SIMPLEX, 80, 0, 240)
    image = imageio.decode_image(cv2.imencode(".png", page)[1].tobytes(), "big.png")
    assert image.shape == (2400, 3000)
    assert reader.DigitReader().read(image).items  # still a digit to read after the reduction


def _corrupt_jpegs(count: int, seed: int):
    """Samples truncated (with or without an end marker) or with a block of their scan zeroed."""
    rng = random.Random(seed)
    photos = sorted(SAMPLES.glob("*.jpg"))
    for index in range(count):
        data = bytearray(photos[index % len(photos)].read_bytes())
        scan = data.find(b"\xff\xda")
        if index % 3 == 0:
            start = rng.randrange(scan + 50, len(data) - 100)
            length = min(rng.randint(16, 512), len(data) - 2 - start)
            data[start:start + length] = bytes(length)
        else:
            data = data[:rng.randrange(scan + 50, len(data) - 50)] + (b"\xff\xd9" if index % 3 == 1 else b"")
        yield f"corrupt {index}.jpg", bytes(data)


def test_corrupt_jpegs_are_errors_and_libjpeg_stays_quiet(tmp_path, capfd):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for name, data in _corrupt_jpegs(30, seed=12):
        (folder / name).write_bytes(data)
    result = _invoke(folder, "--format", "jsonl", "--min-confidence", "0")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 30
    ok = [row["path"] for row in rows if row["status"] == "ok"]
    assert len(ok) <= 0.05 * len(rows), ok
    assert any("libjpeg" in row["error"] for row in rows)
    captured = capfd.readouterr()
    assert "Corrupt JPEG data" not in captured.err and "Premature end" not in captured.err


def test_a_clean_jpeg_is_not_flagged():
    assert imageio.load_image(PHOTO).ndim == 3


def test_tiff_pages_are_counted():
    import cv2

    page = np.zeros((40, 30), np.uint8)
    ok, encoded = cv2.imencodemulti(".tiff", [page, page, page])
    assert ok and imageio._tiff_pages(encoded.tobytes()) == 3
    assert imageio._tiff_pages(cv2.imencode(".tiff", page)[1].tobytes()) == 1


# --- Camera --------------------------------------------------------------------------------------------------


def test_a_stream_that_accepts_but_never_answers_times_out(capsys):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/video"
        with pytest.raises(camera.SourceError, match="no answer within --camera-timeout 1 s"):
            camera.open_source(url, timeout=1.0)
        assert "waiting up to 1 s for stream" in capsys.readouterr().err
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
    with pytest.raises(ValueError, match="timeout"):
        camera.CameraOptions(timeout=0).validate()
