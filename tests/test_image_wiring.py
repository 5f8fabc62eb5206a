"""
L{nova.image.wiring.RegistrarService}: the registrar recovers when its
process starts and is closed when it stops.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from nova.image.wiring import RegistrarService, work_dir


class _Registrar:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def recover(self) -> list[str]:
        self.calls.append("recover")
        return []

    async def close(self) -> None:
        self.calls.append("close")


class ServiceTests(unittest.TestCase):

    def test_recover_then_close(self) -> None:
        registrar = _Registrar()
        service = RegistrarService(registrar)  # type: ignore[arg-type]
        self.assertEqual(registrar.calls, [])
        service.startService()
        self.assertEqual(registrar.calls, ["recover"])
        d = service.stopService()
        self.assertIsInstance(d, defer.Deferred)
        self.successResultOf(d)
        self.assertEqual(registrar.calls, ["recover", "close"])

    def test_work_dir_under_state_dir(self) -> None:
        class Config:
            state_dir = "/var/lib/nova"
        self.assertEqual(str(work_dir(Config())), "/var/lib/nova/images/work")
