"""Processes and the signals that stop them: the one home of "is that process alive", "which processes are
my children" and "SIGTERM them and wait" (:func:`alive`, :func:`child_pids`, :func:`terminate`), and of the
flag a job's training loop polls (:class:`StopFlag`).

SIGINT (Ctrl-C, which a terminal sends to every process of the sweep), SIGTERM, and SIGUSR2, which SLURM
(through submitit) sends a job ``signal_delay_s`` seconds before its time limit. A stopped job checkpoints
and ends its run KILLED; ``resume=auto`` continues it.

Standard library only (os, /proc), so that ``gansweep.runner.tracking`` (closing the runs of dead processes)
and ``gansweep.search.study`` (failing the trials of a dead launcher) import it without importing the rest of
the runner.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TIME_LIMIT_SIGNAL = getattr(signal, "SIGUSR2", None)  # None where the platform has no SIGUSR2
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, TIME_LIMIT_SIGNAL) if s)
_THIS_HOST = "\0this host"  # alive()'s default host: no host name holds a NUL

# Set when this process got Ctrl-C (SIGINT) during a job: a parallel worker then records any further job as
# KILLED without starting it. SIGTERM or SIGUSR2 to one worker stops its current job only.
_stopped_by_sigint = False


def stopped_by_sigint() -> bool:
    """Whether this process got Ctrl-C during an earlier job."""
    return _stopped_by_sigint


class StopFlag:
    """Set by SIGINT/SIGTERM/SIGUSR2 from a job's start to its result. The training loop checkpoints and ends
    the run KILLED at its next iteration; a signal during set-up stops the job before its run is created.
    Held over the whole job so that a signal during set-up or while the run is being closed cannot kill a
    parallel worker (which would make the launcher tear down the other workers)."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum != 0

    @property
    def name(self) -> str:
        """The stopping signal's name (SIGTERM), or "" when none came."""
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum: int, frame: Any) -> None:
        global _stopped_by_sigint
        self.signum = self.signum or signum  # the first signal names the stop
        if signum == signal.SIGINT:
            _stopped_by_sigint = True

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def alive(pid: Any, host: str | None = _THIS_HOST) -> bool:
    """Whether process ``pid`` may still run. ``host``: where it runs (a run's or trial's host tag); one of
    another host, or of none named (None), is assumed alive. On this host (the default), a ``pid`` that is no
    number is not alive, nor is a zombie (dead, not yet reaped)."""
    if host != _THIS_HOST and host != socket.gethostname():
        return True
    if not str(pid).isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def child_pids() -> list[int]:
    """The processes whose parent is this one (Linux /proc; empty elsewhere)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == me:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def terminate(
    live: Callable[[], Iterable[int]],
    grace: float,
    *,
    done: Callable[[], bool] = lambda: False,
    poll: float = 0.5,
) -> None:
    """SIGTERM each process ``live()`` lists (once each; asked again every ``poll`` seconds, so a process that
    appears later gets it too) and wait until ``live()`` lists none, ``done()`` holds or ``grace`` seconds
    have passed. A process gone before its signal is skipped."""
    deadline, signalled = time.monotonic() + grace, set()
    while True:
        pids = set(live())
        if not pids or time.monotonic() >= deadline:
            return
        for pid in pids - signalled:
            signalled.add(pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        if done():
            return
        time.sleep(poll)
