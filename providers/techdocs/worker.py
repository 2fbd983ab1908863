"""Build workers: MkDocs runs in separate processes, off the event loop, each build with a time limit.

A worker is ``python -P -m callboard.providers.techdocs.worker``: it imports MkDocs once, then
reads one JSON job per line on stdin and answers one JSON result per line on stdout. The
pool keeps up to ``size`` of them; a build that runs past its limit gets its worker killed
(and replaced on the next job), so a hanging plugin costs one build, never the sync.

Builds read untrusted repositories, so a worker gets nothing of the server it does not need: its
environment is built from an allow-list (``PATH``, the locale, ``TZ``; a temporary ``HOME`` and
``TMPDIR``), never the server's environment minus a few names, so tokens, passwords and the
database URL are not there to leak; it runs in an empty folder of its own, removed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO

from .build import BuildJob, BuildResult, build_site

__all__ = ["BuildPool", "worker_env"]

_RECYCLE_AFTER = 200  # builds per worker, so slow leaks in plugins never add up
_LINE_LIMIT = 1 << 20
#: what a worker keeps of the server's environment (plus every LC_*): what Python, MkDocs and
#: the diagram programs need to start, nothing that could be a secret
_KEEP_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "SOURCE_DATE_EPOCH", "LD_LIBRARY_PATH",
             "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "PATHEXT", "COMSPEC")


def worker_env(environ: Mapping[str, str], home: Path, tmp: Path) -> dict[str, str]:
    """A build worker's whole environment: the allow-listed names of ``environ``, a private home
    and temporary folder. Not ``environ`` minus a deny-list: a secret under a name nobody thought
    of stays out all the same."""
    env = {k: v for k, v in environ.items() if k in _KEEP_ENV or k.startswith("LC_")}
    env["HOME"] = str(home)
    if os.name == "nt":
        env["USERPROFILE"] = str(home)
    env["TMPDIR"] = env["TEMP"] = env["TMP"] = str(tmp)
    env["PLANTUML_SECURITY_PROFILE"] = "SANDBOX"  # PlantUML's own !include and URL reading: off
    return env


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process, stderr: IO[bytes], folder: Path) -> None:
        self.proc = proc
        self.stderr = stderr  # a temporary file: what the worker said, for when it dies
        self.folder = folder  # the worker's own: its empty working folder, home and temporary files
        self.builds = 0

    def last_words(self, limit: int = 600) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - limit))
            return self.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        # reaped even through cancellations (a server shutting down may cancel more than once):
        # a killed process ends at once, and one left unreaped keeps its pipes past the event loop
        reaped = asyncio.ensure_future(self.proc.wait())
        cancelled = False
        try:
            while not reaped.done():
                try:
                    await asyncio.shield(reaped)
                except asyncio.CancelledError:
                    cancelled = True
        finally:
            self.stderr.close()
            shutil.rmtree(self.folder, ignore_errors=True)
        if cancelled:
            raise asyncio.CancelledError

    async def close(self) -> None:
        try:
            if self.alive and self.proc.stdin is not None:
                with contextlib.suppress(OSError, ConnectionResetError):
                    self.proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 5)
        finally:  # cancelled while it finished its work (a server shutting down): still stopped, its files closed
            await self.kill()


class BuildPool:
    """Up to ``size`` build workers; ``await pool.build(job)`` runs one build with a time limit."""

    def __init__(self, size: int | None = None, *, timeout: float = 120.0, python: str | None = None) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self.timeout = timeout
        self._python = python or sys.executable
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()  # idle and busy, so that close() stops them all
        self._slots = asyncio.Semaphore(self.size)
        self._closed = False

    async def _spawn(self) -> _Worker:
        folder = Path(tempfile.mkdtemp(prefix="callboard-build-"))
        for part in ("work", "home", "tmp"):
            (folder / part).mkdir()
        stderr = tempfile.TemporaryFile()
        starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
            self._python,
            "-P",  # not the current folder first on sys.path: a checkout's own callboard/ must not shadow the install
            "-m",
            "callboard.providers.techdocs.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=_LINE_LIMIT,
            env=worker_env(os.environ, folder / "home", folder / "tmp"),
            cwd=folder / "work",  # empty: nothing of the server's own folder is at hand
        ))
        try:
            proc = await asyncio.shield(starting)
        except asyncio.CancelledError:  # cancelled while starting: stop what did start
            with contextlib.suppress(Exception):
                await _Worker(await starting, stderr, folder).kill()
            stderr.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        except BaseException:
            stderr.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return _Worker(proc, stderr, folder)

    async def build(self, job: BuildJob) -> BuildResult:
        if self._closed:
            raise RuntimeError("the build pool is closed")
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._spawn()
            if self._closed:  # closed while this worker started: close() did not know it, so stop it here
                await worker.kill()
                raise RuntimeError("the build pool is closed")
            self._workers.add(worker)
            keep = False
            try:
                result = await self._run(worker, job)
                keep = worker.alive and worker.builds < _RECYCLE_AFTER
                return result
            finally:
                if keep and not self._closed:
                    self._idle.append(worker)
                else:
                    self._workers.discard(worker)
                    await worker.kill()

    async def _run(self, worker: _Worker, job: BuildJob) -> BuildResult:
        assert worker.proc.stdin is not None and worker.proc.stdout is not None
        worker.builds += 1
        try:
            worker.proc.stdin.write(json.dumps(asdict(job)).encode() + b"\n")
            await worker.proc.stdin.drain()
            line = await asyncio.wait_for(worker.proc.stdout.readline(), self.timeout)
        except TimeoutError:
            await worker.kill()
            return BuildResult(False, f"The build took longer than {self.timeout:g} s and was stopped.")
        except (ConnectionResetError, BrokenPipeError) as exc:
            await worker.kill()
            return BuildResult(False, f"The build worker stopped: {exc}")
        except ValueError:  # an answer line over _LINE_LIMIT: this build's failure, never the sync's
            await worker.kill()
            return BuildResult(False, f"The build's answer was over {_LINE_LIMIT >> 20} MiB and was not read.")
        if not line:
            await worker.proc.wait()
            said = worker.last_words()
            await worker.kill()
            return BuildResult(False, f"The build worker exited (code {worker.proc.returncode}) during the build"
                               + (f": {said}" if said else "."))
        data = json.loads(line)
        return BuildResult(
            ok=bool(data.get("ok")), error=data.get("error"), warnings=list(data.get("warnings") or []),
            pages=int(data.get("pages") or 0),
        )

    async def close(self) -> None:
        """Stop every worker (idle ones are let finish, busy ones killed) and return once each is
        reaped — also when cancelled (a server shutting down), which then kills them at once. A
        plain ``gather`` would return at the first cancelled stop and leave the others' reaping to
        an event loop about to close."""
        self._closed = True
        idle, self._idle = self._idle, []
        busy = [w for w in self._workers if w not in idle]
        self._workers.clear()
        stopping = asyncio.gather(*(w.close() for w in idle), *(w.kill() for w in busy), return_exceptions=True)
        cancelled = False
        while not stopping.done():
            try:
                await asyncio.shield(stopping)
            except asyncio.CancelledError:
                cancelled = True
                for worker in (*idle, *busy):
                    if worker.alive:
                        with contextlib.suppress(ProcessLookupError):
                            worker.proc.kill()
        if cancelled:
            raise asyncio.CancelledError


def main() -> int:
    """The worker: one JSON job per stdin line, one JSON result per stdout line."""
    import logging

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    out = sys.stdout
    sys.stdout = sys.stderr  # anything a plugin prints must not corrupt the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        job = BuildJob.from_json(json.loads(line))
        result = build_site(job)
        out.write(json.dumps(result.to_json()) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
