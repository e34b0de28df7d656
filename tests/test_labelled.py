"""The labelled-folder format: `<folder>/<label>/*.png` and labels.csv, validated entry by entry."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest

from edge_runtime import constants, labelled


def _png(path: pathlib.Path, value: int = 200) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((28, 28), np.uint8)
    cv2.line(image, (14, 5), (14, 22), value, 3)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def folder(tmp_path) -> pathlib.Path:
    root = tmp_path / "my digits"
    _png(root / "7" / "a.png")
    _png(root / "7" / "b.png")
    _png(root / "1" / "c.png")
    return root


def test_label_folders_load_in_a_stable_order(folder):
    loaded = labelled.load(folder)
    assert [(item.path.name, item.label) for item in loaded.items] == [("c.png", "1"), ("a.png", "7"), ("b.png", "7")]
    assert loaded.warnings == ()
    assert all(item.single for item in loaded.items)


def test_csv_rows_with_spaces_and_line_separators(folder):
    _png(folder / "photos" / "n.png")
    (folder / "labels.csv").write_text("path,label,source\nphotos/n.png,12 / 34,x\n", encoding="utf-8")
    loaded = labelled.load(folder)
    number = [item for item in loaded.items if item.path.name == "n.png"][0]
    assert number.label == "12 / 34" and number.digits == "1234" and not number.single
    assert loaded.warnings == ()  # photos/ is listed by labels.csv, so it is not taken for a label folder


def test_bad_rows_are_skipped_with_a_warning_naming_the_file(folder):
    _png(folder / "crops" / "ok.png")
    _png(folder / "crops" / "letter.png")
    (folder / "labels.csv").write_text(
        "path,label\n"
        "crops/ok.png,3\n"
        "crops/letter.png,3a\n"          # unknown label
        "crops/gone.png,4\n"             # missing file
        "crops/ok.png,3\n"               # duplicate, same label
        "7/a.png,9\n"                    # duplicate of a folder entry, another label
        ",5\n"                           # empty path
        "crops/ok.png,\n", encoding="utf-8")  # no label yet
    loaded = labelled.load(folder)
    names = sorted(item.path.name for item in loaded.items)
    assert names == ["b.png", "c.png", "ok.png"]
    text = "\n".join(loaded.warnings)
    assert "row 3" in text and "letter.png" in text and "'a'" in text and "valid: 0-9" in text
    assert "row 4" in text and "gone.png" in text and "not found" in text
    assert "row 5" in text and "duplicate" in text
    assert "row 6" in text and "a different label" in text and "both skipped" in text
    assert "row 7" in text and "empty path" in text
    assert "row 8" in text and "no label yet" in text


def test_unknown_label_folder_is_a_warning(folder):
    _png(folder / "x" / "odd.png")
    loaded = labelled.load(folder)
    assert len(loaded.items) == 3
    assert any("unknown label 'x'" in warning and "1 images" in warning for warning in loaded.warnings)


def test_labels_outside_the_model_are_refused_unless_the_model_has_them(tmp_path):
    _png(tmp_path / "set" / "not a digit" / "blob.png")
    with pytest.raises(ValueError, match="no labelled images"):
        labelled.load(tmp_path / "set")
    loaded = labelled.load(tmp_path / "set", constants.LABELS + ("not a digit",))
    assert loaded.items[0].classes == ("not a digit",) and loaded.items[0].single


@pytest.mark.parametrize("content, message", [
    ("", "header is missing"),
    ("file,digit\na.png,3\n", "needs the columns path,label"),
])
def test_a_csv_without_the_columns_is_an_error(tmp_path, content, message):
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        labelled.load(path)


def test_empty_and_missing_sources_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no labelled images found.*<folder>/<label>/"):
        labelled.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        labelled.load(tmp_path / "nowhere")


def test_csv_paths_are_relative_to_the_csv(tmp_path):
    _png(tmp_path / "data" / "img" / "d.png")
    csv_path = tmp_path / "data" / "list.csv"
    csv_path.write_text(f"path,label\nimg/d.png,5\n{tmp_path / 'data' / 'img' / 'd.png'},5\n", encoding="utf-8")
    loaded = labelled.load(csv_path)
    assert len(loaded.items) == 1 and "duplicate" in loaded.warnings[0]


def test_crops_round_trip_and_black_on_white_is_inverted(tmp_path):
    crop = np.zeros((28, 28), np.float32)
    crop[5:23, 12:16] = 1.0
    labelled.write_crop(tmp_path / "c.png", crop)
    assert np.array_equal(labelled.read_crop(tmp_path / "c.png"), (crop * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "paper.png"), 255 - (crop * 255).astype(np.uint8))
    assert np.array_equal(labelled.read_crop(tmp_path / "paper.png"), (crop * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((40, 40), np.uint8))
    assert labelled.read_crop(tmp_path / "big.png") is None
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="junk.png"):
        labelled.read_crop(tmp_path / "junk.png")


def test_next_free_path_never_overwrites(tmp_path):
    first = labelled.next_free_path(tmp_path, "d")
    first.write_bytes(b"x")
    assert labelled.next_free_path(tmp_path, "d").name == "d-2.png"
