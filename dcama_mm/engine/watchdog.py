# Copyright (c) dcama_mm contributors. All rights reserved.
"""Workers stop when their launcher is gone.

``torchrun`` starts one worker process per rank and, when it is stopped
normally (Ctrl-C, SIGTERM), stops them. Killed with SIGKILL (``kill -9``,
the out-of-memory killer, a job scheduler's hard limit) it cannot: the
workers are re-parented and go on training as orphans, holding the GPUs
and writing checkpoints into a work dir the user believes idle.

:func:`start_launcher_watchdog` (called by ``tools/train.py`` and
``tools/test.py`` through :func:`dcama_mm.engine.launch.build_runner` when
started by ``torchrun``) starts a daemon thread that polls the parent
process id; when it changes, the launcher is gone and the process exits at
once with a log line saying why. A checkpoint being written at that moment
is left truncated; ``--resume`` skips it (:mod:`dcama_mm.engine.resume`).
"""
import logging
import os
import sys
import threading
import time
from typing import Optional

from mmengine.logging import MMLogger, print_log

__all__ = ['start_launcher_watchdog', 'LAUNCHER_GONE_EXIT_CODE']

#: The exit status of a worker stopped by the watchdog.
LAUNCHER_GONE_EXIT_CODE = 3


def _flush_logs() -> None:
    """Flush stdout, stderr and the log files before ``os._exit``."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for handler in MMLogger.get_current_instance().handlers:
        try:
            handler.flush()
        except (OSError, ValueError):
            pass


def _watch(launcher_pid: int, interval: float) -> None:
    """Poll the parent pid; exit the process when it is not the launcher's.
    """
    while True:
        time.sleep(interval)
        if os.getppid() == launcher_pid:
            continue
        rank = os.environ.get('RANK', '?')
        print_log(
            f'The launcher of this worker (torchrun, pid {launcher_pid}) is '
            f'gone: stopping worker rank {rank} (pid {os.getpid()}) so that '
            'it does not go on training as an orphan.',
            logger='current',
            level=logging.ERROR)
        _flush_logs()
        os._exit(LAUNCHER_GONE_EXIT_CODE)


def start_launcher_watchdog(launcher: str,
                            interval: float = 0.5
                            ) -> Optional[threading.Thread]:
    """Stop this process when the ``torchrun`` that started it is gone.

    Does nothing unless ``launcher == 'pytorch'`` and the process was
    started by torchrun (``TORCHELASTIC_RUN_ID`` set). Slurm's ``srun``
    stops its tasks itself when it is killed.

    Args:
        launcher (str): The ``--launcher`` value.
        interval (float): Seconds between two looks at the parent pid.
            Defaults to 0.5.

    Returns:
        threading.Thread, optional: The watchdog thread, if started.
    """
    if launcher != 'pytorch' or 'TORCHELASTIC_RUN_ID' not in os.environ:
        return None
    launcher_pid = os.getppid()
    thread = threading.Thread(
        target=_watch,
        args=(launcher_pid, interval),
        name='launcher-watchdog',
        daemon=True)
    thread.start()
    return thread
