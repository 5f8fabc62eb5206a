"""twistd nova-compute: the compute node worker (topics compute, compute.<host>)."""

from __future__ import annotations

from twisted.application.service import IService

from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess
from nova.tap.workers import compute_components


class Options(NovaOptions):
    """Options of C{twistd nova-compute}."""


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), compute_components)
