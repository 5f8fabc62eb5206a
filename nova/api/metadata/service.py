"""
nova-api's metadata listeners.

 - TCP C{[api] listen}:C{[api] metadata_port}: the caller is the TCP peer
   (for guests that reach nova-api directly, e.g. a host in the root
   namespace); C{X-Forwarded-For} is ignored there.
 - the unix socket C{[api] metadata_socket} (empty: C{<state_dir>/metadata.sock}):
   the network hosts' proxies (L{nova.network.metadata_proxy}) forward to
   it and name the guest in C{X-Forwarded-For}, which is trusted there
   only. The socket is made mode 0600 before it listens (so nobody else can
   ever connect), a stale one left by a dead process is removed at start, a
   live one is never taken over, and the file goes away at stop.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path
from typing import Any, Awaitable, Callable

from twisted.application.service import IService
from twisted.internet.interfaces import IListeningPort

from nova.api.metadata.data import MetadataSource
from nova.api.metadata.resource import (
    MetadataResource, forwarded_address, metadata_site, peer_address)
from nova.config import NovaConfig
from nova.exception import NovaError
from nova.utils.listening import ListeningService, PortService

#: the unix socket's mode: only nova's own user may claim to be a proxy
SOCKET_MODE = 0o600

#: sun_path holds 108 bytes with its terminating NUL
MAX_SOCKET_PATH = 107


class MetadataSocketError(NovaError):
    """The metadata unix socket cannot be had (in use, not a socket, too long a path)."""


def metadata_socket_path(config: NovaConfig) -> Path:
    """
    @return: where nova-api serves metadata to the proxies, absolute (a
        relative state directory would otherwise mean different files to
        processes started in different directories).
    """
    path = Path(config.api.metadata_socket) if config.api.metadata_socket \
        else config.state_dir / "metadata.sock"
    return path.absolute()


def clear_stale_socket(path: str) -> bool:
    """
    Make C{path} free for a new socket if what is there is a dead one. Blocking
    (a connect attempt): run it in a thread.

    @return: C{True} when a stale socket was removed.
    @raise MetadataSocketError: something that is not a socket is there, or a
        live process accepts connections on it.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        raise MetadataSocketError(f"{path} exists and is not a socket; not removing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except ConnectionRefusedError:
        # nobody listens: a socket left by a process that died
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.ETIMEDOUT) or isinstance(e, socket.timeout):
            raise MetadataSocketError(f"another process serves {path} (busy)") from None
        raise MetadataSocketError(f"cannot check {path}: {e.strerror or e}") from None
    finally:
        probe.close()
    raise MetadataSocketError(f"another process is serving metadata on {path}")


class UnixListeningService(PortService):
    """
    Listen on a unix socket with C{factory} while running: a stale socket
    file is removed first (in a thread), the socket is made C{mode} before it
    listens, and its file is removed when listening stops.
    """

    def __init__(self, reactor: Any, path: str, factory: Any,
                 run_in_thread: Callable[..., Awaitable[Any]], name: str,
                 mode: int = SOCKET_MODE) -> None:
        super().__init__()
        self.name = name
        self.where = path
        self._reactor = reactor
        self._path = path
        self._factory = factory
        self._run_in_thread = run_in_thread
        self._mode = mode

    async def _listen(self) -> IListeningPort:
        if len(os.fsencode(self._path)) > MAX_SOCKET_PATH:
            raise MetadataSocketError(f"{self._path} is longer than a unix socket path may be "
                                      f"({MAX_SOCKET_PATH} bytes)")
        parent = os.path.dirname(self._path) or "."
        await self._run_in_thread(os.makedirs, parent, 0o755, True)
        await self._run_in_thread(clear_stale_socket, self._path)
        # listenUNIX chmods between bind and listen: no connection is
        # possible before the mode is set; stopping removes the file
        return self._reactor.listenUNIX(self._path, self._factory, mode=self._mode,
                                        wantPID=False)


def metadata_services(server: Any) -> list[IService]:
    """
    @param server: the process's L{nova.server.NovaServer}.
    @return: nova-api's metadata listeners: TCP (identity: the peer) and the
        unix socket the proxies use (identity: their C{X-Forwarded-For}).
    """
    config = server.config
    source = MetadataSource(server.instances, server.fixed_ips, server.keypairs,
                            server.images, server.volumes)
    tcp = ListeningService(server.reactor, config.api.listen, config.api.metadata_port,
                           metadata_site(MetadataResource(source, peer_address), server.reactor),
                           name="nova-api (metadata)")
    unix = UnixListeningService(
        server.reactor, str(metadata_socket_path(config)),
        metadata_site(MetadataResource(source, forwarded_address), server.reactor),
        server.run_in_thread, name="nova-api (metadata socket)")
    return [tcp, unix]


__all__ = ["metadata_services", "metadata_socket_path", "UnixListeningService",
           "MetadataSocketError", "clear_stale_socket", "SOCKET_MODE"]
