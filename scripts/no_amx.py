#!/usr/bin/env python
"""Runs a command with Intel AMX refused to it: a test tool for timing int8 models with and without AMX.

On Linux a process must ask the kernel for AMX tile state (arch_prctl(ARCH_REQ_XCOMP_PERM,
XFEATURE_XTILEDATA)) before it may execute AMX instructions, and runtimes that use AMX ask first and
fall back to AVX-512/AVX2 kernels when refused. This wrapper installs a seccomp filter that answers that
one request with EPERM (every other system call is allowed), then runs the command, which inherits it.

    python scripts/no_amx.py -- .venv/bin/python scripts/bench_stems.py --runs RUN
    python scripts/no_amx.py --check       # says whether the request is refused in this process

Linux x86-64 only. Checked here on an AMD EPYC without AMX: the request is refused and LiteRT still
runs; whether a given XNNPACK build then skips its AMX kernels must be measured on an AMX machine.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

_ARCH_PRCTL = 158  # x86-64 system call number
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_AUDIT_ARCH_X86_64 = 0xC000003E
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_RET_ALLOW, _RET_EPERM = 0x7FFF0000, 0x00050000 | 1
_LOAD, _JUMP_IF_EQUAL, _RETURN = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


def refuse_amx() -> None:
    """Installs the filter in this process (and everything it starts). Irreversible.

    Raises:
        OSError: Not Linux x86-64, or the kernel refused the filter.
    """
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise OSError(f"AMX exists only on x86-64 Linux here, not {sys.platform} {platform.machine()}")
    instructions = [
        (_LOAD, 0, 0, 4),                               # seccomp_data.arch
        (_JUMP_IF_EQUAL, 0, 5, _AUDIT_ARCH_X86_64),     # another ABI: allow
        (_LOAD, 0, 0, 0),                               # seccomp_data.nr
        (_JUMP_IF_EQUAL, 0, 3, _ARCH_PRCTL),            # not arch_prctl: allow
        (_LOAD, 0, 0, 16),                              # low half of args[0]
        (_JUMP_IF_EQUAL, 0, 1, _ARCH_REQ_XCOMP_PERM),   # another arch_prctl: allow
        (_RETURN, 0, 0, _RET_EPERM),
        (_RETURN, 0, 0, _RET_ALLOW),
    ]
    array = (_Instruction * len(instructions))(*[_Instruction(*item) for item in instructions])
    program = _Program(len(instructions), array)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def amx_request_errno() -> int:
    """0 when this process may use AMX tiles (or the kernel grants them), else the errno of the request."""
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)
    return 0 if result == 0 else ctypes.get_errno()


def main() -> int:
    arguments = sys.argv[1:]
    if arguments[:1] == ["--check"]:
        before = amx_request_errno()
        refuse_amx()
        after = amx_request_errno()
        print(f"AMX tile request before the filter: {os.strerror(before) if before else 'granted'}; "
              f"after: {os.strerror(after) if after else 'granted'}")
        return 0 if after else 1
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    if not arguments:
        print(__doc__, file=sys.stderr)
        return 2
    refuse_amx()
    os.execvp(arguments[0], arguments)
    return 127


if __name__ == "__main__":
    raise SystemExit(main())
