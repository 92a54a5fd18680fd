"""How a fake runs, for every fake here (the SMS providers of `gateways.py`, the case systems of
`sources.py`): an aiohttp application served from a daemon thread of this process (`ThreadServer`), or a
fake module run in a child process (`ChildProcess`: `python -m fakes.<module> … --port 0`), whose `main`
serves until it is signalled and says where it listens on a line `READY <url>` (`serve_until_signalled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Self

from aiohttp import web

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]


class ThreadServer:
    """An aiohttp application (`app()`, built by the subclass) served from a daemon thread: a context
    manager, or start() and stop(). Port 0 picks a free port; `port` and `url` tell it once started."""

    backlog = 1024

    def __init__(self, host: str, port: int, name: str) -> None:
        self.host = host
        self.port = port
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> Self:
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # report a failed bind to start(), not to a dead thread
                failed.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=self.backlog)
        await site.start()
        server = site._server  # the bound socket tells the port when 0 (random free port) was asked
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChildProcess:
    """A fake in a child process, so it does not share a GIL with the code under test (multi-process and
    throughput tests, the benchmarks). `args` run it; start() returns the URL of its READY line."""

    def __init__(self, args: list[str], what: str) -> None:
        self.args = args
        self.what = what
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        # `fakes` must be importable in the child whatever the caller's working directory.
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self.proc = subprocess.Popen(self.args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"fake {self.what} process did not start: {line!r}")
        return line.split(" ", 1)[1]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def serve_until_signalled(fake: Any) -> None:
    """A child process's life: start the fake, print `READY <url>`, serve until SIGTERM or SIGINT, stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake.start()
    print(f"READY {fake.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.5):
            pass
    fake.stop()
