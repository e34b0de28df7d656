"""scripts/no_amx.py: a process and its children are refused AMX tile state, and still run."""

from __future__ import annotations

import pathlib
import platform
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "no_amx.py"
pytestmark = pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                                reason="AMX and this seccomp filter are x86-64 Linux only")


def test_the_tile_request_is_refused_with_eperm():
    completed = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "after: Operation not permitted" in completed.stdout


def test_the_command_runs_under_the_filter():
    code = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
            "print(libc.syscall(158, 0x1023, 18), ctypes.get_errno())")
    completed = subprocess.run([sys.executable, str(SCRIPT), "--", sys.executable, "-c", code],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["-1", "1"]  # EPERM, inherited across exec
