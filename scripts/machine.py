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
    """Writes a benchmark's figures as JSON (creating the folder) and prints them."""
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text(json.dumps(value, indent=2) + "\n")
    print(json.dumps(value, indent=2))
