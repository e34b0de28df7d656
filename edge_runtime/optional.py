"""Optional extras: imports a module that only some features need, or says which pip install adds it."""

from __future__ import annotations

import importlib
import types

# Which extra of pyproject.toml provides each optional top-level module.
EXTRAS = {"matplotlib": "view", "distributed": "cluster", "pyarrow": "cluster"}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the feature and the pip command."""


def install_hint(extra: str) -> str:
    """The command that installs an extra, e.g. `pip install 'digitkit[view]'`."""
    return f"pip install 'digitkit[{extra}]'"


def require(module_name: str, feature: str) -> types.ModuleType:
    """Imports `module_name`, or raises MissingExtra saying which extra `feature` needs.

    Args:
        module_name: e.g. "matplotlib.pyplot".
        feature: What needs it, for the message, e.g. "--show".

    Raises:
        MissingExtra: The module (or its package) is not installed.
    """
    top = module_name.split(".")[0]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # The package is there but broken: its own message is the useful one.
        extra = EXTRAS.get(top)
        hint = install_hint(extra) if extra else f"pip install {top}"
        raise MissingExtra(f"{feature} needs {top}, which is not installed: {hint} "
                           f"(in a checkout: pip install '.[{extra or top}]')") from error


def pyplot(feature: str) -> types.ModuleType:
    """matplotlib.pyplot for a window or a figure, or MissingExtra naming the [view] extra."""
    return require("matplotlib.pyplot", feature)
