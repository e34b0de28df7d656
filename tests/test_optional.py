"""Optional extras: a missing one is named with the pip command that adds it, by the library and by the CLI."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from edge_runtime import cli, optional

SAMPLE = "samples/four_clean.jpg"


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Makes `import matplotlib` fail as it does in the edge install."""
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_a_present_module_is_returned():
    assert optional.require("json", "a test").dumps([1]) == "[1]"


def test_a_missing_extra_says_which_pip_install_adds_it(no_matplotlib):
    with pytest.raises(optional.MissingExtra, match=r"--show needs matplotlib.*pip install 'digitkit\[view\]'"):
        optional.pyplot("--show")
    assert issubclass(optional.MissingExtra, ImportError)


def test_a_module_outside_the_extras_names_itself(monkeypatch):
    monkeypatch.setitem(sys.modules, "no_such_module_here", None)
    with pytest.raises(optional.MissingExtra, match="pip install no_such_module_here"):
        optional.require("no_such_module_here", "a test")


def test_show_without_matplotlib_fails_before_reading(no_matplotlib):
    result = CliRunner().invoke(cli.main, [SAMPLE, "--show"])
    assert result.exit_code == 1
    assert "pip install 'digitkit[view]'" in result.output


def test_the_live_window_without_matplotlib_names_the_extra(no_matplotlib):
    from edge_runtime import live_view

    with pytest.raises(optional.MissingExtra, match=r"live camera window.*digitkit\[view\]"):
        live_view.LiveView()
