"""
Instance disks: a copy-on-write qcow2 overlay per instance on the cached
base image, made with C{qemu-img} through the process runner (no shell).
"""

from __future__ import annotations

import json
from typing import Any

from nova.exception import NovaError

#: base formats an overlay may sit on
BASE_FORMATS = frozenset({"raw", "qcow2"})
GIB = 1024 ** 3


class DiskError(NovaError):
    """qemu-img could not inspect a base image or make a disk."""


def _check_path(path: str) -> str:
    # qemu-img reads the backing file name from an -o style list in places:
    # refuse the characters that would split or redirect it.
    if not path.startswith("/") or any(c in path for c in ",\n\0"):
        raise DiskError(f"unusable disk path {path!r}")
    return path


class DiskMaker:
    """
    @param runner: an L{nova.utils.process.IProcessRunner}.
    @param qemu_img: the program.
    """

    def __init__(self, runner: Any, qemu_img: str = "qemu-img") -> None:
        self._runner = runner
        self._qemu_img = qemu_img
        # base files are named by their content and never change: ask qemu-img once
        self._sizes: dict[tuple[str, str], int] = {}

    async def virtual_size(self, path: str, fmt: str) -> int:
        """
        @param path: a base file of the image cache (immutable).
        @return: the virtual size in bytes of the image at C{path}, read as C{fmt}.
        """
        if fmt not in BASE_FORMATS:
            raise DiskError(f"{fmt!r} is not a disk format")
        known = self._sizes.get((path, fmt))
        if known is not None:
            return known
        result = await self._runner.run([self._qemu_img, "info", "--output=json", "-f", fmt,
                                         _check_path(path)], timeout=60)
        try:
            size = int(json.loads(result.stdout)["virtual-size"])
        except (ValueError, KeyError, TypeError) as e:
            raise DiskError(f"qemu-img info of {path}: unexpected output ({e})") from None
        self._sizes[(path, fmt)] = size
        return size

    async def create_overlay(self, base: str, base_format: str, path: str,
                             root_gb: int = 0) -> int:
        """
        Make C{path} a qcow2 disk backed by C{base}.

        @param root_gb: the instance type's root disk size; 0 (or less than
            the image) keeps the image's own size.
        @return: the disk's virtual size in bytes.
        """
        size = max(await self.virtual_size(base, base_format), root_gb * GIB)
        await self._runner.run([self._qemu_img, "create", "-q", "-f", "qcow2",
                                "-b", _check_path(base), "-F", base_format,
                                _check_path(path), str(size)], timeout=60)
        return size
