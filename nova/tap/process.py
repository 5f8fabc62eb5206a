"""
The life of one nova process under twistd: start the pieces in order
(its own redis-server when configured, then the datastore, bus and directory,
then the components), stop them in reverse, and turn a failure at start-up
into one clear log line and a non-zero exit.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Sequence

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger

from nova.config import NovaConfig
from nova.server import NovaServer
from nova.utils.childprocess import ChildProcessService
from nova.utils.redisprobe import wait_for_redis

log = Logger()

#: builds a process's components once its server is open
Components = Callable[[NovaServer], Awaitable[Sequence[IService]]]
#: runs once every component has started
AfterStart = Callable[[NovaServer], Awaitable[None]]


def redis_child(reactor: Any, config: NovaConfig) -> ChildProcessService:
    """@return: a redis-server owned by this process, its data under the state dir."""
    data_dir = config.state_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--bind", config.redis.host, "--port", str(config.redis.port),
            "--dir", str(data_dir.resolve()), "--appendonly", "yes", "--save", "",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", "redis.log"]
    argv[0] = _which("redis-server")
    setpriv = _which("setpriv")
    if os.path.isabs(setpriv):
        # If this process is killed outright (SIGKILL), its redis-server must
        # not outlive it: setpriv asks the kernel to TERM the child then.
        argv = [setpriv, "--pdeathsig", "TERM", "--"] + argv
    return ChildProcessService(
        reactor, "redis-server", argv,
        ready=lambda: wait_for_redis(reactor, config.redis.host, config.redis.port, timeout=30))


def _which(program: str) -> str:
    for folder in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) + ["/usr/bin",
                                                                                 "/usr/sbin"]:
        candidate = os.path.join(folder, program)
        if os.access(candidate, os.X_OK):
            return candidate
    return program


class NovaProcess(MultiService):
    """
    The top service of a nova process.

    @param components: builds the process's services once the server is open.
    @param after_start: runs when every component runs (e.g. the all-in-one's
        first-start set-up and credentials).
    @param serve_directory: own and serve the embedded directory (long-running
        processes do).
    @param before_start: runs first, before anything is started.
    """

    def __init__(self, reactor: Any, config: NovaConfig, components: Components,
                 after_start: AfterStart | None = None, serve_directory: bool = True,
                 before_start: Callable[[NovaConfig], None] | None = None) -> None:
        super().__init__()
        self.reactor = reactor
        self.config = config
        self._components = components
        self._after_start = after_start
        self._before_start = before_start
        self._serve_directory = serve_directory
        self.server: NovaServer | None = None
        self._children: list[IService] = []
        self._redis: ChildProcessService | None = None
        self.started: defer.Deferred[None] = defer.Deferred()
        self._starting: defer.Deferred[None] | None = None

    def startService(self) -> None:
        Service.startService(self)
        self._starting = defer.Deferred.fromCoroutine(self._start())
        self._starting.addCallbacks(self.started.callback, self._failed)

    async def _start(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        if self._before_start is not None:
            self._before_start(self.config)
        if self.config.redis.spawn:
            self._redis = redis_child(self.reactor, self.config)
            await self._redis.start()
        self.server = NovaServer(self.reactor, self.config,
                                 serve_directory=self._serve_directory)
        await self.server.open()
        for child in await self._components(self.server):
            child.setServiceParent(self)  # starts it: this service is running
            self._children.append(child)
            ready = getattr(child, "whenReady", None)
            if ready is not None:
                await ready()
        if self._after_start is not None:
            await self._after_start(self.server)
        log.info("nova is running on host {host}", host=self.config.host)

    def _failed(self, failure: Any) -> None:
        log.critical("nova failed to start: {error}", error=failure.getErrorMessage())
        if not isinstance(failure.value, Exception) or getattr(failure.value, "code", None) is None:
            log.failure("start-up error", failure)
        self.started.errback(failure)
        self.started.addErrback(lambda _: None)
        if self.reactor.running:
            # twistd has no exit status for a failure after the reactor started:
            # exit 1 once the shutdown (which stops what did start) is over.
            self.reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            self.reactor.stop()

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._starting is not None and not self._starting.called:
            await defer.Deferred.fromCoroutine(_settled(self.started))
        for child in reversed(self._children):
            try:
                await defer.maybeDeferred(child.stopService)
            except Exception:
                log.failure("stopping {child} failed", child=child)
        self._children.clear()
        if self.server is not None:
            await self.server.close()
        if self._redis is not None:
            await self._redis.stop()


async def _settled(d: defer.Deferred[Any]) -> None:
    try:
        await d
    except Exception:
        pass

