"""``callboard serve --workers N``: N server processes behind one listening socket.

One server process answers on one event loop, so one CPU core bounds it (an authenticated Teams
message costs about 1.5–2 ms of it, a third of that in the Bot Framework SDK's token validation).
With ``--workers N`` the parent binds the port once and forks N workers that accept on those same
sockets; each is a whole Callboard replica (its own search index, relation graph, chat surfaces
and template-run loop), exactly as separate ``callboard serve`` replicas sharing one database
already are: state behind buttons and forms, Slack event ids and template runs live in the
database. Worker 0 alone syncs the catalog and builds TechDocs; every worker looks at the
catalog's version every few seconds and reloads its index when another one changed it (the
TechDocs index is on disk, shared).

The parent only supervises: SIGINT or SIGTERM stops every worker the way Ctrl-C stops one server
(answers in flight finish, connections close; a second signal kills them at once); a worker that
exits on its own stops the others and the parent exits with its code, so that the service
manager (systemd, Kubernetes) restarts the whole service rather than leaving it half-staffed.
Workers that have not stopped ``STOP_GRACE_S`` seconds after they were asked are killed, with
what they started (each worker leads a process group). A worker whose parent dies stops too.

Workers are forked (the parent has loaded and checked the configuration, and runs no thread or
event loop yet), so this needs ``os.fork``: Linux or macOS.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

__all__ = ["STOP_GRACE_S", "bind", "run_workers"]

log = logging.getLogger("callboard.workers")

#: seconds the workers get to stop after they were asked before they are killed: more than aiohttp
#: waits for requests in flight (60 s, ``web.AppRunner``'s shutdown timeout), then closing
STOP_GRACE_S = 75.0
#: how often the parent looks at its workers (and a worker at its parent)
_POLL_S = 0.2


def bind(host: str, port: int) -> list[socket.socket]:
    """The listening sockets every worker accepts on, one per address ``host`` names (``localhost``:
    IPv4 and IPv6; ``""``: every interface of both), as aiohttp's own site binds them. Bound here,
    once, so that a port in use is one error."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # IPv4 has its own socket
            sock.bind(address)
            sock.listen(1024)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def run_workers(count: int, listening: Sequence[socket.socket], serve: Callable[[int], int]) -> int:
    """Fork ``count`` workers, each running ``serve(index)`` (its exit code) on ``listening``, and
    supervise them until they have all stopped. Returns the service's exit code: 0 after a stop
    asked by SIGTERM, 130 by SIGINT (as Ctrl-C on one server), 1 when workers had to be killed,
    else the code of the first worker that exited on its own."""
    if not hasattr(os, "fork"):
        raise OSError("--workers needs os.fork (Linux or macOS); run one server per process instead")
    parent = os.getpid()
    workers: dict[int, int] = {}  # pid -> index
    asked: list[int] = []  # the signals that asked the service to stop (0: a worker's exit)

    def stop(signum: int, frame: object) -> None:
        if os.getpid() != parent:  # a worker just forked, before it set its own handlers: it did nothing yet
            os._exit(130)
        asked.append(signum)
        _signal_all(workers, signal.SIGINT if len(asked) == 1 else signal.SIGKILL)

    # before the first fork, so that no signal finds the parent without them; a SIGINT ignored
    # where the parent was started (a script's background job) stays ignored
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for index in range(count):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            _worker(index, parent, serve)
        workers[pid] = index
    for sock in listening:  # the workers have theirs: once they close them, the port refuses at once
        sock.close()
    code: int | None = None
    deadline: float | None = None
    killed = False
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if asked and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
            if not killed and (len(asked) > 1 or (deadline is not None and time.monotonic() > deadline)):
                log.error("%d worker(s) did not stop%s; killing them", len(workers),
                          "" if len(asked) > 1 else f" within {STOP_GRACE_S:g} s")
                _signal_all(workers, signal.SIGKILL)
                killed = True
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
    if killed:
        return 1
    return 130 if asked and asked[0] == signal.SIGINT else 0


def _signal_all(workers: dict[int, int], signum: int) -> None:
    """``signum`` to each worker; SIGKILL to each worker's process group (what it started too:
    a TechDocs build, the parse workers)."""
    for pid in workers:
        try:
            if signum == signal.SIGKILL:
                try:
                    os.killpg(pid, signum)
                    continue
                except ProcessLookupError:  # not yet its own group's leader
                    pass
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _worker(index: int, parent: int, serve: Callable[[int], int]) -> None:
    """A forked worker: serve, then leave without running anything of the parent's."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setpgid(0, 0)  # Ctrl-C reaches the parent alone, which asks each worker once
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

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_POLL_S * 5)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
