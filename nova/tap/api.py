"""twistd nova-api: the EC2 API server and cloud controller."""

from __future__ import annotations

from twisted.application.service import IService

from nova.tap.components import api_components
from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess


class Options(NovaOptions):
    """Options of C{twistd nova-api}."""


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), api_components)
