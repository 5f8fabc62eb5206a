"""twistd nova-scheduler: picks hosts for new instances (topic scheduler)."""

from __future__ import annotations

from twisted.application.service import IService

from nova.tap.options import NovaOptions
from nova.tap.process import NovaProcess
from nova.tap.workers import scheduler_components


class Options(NovaOptions):
    """Options of C{twistd nova-scheduler}."""


def makeService(options: Options) -> IService:  # noqa: N802 (twistd's name)
    from twisted.internet import reactor
    return NovaProcess(reactor, options.config(), scheduler_components)
