"""twistd nova-volume: the storage worker (topics volume, volume.<host>)."""

from __future__ import annotations

from twisted.application.service import IService

from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess
from nova.volume.wiring import volume_components


class Options(NovaOptions):
    """Options of C{twistd nova-volume}."""


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), volume_components)
