"""gansweep.runner.processes: the one liveness check, this process's children, and SIGTERM-and-wait."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from gansweep.runner import processes


def _sleeper(*, ignore_term: bool = False) -> subprocess.Popen:
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"  # its handler is set before anyone signals it
    return proc


def test_alive_on_this_host() -> None:
    assert processes.alive(os.getpid()) and processes.alive(str(os.getpid()))
    assert processes.alive(os.getpid(), socket.gethostname())
    assert not processes.alive("not-a-pid") and not processes.alive(None) and not processes.alive("")


def test_a_process_of_another_or_an_unnamed_host_is_assumed_alive() -> None:
    assert processes.alive("not-a-pid", "another-host")
    assert processes.alive(123, None)  # a run or trial without a host tag is left alone


def test_a_reaped_or_zombie_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while processes.alive(proc.pid) and time.monotonic() < deadline:  # exited, not reaped: a zombie
        time.sleep(0.05)
    assert not processes.alive(proc.pid)
    proc.wait()
    assert not processes.alive(proc.pid)


def test_child_pids_lists_this_process_s_children() -> None:
    proc = _sleeper()
    try:
        assert proc.pid in processes.child_pids()
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in processes.child_pids()


def test_terminate_sends_sigterm_once_and_waits_until_none_is_left() -> None:
    procs = [_sleeper(), _sleeper()]
    start = time.monotonic()
    processes.terminate(lambda: [p.pid for p in procs if p.poll() is None], grace=30, poll=0.05)
    assert time.monotonic() - start < 20
    assert [p.wait(timeout=5) for p in procs] == [-signal.SIGTERM, -signal.SIGTERM]


def test_terminate_gives_up_after_the_grace_or_when_done() -> None:
    proc = _sleeper(ignore_term=True)
    try:
        start = time.monotonic()
        processes.terminate(lambda: [proc.pid], grace=0.5, poll=0.05)
        assert 0.4 < time.monotonic() - start < 10 and proc.poll() is None
        start = time.monotonic()
        processes.terminate(lambda: [proc.pid], grace=30, done=lambda: True, poll=0.05)
        assert time.monotonic() - start < 10 and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_terminate_without_live_processes_returns_at_once() -> None:
    start = time.monotonic()
    processes.terminate(list, grace=30)
    assert time.monotonic() - start < 1
