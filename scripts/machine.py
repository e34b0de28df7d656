"""What machine a benchmark ran on: the CPU's name and count, recorded with every figure (stdlib only)."""

from __future__ import annotations

import json
import os
import pathlib
import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else platform.processor()) and the number of CPUs, e.g. "AMD EPYC (2 CPUs)"."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs)"


def write_result(path: str | os.PathLike, value: dict) -> None:
    """Writes a benchmark's figures as JSON (creating the folder) and prints them.

    The file is written beside its target and renamed over it, so an interrupted run leaves the
    previous figures whole.
    """
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=2) + "\n"
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    print(text, end="")
