"""
L{FakeExportDriver}: an in-memory L{IExportDriver} for unit tests of
nova-volume and of the compute attach. It runs nothing, keeps the same
rules as the real drivers (checked ids and paths, idempotent operations,
L{ExportConflict}, L{ExportInUse}) and answers with connection info of the
kind it is told to imitate.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from nova.volume import host_ids
from nova.volume.exports import tgt
from nova.volume.exports.interface import (KINDS, ExportConflict, ExportInUse, IExportDriver)

__all__ = ["FakeExportDriver"]


@implementer(IExportDriver)
class FakeExportDriver:
    """
    Exports kept in a dict.

    @param kind: the kind of connection info to produce (C{nbd}, C{iscsi}, C{aoe}).
    @param state_dir: the directory named in NBD connection info.
    @ivar exported: volume id -> (path, connection info).
    @ivar in_use: volume ids whose L{unexport} raises L{ExportInUse}
        (a test's stand-in for an attached compute host).
    """

    def __init__(self, kind: str = "nbd", state_dir: str = "/nonexistent/nova-exports") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self.state_dir = host_ids.host_path(state_dir)
        self.exported: dict[str, tuple[str, dict[str, Any]]] = {}
        self.in_use: set[str] = set()
        self._slots: dict[str, int] = {}

    def _info(self, volume_id: str) -> dict[str, Any]:
        if self.kind == "nbd":
            return {"kind": "nbd", "socket": f"{self.state_dir}/nbd.sock", "export": volume_id}
        if self.kind == "iscsi":
            return {"kind": "iscsi", "portal": "127.0.0.1:3260", "iqn": tgt.iqn(volume_id),
                    "lun": 1}
        slot = self._slots.setdefault(volume_id, len(self._slots))
        return {"kind": "aoe", "shelf": 1, "slot": slot, "device": f"/dev/etherd/e1.{slot}"}

    async def export(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.export}."""
        host_ids.volume_id(volume_id)
        host_ids.host_path(path)
        if volume_id in self.exported:
            exported, info = self.exported[volume_id]
            if exported != path:
                raise ExportConflict(f"{volume_id} is exported from {exported}, not {path}")
            return dict(info)
        info = self._info(volume_id)
        self.exported[volume_id] = (path, info)
        return dict(info)

    async def ensure(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.ensure}."""
        return await self.export(volume_id, path)

    async def unexport(self, volume_id: str) -> None:
        """See L{IExportDriver.unexport}."""
        host_ids.volume_id(volume_id)
        if volume_id in self.exported and volume_id in self.in_use:
            raise ExportInUse(f"{volume_id} is still attached")
        self.exported.pop(volume_id, None)

    async def exports(self) -> list[str]:
        """See L{IExportDriver.exports}."""
        return sorted(self.exported)
