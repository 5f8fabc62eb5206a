"""twistd nova-network: the network controller (topics network, network.<host>)."""

from __future__ import annotations

from twisted.application.service import IService

from nova.network.wiring import network_components
from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess


class Options(NovaOptions):
    """Options of C{twistd nova-network}."""


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), network_components)
