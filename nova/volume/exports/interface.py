"""
The export seam: L{IExportDriver} makes a volume's storage reachable by the
compute host that attaches it, and says how (the connection info).

Connection info is a JSON-safe dict that nova-volume stores in the volume
record and hands to the compute host; its C{kind} names the driver:

    - C{{"kind": "nbd", "socket": "/abs/nbd.sock", "export": "vol-..."}}
    - C{{"kind": "iscsi", "portal": "ip:3260", "iqn": "iqn.2010-10.org.openstack:vol-...",
      "lun": 1}}
    - C{{"kind": "aoe", "shelf": 1, "slot": 3, "device": "/dev/etherd/e1.3"}}

Every driver reads the host's state before it changes anything, so every
operation is idempotent and a restarted nova-volume finds what its
predecessor exported (L{IExportDriver.exports}) and fills in what is
missing (L{IExportDriver.ensure}).
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

from nova.exception import ClientError, ProcessError

__all__ = ["IExportDriver", "ExportError", "ExportInUse", "ExportConflict", "KINDS"]

#: the kinds of export, one per driver
KINDS = ("nbd", "iscsi", "aoe")


class ExportError(ProcessError):
    """The volume host could not export, find or withdraw an export."""


class ExportInUse(ClientError):
    """The export still has a client (a compute host has it attached)."""

    code = "VolumeInUse"


class ExportConflict(ClientError):
    """The volume is already exported from another path."""

    code = "IncorrectState"


class IExportDriver(Interface):
    """Exports volumes of one volume host, one export per volume id."""

    kind = Attribute("C{'nbd'}, C{'iscsi'} or C{'aoe'}: the C{kind} of its connection info.")

    def export(volume_id: str, path: str) -> dict:
        """
        Export a volume (an C{async} method); idempotent.

        @param volume_id: C{vol-} and 17 hex digits: the export's name.
        @param path: the absolute path of its block device or file (from
            L{nova.volume.backing.IBackingStore.create}).
        @return: the connection info (JSON-safe); the same on a repeat.
        @raise nova.utils.validate.InvalidIdentifier: for a bad id or path.
        @raise ExportConflict: it is exported already, from another path.
        @raise ExportError: the host could not export it.
        """

    def unexport(volume_id: str) -> None:
        """
        Withdraw a volume's export (C{async}); nothing when it is not exported.

        @raise ExportInUse: a client is still connected (detach first).
        @raise ExportError: the host could not withdraw it.
        """

    def exports() -> list[str]:
        """@return: (C{async}) the ids of the volumes exported now, sorted."""

    def ensure(volume_id: str, path: str) -> dict:
        """
        Make sure a volume is exported after a restart (C{async}): leave a
        live export alone, re-create a missing one with the same name and,
        where the driver allocates one, the same target number.

        @return: the connection info.
        @raise ExportConflict: it is exported from another path.
        @raise ExportError: the host could not export it.
        """
