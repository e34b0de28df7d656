"""Issue 12, kept fixed: a seeded fuzz of images, models and output paths (the campaigns of scripts/fuzz.py, smaller).

Every damaged image gets exactly one strict-JSON row and the process never dies; every damaged or oddly
shaped model is refused with a message naming it or read with finite probabilities, never a traceback and
never `ok` on NaN; every output aimed at an input, the model or a file that is not ours exits 2 and changes
nothing. Run alone with `pytest -m fuzz`; the larger run is `python scripts/fuzz.py`.
"""

import importlib.util

import pytest

from conftest import REPO

pytestmark = pytest.mark.fuzz

SEED = 12


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("digitkit_fuzz", REPO / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_damaged_images_each_get_a_row_and_never_kill_the_run(fuzz):
    report = fuzz.image_campaign(250, SEED)
    assert report["failures"] == [], report["failures"][:5]
    assert report["rows"] == 250 and report["exit_code"] in (0, 1)
    assert report["corrupt_jpegs"] >= 15
    assert report["corrupt_jpegs_ok_share"] <= 0.05, report["corrupt_jpegs_ok_examples"]


def test_damaged_and_oddly_shaped_models_are_refused_or_read_cleanly(fuzz):
    report = fuzz.model_campaign(150, SEED, cli_runs=3)
    assert report["failures"] == [], report["failures"][:5]
    assert report["process_deaths"] == []
    assert report["outcomes"].get("refused", 0) > 0 and report["outcomes"].get("read", 0) > 0


def test_outputs_aimed_at_inputs_are_always_refused(fuzz):
    report = fuzz.output_campaign(60, SEED)
    assert report["failures"] == [], report["failures"][:5]


def test_damaged_videos_never_give_a_traceback(fuzz):
    report = fuzz.video_campaign(4, SEED)
    assert report["failures"] == [], report["failures"][:5]
