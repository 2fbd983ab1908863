"""``callboard serve --workers N``: N server processes behind one listening socket.

One server process answers on one event loop, so one CPU core bounds it (an authenticated Teams
message costs about 2 ms of it, most of that in the Bot Framework SDK's token validation). With
``--workers N`` the parent binds the port once and forks N workers that accept on that same
socket; each is a whole Callboard replica (its own search index, relation graph, chat surfaces
and template-run loop), exactly as separate ``callboard serve`` replicas sharing one database
already are: state behind buttons and forms, Slack event ids and template runs live in the
database. Worker 0 alone syncs the catalog and builds TechDocs; the others follow it (their
index is reloaded when the catalog's version moves; the TechDocs index is on disk, shared).

The parent only supervises: SIGINT or SIGTERM stops every worker the way Ctrl-C stops one server
(answers in flight finish, connections close); a worker that exits on its own stops the others
and the parent exits with its code, so that the service manager (systemd, Kubernetes) restarts
the whole service rather than leaving it half-staffed. Workers that have not stopped
``STOP_GRACE_S`` seconds after they were asked are killed. A worker whose parent dies stops too.

Workers are forked (the parent has loaded and checked the configuration, and runs no thread or
event loop yet), so this needs ``os.fork``: Linux or macOS.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

__all__ = ["STOP_GRACE_S", "bind", "run_workers"]

log = logging.getLogger("callboard.workers")

#: seconds the workers get to stop after SIGINT before they are killed
STOP_GRACE_S = 30.0
#: how often the parent looks at its workers (and a worker at its parent)
_POLL_S = 0.2


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (bound here, once, so a port in use is one error)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024,
                                dualstack_ipv6=family == socket.AF_INET6 and host == "::")
    sock.set_inheritable(True)
    return sock


def run_workers(count: int, serve: Callable[[int], int]) -> int:
    """Fork ``count`` workers, each running ``serve(index)`` (its exit code), and supervise them
    until they have all stopped. Returns the exit code of the service: 0 after a requested stop
    (130 for SIGINT, as Ctrl-C on one server), else the code of the first worker that exited."""
    if not hasattr(os, "fork"):
        raise OSError("--workers needs os.fork (Linux or macOS); run one server per process instead")
    parent = os.getpid()
    workers: dict[int, int] = {}  # pid -> index
    for index in range(count):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            _worker(index, parent, serve)
        workers[pid] = index
    asked: list[int] = []  # the signal that asked the service to stop, if one did

    def stop(signum: int, frame: object) -> None:
        if not asked:
            asked.append(signum)
            _signal_all(workers, signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code: int | None = None
    deadline: float | None = None
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if asked and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                log.error("%d worker(s) did not stop within %g s; killing them", len(workers), STOP_GRACE_S)
                _signal_all(workers, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(_POLL_S)
            continue
        index = workers.pop(pid)
        exited = os.waitstatus_to_exitcode(status)
        if not asked:
            how = f"was killed by signal {-exited}" if exited < 0 else f"exited with code {exited}"
            log.error("worker %d (pid %d) %s; stopping the other workers", index, pid, how)
            code = exited if exited > 0 else 1
            asked.append(0)
            _signal_all(workers, signal.SIGINT)
    if code is not None:
        return code
    return 130 if asked and asked[0] == signal.SIGINT else 0


def _signal_all(workers: dict[int, int], signum: int) -> None:
    for pid in workers:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _worker(index: int, parent: int, serve: Callable[[int], int]) -> None:
    """A forked worker: serve, then leave without running anything of the parent's."""
    code = 1
    try:
        os.setpgid(0, 0)  # Ctrl-C reaches the parent alone, which asks each worker once
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ["CALLBOARD_WORKER"] = str(index)
        _watch_parent(parent)
        code = serve(index)
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the worker's last word, then out
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _watch_parent(parent: int) -> None:
    """Stop this worker (as SIGINT would) when the parent is gone: an orphan would keep serving a
    port nobody supervises."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_POLL_S * 5)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
