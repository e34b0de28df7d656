"""MNIST loading: real IDX files parse; truncated, corrupt and missing files are refused with a clear message."""

import gzip
import hashlib
import pathlib
import shutil

import numpy as np
import pytest

from trainer import data


def test_real_idx_files_parse_and_validate(mnist):
    assert mnist.train_images.shape == (60_000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_labels.shape == (10_000,)
    assert np.bincount(mnist.test_labels, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_parsed_bytes_match_the_published_checksum(mnist_path):
    raw = gzip.decompress((mnist_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    images = data.read_idx(mnist_path / "t10k-images-idx3-ubyte.gz")
    assert images.tobytes() == raw[16:]


def _copy_mnist(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    target.mkdir(parents=True)
    for file in source.glob("*.gz"):
        shutil.copy(file, target / file.name)
    return target


def test_raw_uncompressed_idx_and_npz_load(mnist_path, tmp_path, mnist):
    folder = tmp_path / "raw idx"
    folder.mkdir()
    for file in mnist_path.glob("*.gz"):
        (folder / file.stem).write_bytes(gzip.decompress(file.read_bytes()))
    raw = data.load_mnist(folder)
    assert np.array_equal(raw.test_images, mnist.test_images)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=mnist.train_images, y_train=mnist.train_labels, x_test=mnist.test_images,
             y_test=mnist.test_labels)
    assert np.array_equal(data.load_mnist(npz).train_labels, mnist.train_labels)


def test_truncated_file_is_named_and_explained(mnist_path, tmp_path):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    labels = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:5000]))
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte.gz: truncated: header says shape \(10000,\)"):
        data.load_mnist(folder)


def test_cut_gzip_stream_is_reported(mnist_path, tmp_path):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    file = folder / "train-labels-idx1-ubyte.gz"
    file.write_bytes(file.read_bytes()[:1000])
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte.gz: cannot decompress"):
        data.load_mnist(folder)


def test_wrong_magic_number_is_reported(mnist_path, tmp_path):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    raw = bytearray(gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes()))
    raw[2] = 0x0D  # float data instead of unsigned bytes
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz: magic number 0x00000d03"):
        data.load_mnist(folder)


def test_labels_out_of_range_are_refused(mnist, tmp_path):
    labels = mnist.test_labels.copy()
    labels[7] = 11
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=mnist.train_images, y_train=mnist.train_labels, x_test=mnist.test_images, y_test=labels)
    with pytest.raises(data.DataError, match="labels hold 11"):
        data.load_mnist(npz)


def test_missing_file_and_folder_name_what_is_missing(mnist_path, tmp_path):
    folder = _copy_mnist(mnist_path, tmp_path / "mnist")
    (folder / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_mnist(folder)
    with pytest.raises(FileNotFoundError, match="nowhere: no such file or folder"):
        data.load_mnist(tmp_path / "nowhere")


def test_offline_without_local_copy_says_how_to_supply_data(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "empty cache")

    def offline():
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    import keras

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError, match=r"downloading MNIST through Keras failed .*--data FOLDER.*MNIST_DIR"):
        data.load_mnist()


def test_mnist_dir_environment_variable_is_used(monkeypatch, mnist_path):
    monkeypatch.setenv("MNIST_DIR", str(mnist_path))
    assert data.load_mnist().source == str(mnist_path)


def test_validation_split_is_seeded_and_disjoint(mnist):
    first = data.split_validation(mnist, 0.1, seed=3, limit=1000)
    second = data.split_validation(mnist, 0.1, seed=3, limit=1000)
    other = data.split_validation(mnist, 0.1, seed=4, limit=1000)
    assert len(first.validation_labels) == 100 and len(first.train_labels) == 900
    assert np.array_equal(first.validation_images, second.validation_images)
    assert not np.array_equal(first.validation_images, other.validation_images)
    train_rows = {image.tobytes() for image in first.train_images}
    assert not any(image.tobytes() in train_rows for image in first.validation_images)
