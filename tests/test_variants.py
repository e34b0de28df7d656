"""`--model auto`: which packaged variant is usable, the timing, the per-machine cache and `-v`."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
from click.testing import CliRunner

from edge_runtime import cli, variants

PACKAGED = variants.MODELS_DIR / variants.PRIMARY


def _models_dir(tmp_path: pathlib.Path, dynamic: pathlib.Path | None = None, report: dict | None = None) -> pathlib.Path:
    """A models folder with the packaged int8 model and, optionally, a second variant with its report."""
    folder = tmp_path / "mod els"
    folder.mkdir()
    shutil.copy(PACKAGED, folder / variants.PRIMARY)
    if dynamic is not None:
        shutil.copy(dynamic, folder / "digitkit_dynamic.tflite")
        if report is not None:
            (folder / "digitkit_dynamic.report.json").write_text(json.dumps(report))
    return folder


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(variants.ENVIRONMENT_OVERRIDE, raising=False)
    return home


def test_an_explicit_path_is_used_as_given(tmp_path):
    choice = variants.resolve(tmp_path / "some model.tflite")
    assert choice.path == tmp_path / "some model.tflite" and not choice.timings_us


def test_a_lone_int8_model_is_used_without_timing(tmp_path, cache_home):
    choice = variants.resolve("auto", models_dir=_models_dir(tmp_path))
    assert choice.path.name == variants.PRIMARY and "only packaged variant" in choice.reason
    assert not (cache_home / "digitkit" / "variants.json").exists()


def test_two_variants_are_timed_once_then_the_choice_is_cached(tmp_path, cache_home):
    folder = _models_dir(tmp_path, PACKAGED, {"gate_passed": True})
    first = variants.resolve(None, models_dir=folder)
    assert set(first.timings_us) == {variants.PRIMARY, "digitkit_dynamic.tflite"}
    assert all(value > 0 for value in first.timings_us.values())
    assert first.path.name == min(first.timings_us, key=first.timings_us.get)
    assert not first.cached and "timed now" in first.reason and "µs" in first.reason
    store = cache_home / "digitkit" / "variants.json"
    assert store == variants.cache_file() and store.is_file()
    second = variants.resolve("auto", models_dir=folder)
    assert second.cached and second.path == first.path and second.timings_us == first.timings_us
    # Another thread count is another entry: kernels and their speed differ.
    assert not variants.resolve("auto", num_threads=2, models_dir=folder).cached


def test_a_corrupt_or_unwritable_cache_never_fails_a_reading(tmp_path, cache_home, monkeypatch):
    folder = _models_dir(tmp_path, PACKAGED, {"gate_passed": True})
    (cache_home / "digitkit").mkdir(parents=True)
    (cache_home / "digitkit" / "variants.json").write_text("{not json")
    assert not variants.resolve("auto", models_dir=folder).cached
    monkeypatch.setenv("XDG_CACHE_HOME", str(PACKAGED))  # A file, so the cache folder cannot be made.
    choice = variants.resolve("auto", models_dir=folder)
    assert choice.path.is_file() and "could not write" in choice.reason


def test_variants_without_a_passed_export_proof_are_skipped(tmp_path):
    folder = _models_dir(tmp_path, PACKAGED, report=None)
    usable, skipped = variants.candidates(folder)
    assert [path.name for path in usable] == [variants.PRIMARY]
    assert skipped == ["digitkit_dynamic.tflite: no export report beside it"]
    (folder / "digitkit_dynamic.report.json").write_text(json.dumps({"gate_passed": False}))
    assert "parity gate failed" in variants.candidates(folder)[1][0]
    assert "skipped" in variants.resolve("auto", models_dir=folder).reason


def test_the_environment_can_force_a_variant(tmp_path, monkeypatch):
    folder = _models_dir(tmp_path, PACKAGED, {"gate_passed": True})
    monkeypatch.setenv(variants.ENVIRONMENT_OVERRIDE, "dynamic")
    choice = variants.resolve("auto", models_dir=folder)
    assert choice.path.name == "digitkit_dynamic.tflite" and "forced" in choice.reason
    monkeypatch.setenv(variants.ENVIRONMENT_OVERRIDE, "float64")
    with pytest.raises(ValueError, match="float64.*int8, dynamic"):
        variants.resolve("auto", models_dir=folder)


def test_the_cpu_signature_is_stable():
    assert variants.cpu_signature() == variants.cpu_signature()
    assert len(variants.cpu_signature()) == 16


def test_verbose_says_which_model_and_why(tmp_path):
    image = pathlib.Path(__file__).resolve().parent.parent / "samples" / "four_clean.jpg"
    result = CliRunner().invoke(cli.main, [str(image), "-v", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert "model choice: digitkit_" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["digits"] == "4"


@pytest.mark.slow
def test_real_exports_of_one_run_are_variants_and_another_runs_are_not(tmp_path, tiny_exports, cache_home):
    int8_path, dynamic_path = tiny_exports["int8"][0], tiny_exports["dynamic"][0]
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(int8_path, folder / variants.PRIMARY)
    shutil.copy(dynamic_path, folder / "digitkit_dynamic.tflite")
    shutil.copy(dynamic_path.with_name(dynamic_path.name.replace(".tflite", ".report.json")),
                folder / "digitkit_dynamic.report.json")
    usable, skipped = variants.candidates(folder)
    assert len(usable) == 2 and not skipped
    choice = variants.resolve("auto", models_dir=folder)
    assert choice.path in usable and len(choice.timings_us) == 2
    # The packaged model comes from another run: the tiny run's dynamic export must not stand in for it.
    shutil.copy(PACKAGED, folder / variants.PRIMARY)
    usable, skipped = variants.candidates(folder)
    assert [path.name for path in usable] == [variants.PRIMARY]
    assert "another network" in skipped[0]
