"""
Sharing the embedded directory between the nova processes of one machine.

The embedded directory is one LDIF file under the state dir, and only one
process may hold it in memory and write it: the I{owner}, the first process
that takes the lock file beside it. A long-running owner (the all-in-one,
C{nova-api}) also serves the tree over LDAP on a loopback port, guarded by a
random bind password written, mode 0600, next to the LDIF. Every other
process on the machine (C{bin/nova-manage} while the cloud runs, a second
twistd component) finds the lock taken and connects to that server instead,
so all of them act on the same directory and nothing is lost between two
writers. A process with no running owner (nova-manage on a stopped cloud)
becomes the owner for as long as it runs.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ldaptor import interfaces
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.ldapserver import LDAPServer
from twisted.internet import endpoints, protocol
from twisted.logger import Logger
from twisted.python import components

from nova.auth.directory import EmbeddedDirectory, thread_runner
from nova.auth.errors import DirectoryUnavailable
from nova.auth.remote import connect_remote
from nova.config import NovaConfig
from nova.utils.files import write_atomically

log = Logger()

#: the DN other processes bind as; it names no entry in the tree
SERVICE_BIND_DN = "cn=nova-service"


class _GuardedServer(LDAPServer):
    """
    ldaptor's LDAP server over the embedded tree, for nova's own processes:
    a client must bind with the service DN and password before anything else,
    and a client that tries anything else first is disconnected.
    """

    factory: "DirectoryServerFactory"
    bound = False

    def handle(self, msg: Any) -> None:
        if not self.bound and not isinstance(msg.value, pureldap.LDAPBindRequest):
            self.transport.loseConnection()
            return
        super().handle(msg)

    def handle_LDAPBindRequest(self, request: Any, controls: Any, reply: Any) -> Any:  # noqa: N802
        if request.version != 3:
            raise ldaperrors.LDAPProtocolError(f"Version {request.version} not supported")
        dn = request.dn.decode("utf-8", "replace") if isinstance(request.dn, bytes) else request.dn
        password = request.auth if isinstance(request.auth, bytes) else str(request.auth).encode()
        if dn != SERVICE_BIND_DN or not hmac.compare_digest(password, self.factory.password):
            self.bound = False
            raise ldaperrors.LDAPInvalidCredentials()
        self.bound = True
        return pureldap.LDAPBindResponse(resultCode=0)


class DirectoryServerFactory(protocol.ServerFactory):
    """Serves one embedded tree to clients that know its password."""

    protocol = _GuardedServer
    noisy = False

    def __init__(self, root: Any, password: bytes) -> None:
        self.root = root
        self.password = password


components.registerAdapter(lambda factory: factory.root, DirectoryServerFactory,
                           interfaces.IConnectedLDAPEntry)


class OpenDirectory:
    """
    The directory a process uses, whichever way it got it.

    @ivar base: the base C{IConnectedLDAPEntry}, for L{nova.auth.ldapdriver.LdapDriver}.
    @ivar owner: this process holds the LDIF (and serves it when asked to).
    """

    def __init__(self, base: Any, owner: bool, closers: list[Any]) -> None:
        self.base = base
        self.owner = owner
        self._closers = closers

    async def close(self) -> None:
        """Stop serving, write what is pending, release the lock."""
        for close in reversed(self._closers):
            await close()
        self._closers.clear()


def _ldap_dir(config: NovaConfig) -> Path:
    return config.state_dir / "ldap"


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


async def open_directory(reactor: Any, config: NovaConfig, serve: bool) -> OpenDirectory:
    """
    Open the directory C{config} names.

    @param serve: when this process becomes the owner of an embedded
        directory, serve it to the machine's other nova processes.
    @raise DirectoryUnavailable: a remote server (or the owner) cannot be reached.
    """
    ldap = config.ldap
    if ldap.url:
        remote = await connect_remote(reactor, ldap.url, ldap.bind_dn, ldap.bind_password,
                                      ldap.base_dn)
        return OpenDirectory(remote.base, owner=False, closers=[remote.close])

    folder = _ldap_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    endpoint_file = folder / "endpoint.json"
    lock = _try_lock(folder / "lock")
    if lock is None:
        return await _connect_to_owner(reactor, config, endpoint_file)

    closers: list[Any] = []

    async def unlock() -> None:
        os.close(lock)

    closers.append(unlock)
    try:
        endpoint_file.unlink(missing_ok=True)
        directory = await EmbeddedDirectory.open(folder / "nova.ldif", ldap.base_dn,
                                                 run_blocking=thread_runner(reactor))
        closers.append(directory.close)
        if serve:
            password = secrets.token_urlsafe(32)
            port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
                DirectoryServerFactory(directory.base, password.encode()))

            async def stop_serving() -> None:
                endpoint_file.unlink(missing_ok=True)
                await port.stopListening()

            closers.append(stop_serving)
            write_atomically(endpoint_file, json.dumps({
                "url": f"ldap://127.0.0.1:{port.getHost().port}",
                "bind_dn": SERVICE_BIND_DN, "password": password, "pid": os.getpid()}).encode(),
                mode=0o600)
    except BaseException:
        for close in reversed(closers):
            await close()
        raise
    return OpenDirectory(directory.base, owner=True, closers=closers)


async def _connect_to_owner(reactor: Any, config: NovaConfig, endpoint_file: Path) -> OpenDirectory:
    try:
        endpoint = json.loads(endpoint_file.read_text())
    except (OSError, ValueError):
        raise DirectoryUnavailable(
            f"The directory in {endpoint_file.parent} is held by another nova process that "
            "does not serve it; stop that process or configure [ldap] url") from None
    remote = await connect_remote(reactor, endpoint["url"], endpoint["bind_dn"],
                                  endpoint["password"], config.ldap.base_dn)
    return OpenDirectory(remote.base, owner=False, closers=[remote.close])
