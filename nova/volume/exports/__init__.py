"""
Export drivers of the volume host: NBD (qemu-storage-daemon over QMP, the
default here), iSCSI (tgt) and AoE (vblade); see L{IExportDriver} and
C{docs/volume-exports.md}.
"""

from nova.volume.exports.interface import (KINDS, ExportConflict, ExportError, ExportInUse,
                                           IExportDriver)

__all__ = ["IExportDriver", "ExportError", "ExportInUse", "ExportConflict", "KINDS"]
