"""twistd nova-objectstore: the S3-compatible object store (port 3333)."""

from __future__ import annotations

from twisted.application.service import IService

from nova.tap.components import objectstore_components
from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess


class Options(NovaOptions):
    """Options of C{twistd nova-objectstore}."""


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), objectstore_components)
