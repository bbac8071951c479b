"""Interrupting a run: SIGINT and SIGTERM stop it at the next safe point, never in the middle of a write.

Python runs a signal handler between two bytecodes of the main thread, wherever that is: inside an HDF5 call,
a weak-reference callback or a module being imported. An exception raised there can leave a file half-written,
or be printed as "Exception ignored" and lost while the run goes on. So, while :func:`deferred` is active, a
handler only records the signal; the run loop calls :func:`check` at its safe points (after the initial
snapshot, after every later snapshot, between flows, after imports) and :func:`check` raises
:class:`Interrupted` there. A snapshot that has begun is always completed, so an interrupted file holds at least
its initial snapshot and can be continued with ``--resume``. Compiled code between two snapshots is not
interrupted: a signal waits for it (at most ``snapshot_every`` steps).

This module imports nothing heavy, so the command line can install the handlers before anything else.
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Interrupted", "deferred", "check", "install", "pending"]

#: The signals that stop a run.
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list = []


class Interrupted(KeyboardInterrupt):
    """A run was stopped by SIGINT or SIGTERM (``signum``) at a safe point."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")


def _record(signum, frame):
    _received.append(signum)


def pending():
    """The first signal received and not yet acted on, or None."""
    return _received[0] if _received else None


def check() -> None:
    """Raise :class:`Interrupted` if a signal arrived (a safe point of the run)."""
    if _received:
        raise Interrupted(_received[0])


def install() -> None:
    """Record SIGINT and SIGTERM from now on, for the rest of the process (the command line's entry point)."""
    for sig in SIGNALS:
        signal.signal(sig, _record)


@contextlib.contextmanager
def deferred():
    """While active, SIGINT and SIGTERM are recorded for :func:`check` instead of interrupting at once; the
    previous handlers come back afterwards. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    outermost = previous[signal.SIGINT] is not _record  # not nested in install() or another deferred()
    if outermost:
        _received.clear()
    install()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if outermost:  # what was recorded here was acted on here; it must not stop later work in this process
            _received.clear()
