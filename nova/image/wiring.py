"""
Building the image registrar of a process from its L{nova.server.NovaServer},
and tying its life to the process (recovery at start, cancellation at stop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from nova.auth.credentials import access_key_for
from nova.image.registrar import ImageRegistrar
from nova.objectstore.client import ObjectStoreClient
from nova.utils.process import ProcessRunner

log = Logger()


def work_dir(config: Any) -> Path:
    """@return: where registrations keep their downloads meanwhile (under the state dir)."""
    return Path(config.state_dir) / "images" / "work"


def image_registrar(server: Any) -> ImageRegistrar:
    """
    @param server: an opened L{nova.server.NovaServer}.
    @return: a registrar on the server's datastore, object store, CA and
        reactor; the caller runs L{ImageRegistrar.recover} and
        L{ImageRegistrar.close} (see L{RegistrarService}).
    """
    config = server.config

    async def user_client(user_id: str, project_id: str) -> ObjectStoreClient:
        user = await server.auth.get_user(user_id)
        project = await server.auth.get_project(project_id)
        return ObjectStoreClient(server.reactor, server.s3_url, access_key_for(user, project),
                                 user.secret, config.region, run_in_thread=server.run_in_thread)

    return ImageRegistrar(
        server.images,
        server.service_objectstore_client, user_client, server.ca, server.run_in_thread,
        ProcessRunner(server.reactor), work_dir(config), server.reactor,
        max_size=config.objectstore.max_object_size)


class RegistrarService(Service):
    """
    The registrar's life as part of a process: recover what a crash left
    unfinished when the process starts, cancel running jobs when it stops.
    """

    def __init__(self, registrar: ImageRegistrar) -> None:
        self.registrar = registrar

    def startService(self) -> None:
        super().startService()
        d = defer.Deferred.fromCoroutine(self.registrar.recover())
        d.addErrback(lambda f: log.failure("image registration recovery failed", f))

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return defer.Deferred.fromCoroutine(self.registrar.close())
