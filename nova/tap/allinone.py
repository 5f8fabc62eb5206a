"""
twistd nova-allinone: every component in one process, the single-machine
default that C{make run} starts. On its first start it creates the admin
user and project; once everything listens it writes their credentials to
C{<state dir>/creds/} and says how to use them.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from twisted.application.service import IService
from twisted.logger import Logger

from nova.auth.errors import ProjectNotFound, UserNotFound
from nova.auth.credentials import novarc, s3cmd_config
from nova.config import NovaConfig
from nova.image.tiny import register_tiny_image
from nova.network.wiring import network_components
from nova.volume.wiring import volume_components
from nova.server import NovaServer
from nova.tap.components import (admin_controller, api_components, endpoints_of,
                                  objectstore_components)
from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess
from nova.tap.workers import compute_components, scheduler_components
from nova.utils.files import write_atomically

log = Logger()


class Options(NovaOptions):
    """Options of C{twistd nova-allinone}."""


async def allinone_components(server: NovaServer) -> list[IService]:
    """@return: every component of the cloud, in start order."""
    return (await objectstore_components(server) + await scheduler_components(server)
            + await network_components(server) + await volume_components(server)
            + await compute_components(server) + await api_components(server))


async def bootstrap(server: NovaServer) -> None:
    """
    Make sure the admin user and project exist, then write their credentials
    (novarc and nova.zip) under C{<state dir>/creds}.
    """
    config = server.config
    auth = server.auth
    try:
        user = await auth.get_user(config.admin_user)
    except UserNotFound:
        user = await auth.create_user(config.admin_user, admin=True)
        log.info("created admin user {user}", user=user.id)
    try:
        project = await auth.get_project(config.admin_project)
    except ProjectNotFound:
        project = await auth.create_project(config.admin_project, user.id,
                                            description="the administrators' project")
        log.info("created project {project}", project=project.id)
    # the tiny test image before the credentials: a written novarc means it is ready too
    tiny_ami = await register_tiny_image(server, os.environ)
    zipped = await admin_controller(server).credentials(user, project)
    endpoints = endpoints_of(server)
    files = {
        "nova.zip": zipped,
        "s3cfg": s3cmd_config(user, project, endpoints).encode(),
        # novarc last: its presence says "the cloud is up and credentials are ready"
        "novarc": novarc(user, project, endpoints).encode(),
    }
    creds = config.creds_dir
    # fsync'd writes: off the reactor thread
    await server.run_in_thread(write_credentials, creds, zipped, files)
    log.info(
        "\n\n  nova is up. Credentials for {user} in project {project}: {creds}/novarc\n"
        "    source {creds}/novarc\n"
        "    aws ec2 describe-availability-zones      # awscli and boto3 read AWS_* variables\n"
        "    python -c 'import boto3; print(boto3.client(\"ec2\").describe_regions())'\n"
        "  boto 2 and euca2ools read EC2_URL, EC2_ACCESS_KEY, EC2_SECRET_KEY.\n"
        "  tiny test image: {tiny} ({creds}/tiny-ami)\n",
        user=user.id, project=project.id, creds=creds,
        tiny=tiny_ami or "not registered (NOVA_SKIP_TINY_IMAGE, or see the log)")


def write_credentials(folder: Path, zipped: bytes, files: dict[str, bytes]) -> None:
    """
    Write the zip's key and certificates beside the novarc that refers to
    them, then C{files} in order (each atomically, owner-only). Blocking.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        for name in ("pk.pem", "cert.pem", "cacert.pem"):
            write_atomically(folder / name, archive.read(name), mode=0o600)
    for name, data in files.items():
        write_atomically(folder / name, data, mode=0o600)


def forget_credentials(config: NovaConfig) -> None:
    """Remove the last run's novarc: until this run writes it, the cloud is not up."""
    (config.creds_dir / "novarc").unlink(missing_ok=True)


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), allinone_components, after_start=bootstrap,
                       before_start=forget_credentials)
