"""The signals that stop a job, and the flag the training loop polls.

SIGINT (Ctrl-C, which a terminal sends to every process of the sweep), SIGTERM, and SIGUSR2, which SLURM
(through submitit) sends a job ``signal_delay_s`` seconds before its time limit. A stopped job checkpoints
and ends its run KILLED; ``resume=auto`` continues it.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

TIME_LIMIT_SIGNAL = getattr(signal, "SIGUSR2", None)  # None where the platform has no SIGUSR2
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, TIME_LIMIT_SIGNAL) if s)

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
