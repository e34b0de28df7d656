"""Ending a run on SIGTERM and SIGHUP as cleanly as on Ctrl-C: the signal becomes an exception where the loop is."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Iterator

STOP_SIGNALS = ("SIGTERM", "SIGHUP")
"""A service stopped (SIGTERM) or an SSH session dropped (SIGHUP)."""


class Stopped(Exception):
    """A signal asking the process to end, raised where the main thread is, so that outputs are closed.

    Attributes:
        signal_number: The signal; the exit code is 128 + it, as a shell reports a process killed by it.
    """

    def __init__(self, signal_number: int):
        self.signal_number = signal_number
        super().__init__(signal.Signals(signal_number).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turns SIGTERM and SIGHUP into `Stopped` for the block, unless they are ignored (nohup) or not ours to set.

    Outside the main thread (where Python cannot set handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signal_number, frame):
        raise Stopped(signal_number)

    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) not in (signal.SIG_IGN, None):
            previous[number] = signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _held_numbers() -> set[int]:
    return {getattr(signal, name) for name in ("SIGINT", *STOP_SIGNALS) if hasattr(signal, name)}


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Holds Ctrl-C, SIGTERM and SIGHUP back while pool workers are forked; they arrive when the block ends.

    A worker forked in the middle of a signal would otherwise run the parent's handler before
    `quiet_worker` sets its own. The pool's threads, started here too, keep them held, so that the main
    thread is the one the signal wakes.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _held_numbers())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def quiet_worker() -> None:
    """For pool workers: only the parent acts on Ctrl-C, SIGHUP and SIGTERM; it ends the pool itself.

    Signals sent to the whole process group (Ctrl-C in a terminal, a closed SSH session, `kill -TERM -PGID`)
    would otherwise kill workers in the middle of a task: the parent would wait for that task's result for
    ever, and each worker would print a traceback. So a worker moves to its own process group and ignores
    SIGINT and SIGHUP; SIGTERM (the parent ending the pool) leaves by `SystemExit`, which releases the task
    queue's lock on the way out (an instant death while holding it would hang the parent's clean-up). On
    Linux a worker also gets SIGTERM when the parent dies, so that none is left behind after a SIGKILL.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.setpgrp()
    for name in ("SIGINT", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_worker)
    _terminate_with_parent()
    if hasattr(signal, "pthread_sigmask"):  # Held by `signals_held` in the parent while forking.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _held_numbers())


def _terminate_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG


def _exit_worker(signal_number, frame):
    raise SystemExit(128 + signal_number)
