"""Whether Airflow's triggerer has read the log lines a trigger wrote, so that its last lines reach the task's log.

In a triggerer, triggers run in a child process. Their log lines travel to the
triggerer's supervisor on a socket of their own, while the end of a trigger is
reported on another one, with the trigger's events. The supervisor closes a
trigger's log file as soon as it learns that the trigger finished, and writes
the lines of that trigger it reads afterwards to the triggerer's own output,
not to the task's log (``TriggerRunnerSupervisor._handle_request`` for
``TriggerStateChanges.finished``, and ``_process_log_messages_from_subprocess``,
in ``airflow/jobs/triggerer_job_runner.py``, 3.0 to 3.3). It reads at most
4 KiB of logs per turn of its loop (``make_buffered_socket_reader`` in the Task
SDK's ``supervisor.py``), and a turn waits for the metadata database while it
handles the events of the triggers that ended: when tens of runs end at once,
the lines a trigger writes just before it ends can still be waiting in the
socket when the supervisor handles its end, and the task's log loses them.

So a trigger whose line must reach the task's log waits, after writing it,
until the socket holds no unread byte: Linux reports a socket's unread bytes
to its writer (``SIOCOUTQ``). A socket that was empty once has been read up to
there, line included, and the supervisor handles every complete line it reads
at once, before it reads the trigger's end.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import stat
import time

#: The pause between two looks at the log socket: short at first (it is mostly read within milliseconds), then longer.
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.1


def log_sockets() -> list[int]:
    """The sockets this process' log lines are written to: the streams of the root logger's handlers.

    In a triggerer (every Airflow 3 release), Airflow points the root logger's handler, and structlog, at the
    socket its supervisor reads. Anywhere else (``dag.test()``, a test) they are a terminal, a file or a pipe.
    """
    found: list[int] = []
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        try:
            fd = stream.fileno()  # type: ignore[union-attr]
            is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
        except (AttributeError, OSError, ValueError):
            continue
        if is_socket and fd not in found:
            found.append(fd)
    return found


def unread_bytes(fd: int) -> int | None:
    """What the reader of the socket ``fd`` has not read yet (in kernel units), or ``None`` where the OS cannot say."""
    try:
        import fcntl
        import termios

        answer = array.array("i", [0])
        fcntl.ioctl(fd, termios.TIOCOUTQ, answer, True)  # SIOCOUTQ on a socket
    except (ImportError, AttributeError, OSError):
        return None
    return answer[0]


async def wait_until_read(timeout: float) -> bool | None:
    """Wait until the reader of this process' log sockets has read every line written to them so far.

    ``True`` once it has; ``False`` if it had not after ``timeout`` seconds; ``None`` at once when there is no log
    socket to watch (not a triggerer) or the OS does not report unread bytes.
    """
    sockets = log_sockets()
    if not sockets or any(unread_bytes(fd) is None for fd in sockets):
        return None
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        unread = [unread_bytes(fd) for fd in sockets]
        if None in unread:  # a socket went away meanwhile: nobody is left to read it
            return None
        if not any(unread):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(pause, left))
        pause = min(2 * pause, _LONGEST_PAUSE)
